package dev.cairn.harness;

import static dev.cairn.harness.BenchStats.percentile;
import static dev.cairn.harness.BenchStats.round2;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The coordination figure of {@code cairn bench}: for each world size, barrier plus commit of
 * empty shards, from the first prepare to the last worker seeing the commit, beside one plain
 * atomic create of a manifest-sized object on the same storage.
 *
 * <p>The workers are full {@link CairnAgent}s (one connection and its threads each) up to
 * {@link #MAX_AGENT_WORLD}, and {@link SimulatedWorkers} (raw protocol streams over shared
 * connections) above it, or at every size with {@code --coord-sim}. Each row says which, and
 * {@link CoordinationProfile} adds where the round's time and CPU went.
 */
final class BenchCoordination {
    /** The largest world measured with one full agent per worker unless {@code --coord-sim}. */
    static final int MAX_AGENT_WORLD = 64;

    private final int[] worlds;
    private final int rounds;
    private final int warmup;
    private final boolean simAlways;
    private final int jitQuietMs;

    /**
     * {@code warmup} unmeasured and {@code rounds} measured saves for each of {@code worlds}, with
     * simulated workers at every size when {@code simAlways}, else above {@link #MAX_AGENT_WORLD};
     * before each measured round, waits up to 3 s for {@code jitQuietMs} without compilation.
     */
    BenchCoordination(int[] worlds, int rounds, int warmup, boolean simAlways, int jitQuietMs) {
        this.worlds = worlds;
        this.rounds = rounds;
        this.warmup = warmup;
        this.simAlways = simAlways;
        this.jitQuietMs = jitQuietMs;
    }

    void run(StorageUri root, Map<String, Object> out) throws Exception {
        List<Map<String, Object>> table = new ArrayList<>();
        for (int world : worlds) {
            table.add(measure(root, world));
        }
        Map<String, Object> largest = table.get(table.size() - 1);
        out.put("coordWorkers", largest.get("workers"));
        out.put("coordP50Ms", largest.get("p50Ms"));
        out.put("coordP99Ms", largest.get("p99Ms"));
        out.put("coordStorageCommitP99Ms", largest.get("storageCommitP99Ms"));
        out.put("coordination", table);
    }

    /** One world's saves: starts each round and returns the {@link System#nanoTime()} at which its last worker saw the commit. */
    private interface Workers extends AutoCloseable {
        long save(long step) throws Exception;

        @Override
        void close();
    }

    private Map<String, Object> measure(StorageUri root, int world) throws Exception {
        CoordinationProfile profile = new CoordinationProfile();
        CoordinatorConfig config = CoordinatorConfig.builder(BenchWorkers.RUN, world, BenchStorage.child(root, "w" + world))
                .retention(RetentionPolicy.keepLast(2))
                .hooks(profile)
                .build();
        boolean sim = simAlways || world > MAX_AGENT_WORLD;
        List<Double> latencies = new ArrayList<>();
        List<Double> commits = new ArrayList<>();
        byte[] manifestSized = new byte[512 + 160 * world];
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             CheckpointStore store = CheckpointStores.open(config.storage(), true);
             Workers workers = sim ? simulated(coordinator.port(), world, config) : agents(coordinator.port(), world)) {
            // a training run saves thousands of times: measure the compiled save path, not the JIT compiling it
            // (at 64 workers the compiler threads took about half the CPU of each of the first rounds)
            // the warm-up rounds run what the measured ones run (the profile's readings and the storage
            // probe too: compiled in the first measured rounds, they put 75-90 ms of compiling in them)
            for (int round = 0; round < warmup + rounds; round++) {
                if (round == warmup) {
                    profile.clear();
                    latencies.clear();
                    commits.clear();
                }
                if (round >= warmup) {
                    // C2 compiles of gRPC's and Netty's deeply inlined paths take 0.5-1.7 s of CPU each
                    // (JFR: 23 s of compilation in a 200-round run at 1,024 workers), so they can outlast
                    // the warm-up and share the 2 cores with the rounds: let the queue drain first (read
                    // from the compiler threads' CPU: a compile in progress is not quiet)
                    JvmActivity.awaitJitQuiet(jitQuietMs);
                }
                profile.startRound();
                long t0 = System.nanoTime();
                long last = workers.save(round + 1);
                profile.endRound(t0, last);
                latencies.add((last - t0) / 1e6);
                // the storage part of it: one atomic create of a manifest-sized object, right after
                long c0 = System.nanoTime();
                store.createIfAbsent("bench-probe/" + round, manifestSized);
                commits.add((System.nanoTime() - c0) / 1e6);
            }
        }
        double statsMs = sequentialStats(config.storage(), world);
        List<Double> sorted = BenchStats.sorted(latencies);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("workers", world);
        row.put("workersAre", sim ? "simulated: raw protocol streams, " + SimulatedWorkers.STREAMS_PER_CHANNEL + " per shared connection"
                : "agents: one CairnAgent (own connection) each");
        row.put("rounds", sorted.size());
        row.put("warmupRounds", warmup);
        row.put("p50Ms", round2(percentile(sorted, 50)));
        row.put("p99Ms", round2(percentile(sorted, 99)));
        row.put("maxMs", round2(sorted.get(sorted.size() - 1)));
        List<Double> commitSorted = BenchStats.sorted(commits);
        row.put("storageCommitP50Ms", round2(percentile(commitSorted, 50)));
        row.put("storageCommitP99Ms", round2(percentile(commitSorted, 99)));
        row.put("sequentialStatOfWorldObjectsMs", round2(statsMs));
        row.putAll(profile.summary());
        BenchReport.progress("coordination, %d %s workers: p50 %.1f ms, p99 %.1f ms over %d saves (a plain atomic create of the manifest: "
                + "p50 %.1f ms, p99 %.1f ms); %s", world, sim ? "simulated" : "agent", percentile(sorted, 50), percentile(sorted, 99),
                sorted.size(), percentile(commitSorted, 50), percentile(commitSorted, 99), profile.summary());
        return row;
    }

    /**
     * What the commit's object check would cost with a non-empty shard per worker (these empty
     * shards have no object, so the rounds above stat nothing): {@code world} one-byte objects on
     * the same storage, stat'ed one after the other as a single check; the median of 5 passes, ms.
     */
    private static double sequentialStats(StorageUri uri, int world) throws Exception {
        try (CheckpointStore store = CheckpointStores.open(uri, true)) {
            List<String> keys = new ArrayList<>();
            for (int w = 0; w < world; w++) {
                String key = "bench-stat/worker-" + w;
                try (ObjectWriter writer = store.create(key)) {
                    writer.write(new byte[] {1}, 0, 1);
                    writer.commit();
                }
                keys.add(key);
            }
            List<Double> passes = new ArrayList<>();
            for (int pass = 0; pass < 5; pass++) {
                long t0 = System.nanoTime();
                for (String key : keys) {
                    if (store.stat(key).isEmpty()) {
                        throw new IllegalStateException("bench object " + key + " vanished");
                    }
                }
                passes.add((System.nanoTime() - t0) / 1e6);
            }
            store.deleteAll(keys);
            return BenchStats.median(passes);
        }
    }

    private static Workers simulated(int port, int world, CoordinatorConfig config) throws Exception {
        SimulatedWorkers sim = SimulatedWorkers.connect("127.0.0.1", port, BenchWorkers.RUN, world, config.heartbeatInterval());
        try {
            sim.join(BenchWorkers.TIMEOUT);
        } catch (Exception e) {
            sim.close();
            throw e;
        }
        return new Workers() {
            @Override
            public long save(long step) throws Exception {
                return SimulatedWorkers.await(sim.save(step), BenchWorkers.TIMEOUT, "commit of step " + step);
            }

            @Override
            public void close() {
                sim.close();
            }
        };
    }

    private static Workers agents(int port, int world) throws Exception {
        List<CairnAgent> agents = new ArrayList<>();
        try {
            for (int w = 0; w < world; w++) {
                agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + port, BenchWorkers.RUN, w, world)
                        .stagingBytes(1 << 20)
                        .chunkBytes(64 << 10)
                        .build()));
            }
        } catch (Exception e) {
            BenchWorkers.closeAll(agents);
            throw e;
        }
        return new Workers() {
            @Override
            public long save(long step) throws Exception {
                List<CompletableFuture<Long>> done = new ArrayList<>();
                for (CairnAgent a : agents) {
                    done.add(BenchWorkers.committedAt(a.save(step, snap -> { })));
                }
                return BenchWorkers.lastCommit(done);
            }

            @Override
            public void close() {
                BenchWorkers.closeAll(agents);
            }
        };
    }
}
