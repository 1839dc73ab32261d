package dev.cairn.agent;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.IntFunction;
import java.util.function.UnaryOperator;

/** A real coordinator on loopback with real agents in this JVM, each on its own channel. */
final class TestCluster implements AutoCloseable {
    static final String RUN = "run-1";

    final Coordinator coordinator;
    final List<CairnAgent> agents = new ArrayList<>();
    private final ExecutorService trainers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "test-trainer");
        t.setDaemon(true);
        return t;
    });

    private TestCluster(Coordinator coordinator) {
        this.coordinator = coordinator;
    }

    static TestCluster start(Path storage, int world, UnaryOperator<CoordinatorConfig.Builder> tweak) throws IOException {
        CoordinatorConfig config = tweak.apply(CoordinatorConfig.builder(RUN, world, StorageUri.parse(storage.toString()))
                .heartbeatInterval(Duration.ofMillis(200))
                .heartbeatTimeout(Duration.ofSeconds(5))
                .barrierTimeout(Duration.ofSeconds(20))
                .uploadTimeout(Duration.ofSeconds(20))).build();
        return new TestCluster(Coordinator.start(config, "127.0.0.1", 0));
    }

    AgentConfig.Builder agentConfig(int index) {
        return AgentConfig.builder("127.0.0.1:" + coordinator.port(), RUN, index, coordinator.config().worldSize())
                .stagingBytes(1 << 20)
                .connectTimeout(Duration.ofSeconds(10));
    }

    /** Connects every worker with the default agent config. */
    TestCluster connectAll() throws IOException {
        return connectAll(i -> agentConfig(i).build());
    }

    TestCluster connectAll(IntFunction<AgentConfig> configs) throws IOException {
        for (int i = 0; i < coordinator.config().worldSize(); i++) {
            agents.add(CairnAgent.connect(configs.apply(i)));
        }
        return this;
    }

    CairnAgent agent(int i) {
        return agents.get(i);
    }

    /** Saves on every worker concurrently (save() may block on staging until the barrier releases). */
    List<SaveHandle> saveAll(long step, IntFunction<SnapshotWriter> writerOf) {
        List<CompletableFuture<SaveHandle>> futures = new ArrayList<>();
        for (int i = 0; i < agents.size(); i++) {
            int w = i;
            futures.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return agents.get(w).save(step, writerOf.apply(w));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }, trainers));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    /** Deterministic pseudo-random state of one worker at one step. */
    static byte[] state(String name, int worker, long step, int size) {
        byte[] b = new byte[size];
        new Random(31L * name.hashCode() + 1009L * worker + step).nextBytes(b);
        return b;
    }

    @Override
    public void close() {
        for (CairnAgent a : agents) {
            a.close();
        }
        coordinator.close();
        trainers.shutdownNow();
    }
}
