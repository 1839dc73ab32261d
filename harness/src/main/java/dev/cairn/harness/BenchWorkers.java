package dev.cairn.harness;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.AgentHooks;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.SaveHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The simulated workers of the throughput figures: one trainer thread per worker, its state
 * off-heap (a direct buffer, as tensors on a device or in native memory are), a warm heap array
 * per worker as the target of the copy baseline and of restores, and one {@link CairnAgent} per
 * worker with its own gRPC connection.
 */
final class BenchWorkers implements AutoCloseable {
    static final String RUN = "bench";
    static final Duration TIMEOUT = Duration.ofMinutes(10);

    final int workers;
    final long shardBytes;
    final int entryBytes;
    /** Each worker's trainer state. */
    final ByteBuffer[] state;
    /** Each worker's warm heap memory of the shard's size. */
    final byte[][] dest;
    private final boolean phases;
    private final ExecutorService trainers;

    BenchWorkers(int workers, long shardBytes, int entryBytes, boolean phases) {
        if (shardBytes > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("--shard-mib above 2047 is not supported by the copy baseline");
        }
        this.workers = workers;
        this.shardBytes = shardBytes;
        this.entryBytes = entryBytes;
        this.phases = phases;
        this.state = new ByteBuffer[workers];
        this.dest = new byte[workers][];
        this.trainers = Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "bench-trainer");
            t.setDaemon(true);
            return t;
        });
    }

    /** Allocates and fills every worker's state, and touches every copy target. */
    void prepare() throws Exception {
        parallel(w -> {
            state[w] = ByteBuffer.allocateDirect((int) shardBytes);
            fill(state[w], w);
            dest[w] = new byte[(int) shardBytes];
            Arrays.fill(dest[w], (byte) 1); // the copy baseline's target is warm, as reused staging is
            return 0L;
        });
    }

    /** One worker's part of a round, on its trainer thread. */
    @FunctionalInterface
    interface WorkerTask {
        long run(int worker) throws Exception;
    }

    /** Runs {@code task} for every worker at once, one trainer thread each; returns each worker's result. */
    long[] parallel(WorkerTask task) throws Exception {
        List<Future<Long>> futures = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            int worker = w;
            futures.add(trainers.submit(() -> task.run(worker)));
        }
        long[] result = new long[workers];
        for (int w = 0; w < workers; w++) {
            try {
                result[w] = futures.get(w).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof Exception ex) {
                    throw ex;
                }
                throw e;
            }
        }
        return result;
    }

    /** One agent per worker, each with staging for a whole shard; {@code --phases} prints every agent phase. */
    List<CairnAgent> connect(int port) throws Exception {
        return connect(port, AgentConfig.DEFAULT_CHUNK_BYTES);
    }

    /** As {@link #connect(int)}, with staging chunks of {@code chunkBytes}. */
    List<CairnAgent> connect(int port, int chunkBytes) throws Exception {
        List<CairnAgent> agents = new ArrayList<>();
        try {
            for (int w = 0; w < workers; w++) {
                int worker = w;
                agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + port, RUN, w, workers)
                        .stagingBytes(shardBytes + (8L << 20))
                        .chunkBytes(chunkBytes)
                        .hooks(new AgentHooks() {
                            @Override
                            public void onPhase(Phase phase, long step) {
                                if (phases) {
                                    System.err.printf("phase w%d step %d %s %d%n", worker, step, phase, System.nanoTime() / 1_000_000 % 100_000);
                                }
                            }
                        })
                        .build()));
            }
        } catch (Exception e) {
            closeAll(agents);
            throw e;
        }
        return agents;
    }

    static String entryName(int e) {
        return String.format(Locale.ROOT, "model/layer_%04d/kernel", e);
    }

    /** The {@link System#nanoTime()} at which the save of {@code h} committed. */
    static CompletableFuture<Long> committedAt(SaveHandle h) {
        CompletableFuture<Long> at = new CompletableFuture<>();
        h.committed().whenComplete((ok, err) -> {
            if (err != null) {
                at.completeExceptionally(err);
            } else {
                at.complete(System.nanoTime());
            }
        });
        return at;
    }

    /** Waits for every commit; returns the last one's {@link System#nanoTime()}. */
    static long lastCommit(List<CompletableFuture<Long>> committed) throws Exception {
        long last = 0;
        for (CompletableFuture<Long> f : committed) {
            last = Math.max(last, f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS));
        }
        return last;
    }

    static void closeAll(List<CairnAgent> agents) {
        for (CairnAgent a : agents) {
            a.close();
        }
    }

    private static void fill(ByteBuffer b, int worker) {
        long x = 0x9E3779B97F4A7C15L * (worker + 1);
        ByteBuffer longs = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        while (longs.remaining() >= 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            longs.putLong(x);
        }
    }

    @Override
    public void close() {
        trainers.shutdownNow();
    }
}
