package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.harness.ToyState;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * A preemption notice (SIGTERM) to one worker of a run with no save policy: its agent asks for an
 * emergency save, every worker saves at the step the coordinator picks, and the preempted JVM exits
 * only after that checkpoint has committed.
 */
class PreemptionIT {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    @Test
    void sigtermTriggersAnEmergencySaveThatCommitsBeforeExit() throws Exception {
        Path root = tmp.resolve("ckpt");
        try (ClusterFixture cluster = new ClusterFixture(tmp);
             CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            int port = cluster.startCoordinator(root.toUri().toString(), 2, "pre");
            List<ClusterProcess> workers = List.of(
                    cluster.startWorker(port, "pre", 0, 2, 1_000_000, "--step-millis", "10"),
                    cluster.startWorker(port, "pre", 1, 2, 1_000_000, "--step-millis", "10"));
            for (ClusterProcess w : workers) {
                w.await("restored", ClusterFixture.TIMEOUT);
            }
            assertThat(catalog.steps()).isEmpty();

            workers.get(0).terminate();
            ClusterProcess.Event committed = workers.get(0).await("committed", ClusterFixture.TIMEOUT);
            assertThat(workers.get(0).waitFor(ClusterFixture.TIMEOUT)).isEqualTo(143);
            long step = committed.getLong("step");
            assertThat(workers.get(1).await("committed", e -> e.getLong("step") == step, ClusterFixture.TIMEOUT)).isNotNull();

            assertThat(catalog.steps()).containsExactly(step);
            Manifest m = catalog.read(step);
            assertThat(catalog.verify(m)).isEmpty();
            assertThat(ToyState.checkCheckpoint(catalog, m, 2048 * 1024)).isEmpty();
        }
    }
}
