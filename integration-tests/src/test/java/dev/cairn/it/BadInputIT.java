package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.testkit.ClusterProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/** Real processes given bad input: exit 2, one clear line, no stack trace, nothing written. */
class BadInputIT {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private static String errorLine(Path log) throws Exception {
        List<String> lines = Files.readAllLines(log);
        assertThat(lines).noneMatch(l -> l.startsWith("\tat ") || l.contains("Exception in thread"));
        return lines.stream().filter(l -> l.startsWith("cairn: error: ")).findFirst()
                .orElseThrow(() -> new AssertionError("no 'cairn: error:' line in " + lines));
    }

    @Test
    void workersWithBadIdentitiesAreRejectedClearly() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("ckpt"));
        try (ClusterFixture cluster = new ClusterFixture(tmp)) {
            int port = cluster.startCoordinator(root.toUri().toString(), 2, "run", "--save-every-steps", "5");

            // index outside the world: refused before connecting
            Path outside = tmp.resolve("outside.log");
            ClusterProcess p = ClusterProcess.start("outside", outside, "128m",
                    List.of("toy-worker", "--coordinator", "127.0.0.1:" + port, "--run-id", "run", "--index", "2", "--world", "2", "--steps", "1"));
            assertThat(p.waitFor(ClusterFixture.TIMEOUT)).isEqualTo(2);
            assertThat(errorLine(outside)).contains("worker index 2 is outside the world size 2");

            // world size that disagrees with the coordinator's: refused by the coordinator
            Path world = tmp.resolve("world.log");
            p = ClusterProcess.start("world", world, "128m",
                    List.of("toy-worker", "--coordinator", "127.0.0.1:" + port, "--run-id", "run", "--index", "0", "--world", "3", "--steps", "1"));
            assertThat(p.waitFor(ClusterFixture.TIMEOUT)).isEqualTo(2);
            assertThat(errorLine(world)).contains("world size 3").contains("world size is 2");

            // a second live worker with the same index
            ClusterProcess first = cluster.startWorker(port, "run", 0, 2, 1_000_000, "--step-millis", "5");
            first.await("restored", ClusterFixture.TIMEOUT);
            Path dup = tmp.resolve("dup.log");
            p = ClusterProcess.start("dup", dup, "128m",
                    List.of("toy-worker", "--coordinator", "127.0.0.1:" + port, "--run-id", "run", "--index", "0", "--world", "2", "--steps", "1"));
            assertThat(p.waitFor(ClusterFixture.TIMEOUT)).isEqualTo(2);
            assertThat(errorLine(dup)).contains("worker index 0 is already joined");
            first.kill();
        }
        // nothing was written: no worker ever completed a barrier
        try (var files = Files.walk(root)) {
            // nothing but the coordinator's own lease on the root (_coordinator/, docs/operations.md)
            assertThat(files.filter(Files::isRegularFile).filter(f -> !root.relativize(f).startsWith("_coordinator")).toList()).isEmpty();
        }
    }

    @Test
    void coordinatorWithAnUnknownSchemeExitsTwo() throws Exception {
        Path log = tmp.resolve("coord.log");
        ClusterProcess p = ClusterProcess.start("coord", log, "128m",
                List.of("coordinator", "--storage", "ftp://host/x", "--world", "2", "--port", "0"));
        assertThat(p.waitFor(ClusterFixture.TIMEOUT)).isEqualTo(2);
        assertThat(errorLine(log)).isEqualTo("cairn: error: unsupported storage scheme 'ftp' in 'ftp://host/x': use file://, hdfs:// or s3://");
    }
}
