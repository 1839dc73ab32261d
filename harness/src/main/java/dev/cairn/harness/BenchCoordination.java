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
 */
final class BenchCoordination {
    private final int[] worlds;
    private final int rounds;
    private final int warmup;

    /** {@code warmup} unmeasured and {@code rounds} measured saves for each of {@code worlds}. */
    BenchCoordination(int[] worlds, int rounds, int warmup) {
        this.worlds = worlds;
        this.rounds = rounds;
        this.warmup = warmup;
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

    private Map<String, Object> measure(StorageUri root, int world) throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder(BenchWorkers.RUN, world, BenchStorage.child(root, "w" + world))
                .retention(RetentionPolicy.keepLast(2))
                .build();
        List<Double> latencies = new ArrayList<>();
        List<Double> commits = new ArrayList<>();
        byte[] manifestSized = new byte[512 + 160 * world];
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             CheckpointStore store = CheckpointStores.open(config.storage(), true)) {
            List<CairnAgent> agents = new ArrayList<>();
            try {
                for (int w = 0; w < world; w++) {
                    agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + coordinator.port(), BenchWorkers.RUN, w, world)
                            .stagingBytes(1 << 20)
                            .chunkBytes(64 << 10)
                            .build()));
                }
                // a training run saves thousands of times: measure the compiled save path, not the JIT compiling it
                // (at 64 workers the compiler threads took about half the CPU of each of the first rounds)
                for (int round = 0; round < warmup + rounds; round++) {
                    long step = round + 1;
                    List<CompletableFuture<Long>> done = new ArrayList<>();
                    long t0 = System.nanoTime();
                    for (CairnAgent a : agents) {
                        done.add(BenchWorkers.committedAt(a.save(step, snap -> { })));
                    }
                    long last = BenchWorkers.lastCommit(done);
                    if (round >= warmup) {
                        latencies.add((last - t0) / 1e6);
                        // the storage part of it: one atomic create of a manifest-sized object, right after
                        long c0 = System.nanoTime();
                        store.createIfAbsent("bench-probe/" + round, manifestSized);
                        commits.add((System.nanoTime() - c0) / 1e6);
                    }
                }
            } finally {
                BenchWorkers.closeAll(agents);
            }
        }
        List<Double> sorted = BenchStats.sorted(latencies);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("workers", world);
        row.put("rounds", sorted.size());
        row.put("warmupRounds", warmup);
        row.put("p50Ms", round2(percentile(sorted, 50)));
        row.put("p99Ms", round2(percentile(sorted, 99)));
        row.put("maxMs", round2(sorted.get(sorted.size() - 1)));
        List<Double> commitSorted = BenchStats.sorted(commits);
        row.put("storageCommitP50Ms", round2(percentile(commitSorted, 50)));
        row.put("storageCommitP99Ms", round2(percentile(commitSorted, 99)));
        BenchReport.progress("coordination, %d workers: p50 %.1f ms, p99 %.1f ms over %d saves (a plain atomic create of the manifest: "
                + "p50 %.1f ms, p99 %.1f ms)", world, percentile(sorted, 50), percentile(sorted, 99), sorted.size(),
                percentile(commitSorted, 50), percentile(commitSorted, 99));
        return row;
    }
}
