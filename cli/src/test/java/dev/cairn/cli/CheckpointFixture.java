package dev.cairn.cli;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.SaveHandle;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/** Writes real checkpoints with an in-process coordinator and agents on loopback. */
final class CheckpointFixture {
    static final String RUN = "run-1";

    private CheckpointFixture() {}

    /** Each worker's own entry {@code model/w}. */
    static byte[] own(int worker, long step) {
        return bytes(1009L * worker + step, 3000 + 17 * worker);
    }

    /** The replicated entry {@code optimizer/state}, the same on every worker. */
    static byte[] replicated(long step) {
        return bytes(-step, 512);
    }

    private static byte[] bytes(long seed, int size) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Saves {@code steps} with {@code world} workers; every save commits before this returns. */
    static void create(Path storage, int world, long... steps) throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, world, StorageUri.parse(storage.toString()))
                .heartbeatInterval(Duration.ofMillis(200))
                .heartbeatTimeout(Duration.ofSeconds(5))
                .barrierTimeout(Duration.ofSeconds(20))
                .uploadTimeout(Duration.ofSeconds(20))
                .retention(RetentionPolicy.keepLast(100))
                .build();
        List<CairnAgent> agents = new ArrayList<>();
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
            try {
                for (int w = 0; w < world; w++) {
                    agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + coordinator.port(), RUN, w, world)
                            .stagingBytes(1 << 20).connectTimeout(Duration.ofSeconds(10)).build()));
                }
                for (long step : steps) {
                    List<CompletableFuture<SaveHandle>> saves = new ArrayList<>();
                    for (CairnAgent agent : agents) {
                        saves.add(CompletableFuture.supplyAsync(() -> {
                            try {
                                return agent.save(step, snap -> {
                                    snap.put("model/w", own(agent.workerIndex(), step));
                                    snap.putReplicated("optimizer/state", replicated(step));
                                    snap.metadata("loss", 1.0 / step);
                                });
                            } catch (java.io.IOException e) {
                                throw new java.io.UncheckedIOException(e);
                            }
                        }));
                    }
                    for (CompletableFuture<SaveHandle> s : saves) {
                        s.join().await(Duration.ofSeconds(20));
                    }
                }
            } finally {
                agents.forEach(CairnAgent::close);
            }
        }
    }
}
