package dev.cairn.harness;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The bench's view of the JVM's own threads, from {@code /proc/self/task} (Linux only). */
class JvmActivityTest {

    @Test
    void theJitCompilerThreadsAreFoundAndHaveRun() {
        assumeTrue(Files.isDirectory(Path.of("/proc/self/task")), "no /proc/self/task on this system");
        Map<String, Long> byName = JvmActivity.threadCpu();
        // HotSpot names them "C1 CompilerThread0" / "C2 CompilerThread0": the kernel keeps 15
        // characters, and threadCpu() folds the digits so that pools add up
        assertThat(byName.keySet()).contains("C# CompilerThre");
        // this JVM has compiled something by now (JUnit's own code)
        assertThat(JvmActivity.compilerCpuNanos()).isPositive();
        assertThat(byName.values()).allMatch(v -> v >= 0);
    }
}
