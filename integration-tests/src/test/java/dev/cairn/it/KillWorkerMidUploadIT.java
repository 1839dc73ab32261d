package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.harness.ToyState;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real coordinator process and three real worker processes on loopback. Worker 2 is SIGKILLed
 * halfway through uploading its shard of step 20: that save aborts with no manifest, step 10 stays
 * restorable byte for byte, and after the workers rejoin the same coordinator the next saves commit.
 */
class KillWorkerMidUploadIT {
    private static final int WORLD = 3;
    private static final String RUN = "it-run";
    private static final int STATE_BYTES = 2048 * 1024;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    @Test
    void killedWorkerLosesOnlyTheSaveInFlight() throws Exception {
        Path root = tmp.resolve("checkpoints");
        String uri = root.toUri().toString();
        try (ClusterFixture cluster = new ClusterFixture(tmp);
             CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            int port = cluster.startCoordinator(uri, WORLD, RUN, "--save-every-steps", "10");

            List<ClusterProcess> workers = new ArrayList<>();
            for (int w = 0; w < WORLD; w++) {
                workers.add(w == 2
                        ? cluster.startWorker(port, RUN, w, WORLD, 20, "--pause-at", "UPLOAD_HALFWAY@20")
                        : cluster.startWorker(port, RUN, w, WORLD, 20));
            }
            ClusterProcess victim = workers.get(2);
            victim.await("paused", ClusterFixture.TIMEOUT);
            // the victim's shard of step 20 is half written and not durable: kill it there
            victim.kill();
            assertThat(victim.waitFor(ClusterFixture.TIMEOUT)).isNotZero();

            for (int w = 0; w < 2; w++) {
                ClusterProcess survivor = workers.get(w);
                assertThat(survivor.await("aborted", e -> e.getLong("step") == 20, ClusterFixture.TIMEOUT).get("reason"))
                        .isEqualTo("WORKER_LOST");
                assertThat(survivor.await("committed", e -> e.getLong("step") == 10, ClusterFixture.TIMEOUT)).isNotNull();
                assertThat(survivor.waitFor(ClusterFixture.TIMEOUT)).as("survivor %d exit code", w).isZero();
            }

            assertThat(catalog.steps()).containsExactly(10L);
            Manifest ten = catalog.read(10);
            assertThat(catalog.verify(ten)).isEmpty();
            assertThat(ToyState.checkCheckpoint(catalog, ten, STATE_BYTES)).isEmpty();
            // the aborted attempt's half-written objects are deleted
            await().atMost(Duration.ofSeconds(30)).until(() -> catalog.attemptIds().equals(Set.of(ten.saveId())));

            // the workers rejoin the same coordinator process, restore step 10 and train on
            List<ClusterProcess> second = new ArrayList<>();
            for (int w = 0; w < WORLD; w++) {
                second.add(cluster.startWorker(port, RUN, w, WORLD, 30));
            }
            for (int w = 0; w < WORLD; w++) {
                assertThat(second.get(w).await("restored", ClusterFixture.TIMEOUT).get("step")).isEqualTo("10");
                assertThat(second.get(w).await("committed", e -> e.getLong("step") == 20, ClusterFixture.TIMEOUT)).isNotNull();
                assertThat(second.get(w).waitFor(ClusterFixture.TIMEOUT)).as("worker %d exit code", w).isZero();
            }
            assertThat(catalog.steps()).containsExactly(10L, 20L, 30L);
            Manifest latest = catalog.latest().orElseThrow();
            assertThat(latest.step()).isEqualTo(30);
            assertThat(catalog.verify(latest)).isEmpty();
            assertThat(ToyState.checkCheckpoint(catalog, latest, STATE_BYTES)).isEmpty();

            cluster.coordinator().terminate();
            assertThat(cluster.coordinator().waitFor(ClusterFixture.TIMEOUT)).isIn(0, 143);
        }
    }
}
