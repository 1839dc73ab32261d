package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUri;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The agent over an in-process channel it is handed and does not own. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InProcessAgentTest {
    @TempDir
    Path storage;

    @Test
    void anAgentOnAHandedInProcessChannelSavesTypedEntriesAndLeavesTheChannelOpen() throws Exception {
        String name = InProcessServerBuilder.generateName();
        CoordinatorConfig config = CoordinatorConfig.builder(TestCluster.RUN, 1, StorageUri.parse(storage.toString()))
                .heartbeatInterval(Duration.ofMillis(200)).build();
        try (Coordinator coordinator = Coordinator.start(config, InProcessServerBuilder.forName(name).directExecutor(), Clock.systemUTC())) {
            ManagedChannel channel = InProcessChannelBuilder.forName(name).directExecutor().build();
            float[] weights = {1.5f, -2.25f, 3f};
            try (CairnAgent agent = CairnAgent.connect(AgentConfig.builder("inprocess:1", TestCluster.RUN, 0, 1)
                    .stagingBytes(1 << 20).build(), channel)) {
                SavedCheckpoint saved = agent.save(5, snap -> snap.put("model/w", weights)).await(Duration.ofSeconds(20));
                assertThat(saved.step()).isEqualTo(5);
            }
            assertThat(channel.isShutdown()).as("the caller owns the channel").isFalse();

            try (var store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
                CheckpointCatalog catalog = new CheckpointCatalog(store);
                var m = catalog.read(5);
                ByteBuffer b = ByteBuffer.wrap(catalog.readEntry(m, m.entry(0, "model/w").orElseThrow())).order(ByteOrder.LITTLE_ENDIAN);
                assertThat(new float[] {b.getFloat(), b.getFloat(), b.getFloat()}).containsExactly(weights);
            }
            channel.shutdownNow();
        }
    }
}
