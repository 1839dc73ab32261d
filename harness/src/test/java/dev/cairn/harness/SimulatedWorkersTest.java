package dev.cairn.harness;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bench's simulated workers against a real coordinator on loopback: the protocol as an agent with an empty snapshot speaks it. */
class SimulatedWorkersTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @Test
    void aWorldLargerThanOneConnectionsStreamsSavesAndCommitsEmptyShards() throws Exception {
        int world = 2 * SimulatedWorkers.STREAMS_PER_CHANNEL + 3; // three connections, the last one partly used
        StorageUri uri = StorageUri.parse(dir.resolve("run").toUri().toString());
        CoordinatorConfig config = CoordinatorConfig.builder("sim", world, uri).build();
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             SimulatedWorkers sim = SimulatedWorkers.connect("127.0.0.1", coordinator.port(), "sim", world, Duration.ofMillis(200))) {
            sim.join(TIMEOUT);
            for (long step = 1; step <= 3; step++) {
                long before = System.nanoTime();
                long committedAt = SimulatedWorkers.await(sim.save(step), TIMEOUT, "commit");
                assertThat(committedAt).isGreaterThan(before);
            }
        }
        try (CheckpointStore store = CheckpointStores.open(uri, false)) {
            Manifest m = new CheckpointCatalog(store).latest().orElseThrow();
            assertThat(m.step()).isEqualTo(3);
            assertThat(m.worldSize()).isEqualTo(world);
            assertThat(m.shards()).hasSize(world).allSatisfy(s -> {
                assertThat(s.objectKey()).as("an empty shard has no object").isNull();
                assertThat(s.length()).isZero();
            });
            assertThat(m.entries()).isEmpty();
            assertThat(store.list("data/")).as("the simulated workers write nothing").isEmpty();
        }
    }

    @Test
    void anAbortedSaveFailsItsFutureWithTheReason() throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve("run").toUri().toString());
        CoordinatorConfig config = CoordinatorConfig.builder("sim", 3, uri).build();
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             SimulatedWorkers sim = SimulatedWorkers.connect("127.0.0.1", coordinator.port(), "sim", 3, Duration.ofSeconds(1))) {
            sim.join(TIMEOUT);
            SimulatedWorkers.await(sim.save(5), TIMEOUT, "commit");

            assertThatThrownBy(() -> SimulatedWorkers.await(sim.save(5), TIMEOUT, "abort"))
                    .hasMessageContaining("save of step 5 aborted: STEP_ALREADY_COMMITTED");
            // the workers are still in the run: the next step commits
            SimulatedWorkers.await(sim.save(6), TIMEOUT, "commit");
        }
    }

    @Test
    void aWorkerTheCoordinatorRefusesFailsTheJoin() throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve("run").toUri().toString());
        CoordinatorConfig config = CoordinatorConfig.builder("sim", 2, uri).build();
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             SimulatedWorkers sim = SimulatedWorkers.connect("127.0.0.1", coordinator.port(), "other-run", 2, Duration.ofSeconds(1))) {
            assertThatThrownBy(() -> sim.join(TIMEOUT)).hasMessageContaining("simulated worker").hasMessageContaining("stream broken");
        }
    }
}
