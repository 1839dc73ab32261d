package dev.cairn.harness;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.StorageUri;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The kept-checkpoints sweep of {@code cairn bench --kept}: with K checkpoints already committed in
 * the storage, the cost of committing one more (the coordinator's commit path) and of finding the
 * latest one as a new process does (a restore, a restarted coordinator). The requirement:
 * neither grows with K.
 *
 * <p>The K checkpoints are real manifests (2 workers, one entry each, empty shards: no shard
 * objects) written with the real codec through {@link CheckpointCatalog#commitManifest}, in
 * parallel; the sweep adds to them from one count to the next. Each measured round commits step
 * K+1, looks it up through fresh store instances, then deletes it and puts the hint back, so K
 * stays K.
 */
final class BenchKept {
    static final int[] DEFAULT_COUNTS = {1, 10, 100, 1000, 10000};
    private static final int MAX_COUNT = 1_000_000;
    private static final int WARMUP = 3;
    private static final int POPULATE_THREADS = 16;
    private static final String RUN = "bench-kept";

    private BenchKept() {}

    /** The counts to sweep, ascending and checked; {@code null} when the sweep is not selected. */
    static int[] checkCounts(List<String> only, int[] counts, int rounds) {
        if (!only.contains("kept")) {
            return counts;
        }
        int[] ks = counts == null ? DEFAULT_COUNTS : counts;
        if (ks.length == 0) {
            throw new IllegalArgumentException("--kept needs at least one count of checkpoints");
        }
        for (int k : ks) {
            if (k < 1 || k > MAX_COUNT) {
                throw new IllegalArgumentException("--kept: every count must be between 1 and " + MAX_COUNT + ", was " + k);
            }
        }
        if (rounds < 1 || rounds > 100_000) {
            throw new IllegalArgumentException("--kept-rounds must be between 1 and 100000, was " + rounds);
        }
        return Arrays.stream(ks).sorted().distinct().toArray();
    }

    static List<Map<String, Object>> run(int[] counts, int rounds, StorageUri root) throws Exception {
        List<Map<String, Object>> rows = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(POPULATE_THREADS, r -> {
            Thread t = new Thread(r, "bench-kept-populate");
            t.setDaemon(true);
            return t;
        });
        try (CheckpointStore store = CheckpointStores.open(root, true)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store); // the coordinator's: open for the whole run
            coordinatorStart(BenchStorage.child(root, "warm-up"), 0); // class loading and JIT of the first start are not K's
            int populated = 0;
            for (int k : counts) {
                long p0 = System.nanoTime();
                populate(catalog, pool, populated + 1, k);
                double populateS = (System.nanoTime() - p0) / 1e9;
                BenchReport.progress("kept sweep: %d checkpoints committed (%d new in %.1f s)", k, k - populated, populateS);
                populated = k;
                rows.add(measure(catalog, root, k, rounds, populateS));
            }
        } finally {
            pool.shutdownNow();
        }
        return rows;
    }

    /** Commits steps {@code from..to} in parallel and points the hint at {@code to}. */
    private static void populate(CheckpointCatalog catalog, ExecutorService pool, int from, int to) throws Exception {
        List<Future<?>> futures = new ArrayList<>();
        int n = to - from + 1;
        int per = Math.max(1, (n + POPULATE_THREADS - 1) / POPULATE_THREADS);
        for (int lo = from; lo <= to; lo += per) {
            int first = lo;
            int last = Math.min(to, lo + per - 1);
            futures.add(pool.submit(() -> {
                for (long step = first; step <= last; step++) {
                    if (catalog.commitManifest(manifest(step)) != CheckpointCatalog.CommitOutcome.COMMITTED) {
                        throw new IllegalStateException("step " + step + " was already committed");
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                throw e.getCause() instanceof Exception ex ? ex : e;
            }
        }
        catalog.updateHint(to);
    }

    private static Map<String, Object> measure(CheckpointCatalog catalog, StorageUri root, int k, int rounds, double populateS)
            throws Exception {
        List<Double> commit = new ArrayList<>();
        List<Double> createIfAbsent = new ArrayList<>();
        List<Double> latest = new ArrayList<>();
        List<Double> agentRead = new ArrayList<>();
        long step = k + 1L;
        String key = Layout.manifestKey(step);
        for (int round = 0; round < WARMUP + rounds; round++) {
            Manifest m = manifest(step);
            // CheckpointCatalog.commit, in its two parts: the coordinator announces the commit after the first
            long t0 = System.nanoTime();
            if (catalog.commitManifest(m) != CheckpointCatalog.CommitOutcome.COMMITTED) {
                throw new IllegalStateException("step " + step + " was already committed");
            }
            long t0b = System.nanoTime();
            catalog.updateHint(step);
            double manifestMs = (t0b - t0) / 1e6;
            double commitMs = (System.nanoTime() - t0) / 1e6;
            double latestMs;
            // as a new process would: its own store instance, nothing cached
            try (CheckpointStore fresh = CheckpointStores.open(root, false)) {
                long t1 = System.nanoTime();
                Manifest found = new CheckpointCatalog(fresh).latest().orElseThrow();
                latestMs = (System.nanoTime() - t1) / 1e6;
                if (found.step() != step) {
                    throw new IllegalStateException("latest checkpoint is step " + found.step() + ", expected " + step);
                }
            }
            double agentMs;
            // an agent's restoreLatest: the coordinator announced the step; the agent reads that manifest
            try (CheckpointStore fresh = CheckpointStores.open(root, false)) {
                long t2 = System.nanoTime();
                Manifest read = new CheckpointCatalog(fresh).read(step);
                agentMs = (System.nanoTime() - t2) / 1e6;
                if (!read.saveId().equals(m.saveId())) {
                    throw new IllegalStateException("read another save of step " + step);
                }
            }
            // back to K checkpoints, hint on the newest of them (not timed)
            catalog.store().delete(key);
            catalog.updateHint(k);
            if (round >= WARMUP) {
                commit.add(commitMs);
                createIfAbsent.add(manifestMs);
                latest.add(latestMs);
                agentRead.add(agentMs);
            }
        }
        double startMs = coordinatorStart(root, k);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("kept", k);
        row.put("rounds", rounds);
        BenchStats.putPercentiles(row, "commit", commit);
        BenchStats.putPercentiles(row, "manifestCreate", createIfAbsent);
        BenchStats.putPercentiles(row, "latest", latest);
        BenchStats.putPercentiles(row, "agentRead", agentRead);
        row.put("coordinatorStartMs", BenchStats.round2(startMs));
        row.put("populateSeconds", BenchStats.round2(populateS));
        BenchReport.progress("kept %d: commit p50 %.2f / p99 %.2f ms; latest lookup p50 %.2f / p99 %.2f ms; agent read p50 %.2f ms; "
                + "coordinator start %.0f ms", k, row.get("commitP50Ms"), row.get("commitP99Ms"), row.get("latestP50Ms"),
                row.get("latestP99Ms"), row.get("agentReadP50Ms"), startMs);
        return row;
    }

    /** A restarted coordinator: start (recovery reads every manifest to rebuild retention) and stop. */
    private static double coordinatorStart(StorageUri root, int k) throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, 2, root).retention(RetentionPolicy.keepLast(Integer.MAX_VALUE)).build();
        long t0 = System.nanoTime();
        try (Coordinator c = Coordinator.start(config, "127.0.0.1", 0)) {
            double ms = (System.nanoTime() - t0) / 1e6;
            long latest = c.latest().map(ref -> ref.getStep()).orElse(0L);
            if (latest != k) {
                throw new IllegalStateException("the coordinator resumed from step " + latest + ", expected " + k);
            }
            return ms;
        }
    }

    /** A real manifest of 2 workers with one (empty) entry each. */
    static Manifest manifest(long step) {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = List.of(new Manifest.ShardRef(0, null, 0, 0), new Manifest.ShardRef(1, null, 0, 0));
        List<Manifest.EntryRef> entries = List.of(new Manifest.EntryRef("optimizer/step", 0, 0, 0, 0, false),
                new Manifest.EntryRef("optimizer/step", 1, 0, 0, 0, false));
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("step", step);
        meta.put("loss", 1.0 / step);
        return new Manifest(ManifestCodec.FORMAT_VERSION, RUN, step, saveId, Instant.now(), 2, shards, entries, meta);
    }
}
