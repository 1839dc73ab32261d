package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.StorageUri;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Coordinators (in-process servers) sharing one local storage root. */
class CoordinatorFencingTest {
    private static final String RUN = "run-1";

    @TempDir
    Path dir;

    private StorageUri uri;
    private CheckpointStore store;

    @BeforeEach
    void open() throws Exception {
        uri = StorageUri.parse(dir.resolve(RUN).toUri().toString());
        store = CheckpointStores.open(uri, true);
    }

    @AfterEach
    void close() throws Exception {
        store.close();
    }

    private Coordinator start(boolean force) throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, 2, uri).forceTakeover(force).build();
        return Coordinator.start(config, InProcessServerBuilder.forName("fence-" + System.nanoTime()).directExecutor(), Clock.systemUTC());
    }

    @Test
    void aSecondCoordinatorIsRefusedAndTheFirstKeepsServing() throws Exception {
        try (Coordinator first = start(false)) {
            assertThatThrownBy(() -> start(false)).isInstanceOf(CoordinatorLease.LeaseHeldException.class)
                    .hasMessageContaining("pid " + ProcessHandle.current().pid());
            assertThat(first.deposition()).isNotDone();
            assertThat(first.connectedWorkers()).isEmpty();
        }
    }

    @Test
    void aCleanStopFreesTheRootForTheNext() throws Exception {
        start(false).close();
        try (Coordinator next = start(false)) {
            assertThat(next.epoch()).isEqualTo(2);
        }
    }

    @Test
    void aForcedTakeoverDoesNotSweepTheLiveOnesSaveInFlight() throws Exception {
        try (Coordinator first = start(false)) {
            // the first coordinator's save in flight: a shard written after its last renewal
            String shard = Layout.shardKey(Layout.newSaveId(40), 0);
            store.write(shard, new byte[] {1, 2, 3});

            try (Coordinator second = start(true)) {
                assertThat(second.epoch()).isEqualTo(2);
                assertThat(store.stat(shard)).as("not swept by the coordinator taking over").isPresent();
            }
        }
    }

    @Test
    void aDeposedCoordinatorStopsAtItsNextRenewal() throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, 2, uri).lease(Duration.ofMillis(600)).build();
        Coordinator first = Coordinator.start(config, InProcessServerBuilder.forName("fence-" + System.nanoTime()).directExecutor(),
                Clock.systemUTC());
        try (Coordinator second = start(true)) {
            String reason = first.deposition().get(10, TimeUnit.SECONDS);
            assertThat(reason).contains("taken over").contains("epoch 2");
            assertThat(second.deposition()).isNotDone();
        } finally {
            first.close();
        }
    }

    @Test
    void afterATakeoverTheDeposedOnesAttemptsAreSweptOnceItsLeaseHasExpired() throws Exception {
        Duration lease = Duration.ofMillis(600);
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, 2, uri).lease(lease).build();
        Coordinator first = Coordinator.start(config, InProcessServerBuilder.forName("fence-" + System.nanoTime()).directExecutor(),
                Clock.systemUTC());
        // the first coordinator's save in flight: a shard written after its last renewal
        String shard = Layout.shardKey(Layout.newSaveId(40), 0);
        store.write(shard, new byte[] {1, 2, 3});
        try (Coordinator second = Coordinator.start(CoordinatorConfig.builder(RUN, 2, uri).lease(lease).forceTakeover(true).build(),
                InProcessServerBuilder.forName("fence-" + System.nanoTime()).directExecutor(), Clock.systemUTC())) {
            assertThat(store.stat(shard)).as("not swept while the deposed one's lease may still be live").isPresent();
            first.deposition().get(10, TimeUnit.SECONDS);
            // its lease expired (≤ 600 ms after its last renewal) plus one lease of margin: swept
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(15)).until(() -> store.stat(shard).isEmpty());
            assertThat(second.deposition()).isNotDone();
        } finally {
            first.close();
        }
    }
}
