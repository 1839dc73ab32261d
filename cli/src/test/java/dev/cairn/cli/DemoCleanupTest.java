package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cairn demo} removes the temporary directory it created (logs and the embedded store's checkpoints). */
class DemoCleanupTest {
    @Test
    void aPassingDemoLeavesNothingInTheTempDirectory(@TempDir Path dir) throws Exception {
        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        Path log = dir.resolve("demo.log");
        Process demo = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-Djava.io.tmpdir=" + tmp, "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "demo", "--workers", "2", "--steps", "6", "--save-every", "2", "--state-mib", "1"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();

        assertThat(demo.waitFor(3, TimeUnit.MINUTES)).as("demo finished within 3 minutes").isTrue();
        assertThat(demo.exitValue()).as(Files.readString(log)).isZero();
        assertThat(Files.readString(log)).contains("cairn-demo-");
        assertThat(tmp).as("the temp directory after the demo; output:%n%s", Files.readString(log)).isEmptyDirectory();
    }
}
