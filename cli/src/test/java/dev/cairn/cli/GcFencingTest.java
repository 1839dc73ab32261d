package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.coordinator.CoordinatorLease;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.StorageUri;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cairn gc} and a live coordinator's lease on the same root. */
class GcFencingTest {
    @TempDir
    Path root;

    record Result(int exit, String err) {}

    private static Result cairn(String... args) {
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            exit = Main.execute(args);
        } finally {
            System.setErr(oldErr);
        }
        return new Result(exit, err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void gcRefusesWhileACoordinatorHoldsTheRootUnlessForced() throws Exception {
        String orphan = Layout.shardKey("25-0badc0de", 0);
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            store.write(orphan, new byte[] {1, 2, 3});
            CoordinatorLease.acquire(store, Clock.systemUTC(), Duration.ofMinutes(5), "run-x", false);

            Result refused = cairn("gc", "--storage", root.toString(), "--keep-last", "1", "--min-age-minutes", "0");
            assertThat(refused.exit()).as(refused.err()).isEqualTo(2);
            assertThat(refused.err().strip().lines()).singleElement().satisfies(line -> assertThat(line)
                    .startsWith("cairn: error: storage root").contains("run 'run-x'").contains("pid " + ProcessHandle.current().pid())
                    .contains("--force"));
            assertThat(store.stat(orphan)).as("nothing deleted").isPresent();

            Result forced = cairn("gc", "--storage", root.toString(), "--keep-last", "1", "--min-age-minutes", "0", "--force");
            assertThat(forced.exit()).as(forced.err()).isZero();
            assertThat(forced.err()).contains("cairn: warning: --force");
            assertThat(store.stat(orphan)).isEmpty();
        }
    }
}
