package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.testkit.ClusterProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code cairn demo --backend hdfs|s3} in a child JVM, as a user runs it: the embedded
 * MiniDFSCluster / S3Proxy starts, a worker is SIGKILLed mid-upload, the cluster resumes from the
 * previous checkpoint and every byte is checked; exit 0 only if every check passed.
 */
class DemoBackendsIT {

    @ParameterizedTest
    @ValueSource(strings = {"hdfs", "s3"})
    void demoOnEmbeddedBackendPasses(String backend, @TempDir Path dir) throws Exception {
        Path log = dir.resolve("demo-" + backend + ".log");
        long t0 = System.nanoTime();
        int code;
        try (ClusterProcess demo = ClusterProcess.start("demo-" + backend, log, "512m",
                List.of("demo", "--backend", backend, "--workers", "2", "--state-mib", "1"))) {
            code = demo.waitFor(Duration.ofMinutes(3));
        }
        System.out.printf("cairn demo --backend %s -> exit %d in %.1f s%n", backend, code, (System.nanoTime() - t0) / 1e9);
        if (code != 0) {
            System.out.println(Files.readString(log));
        }
        assertThat(code).as("exit code of cairn demo --backend " + backend + " (stderr in the output above)").isZero();
    }
}
