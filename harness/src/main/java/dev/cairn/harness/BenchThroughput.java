package dev.cairn.harness;

import static dev.cairn.harness.BenchStats.median;
import static dev.cairn.harness.BenchStats.ratios;
import static dev.cairn.harness.BenchStats.round2;
import static dev.cairn.harness.BenchStats.round3;

import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.RestoredCheckpoint;
import dev.cairn.agent.SaveHandle;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The stall, save-throughput, naive-save and restore-throughput figures of {@code cairn bench},
 * each measured round by round beside its {@link BenchBaselines baseline}: after a JIT warm-up and
 * {@code --warmup-saves} unmeasured full-size rounds, the medians of {@code --saves} rounds.
 */
final class BenchThroughput {
    /** The options of the throughput rounds. */
    record Rounds(int workers, int saves, int warmupSaves, int jitWarmup, int jitQuietMs, boolean phases) {}

    private final Rounds rounds;
    private final StorageUri uri;
    private final long shardBytes;
    private final int entryBytes;
    /** Where the figures go: the command's output, or one row of the shard-size sweep. */
    private final Map<String, Object> out;

    BenchThroughput(Rounds rounds, StorageUri uri, long shardBytes, int entryBytes, Map<String, Object> out) {
        this.rounds = rounds;
        this.uri = uri;
        this.shardBytes = shardBytes;
        this.entryBytes = entryBytes;
        this.out = out;
    }

    void run() throws Exception {
        int workers = rounds.workers();
        int warmupSaves = rounds.warmupSaves();
        List<Double> copyMs = new ArrayList<>();
        List<Double> stallMs = new ArrayList<>();
        List<Double> stallPrepareMs = new ArrayList<>();
        List<Double> stallCopyMs = new ArrayList<>();
        List<Double> stallSealMs = new ArrayList<>();
        List<Double> naiveMs = new ArrayList<>();
        List<Double> saveMiBps = new ArrayList<>();
        List<Double> rawWriteMiBps = new ArrayList<>();
        List<Double> restoreMiBps = new ArrayList<>();
        List<Double> rawReadMiBps = new ArrayList<>();
        List<Double> channelReadMiBps = new ArrayList<>();
        double mib = workers * (shardBytes / 1048576.0);
        try (BenchWorkers w = new BenchWorkers(workers, shardBytes, entryBytes, rounds.phases())) {
            BenchReport.progress("preparing %d x %d MiB of trainer state", workers, shardBytes >> 20);
            w.prepare();
            CoordinatorConfig config = CoordinatorConfig.builder(BenchWorkers.RUN, workers, uri)
                    .retention(RetentionPolicy.keepLast(2))
                    .build();
            try (CheckpointStore store = CheckpointStores.open(uri, true);
                 Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
                BenchBaselines baselines = new BenchBaselines(w, uri, store);
                long warmedUp = jitWarmup(w, coordinator.port());
                List<CairnAgent> agents = w.connect(coordinator.port());
                try {
                    for (int round = 1 - warmupSaves; round <= rounds.saves(); round++) {
                        boolean warmup = round <= 0;
                        long step = warmedUp + warmupSaves + round;
                        double raw = baselines.rawWrite();
                        JvmActivity.awaitJitQuiet(rounds.jitQuietMs());
                        double copy = baselines.copy(); // right before the save: the same conditions
                        JvmActivity.awaitJitQuiet(rounds.jitQuietMs());
                        long[] save = cairnSave(w, agents, step);
                        double naive = baselines.naiveSave(step);
                        double stall = save[0] / 1e6;
                        double saveS = save[1] / 1e9;
                        BenchReport.progress("%s %d: copy %.1f ms, stall %.1f ms (prepare %.1f, copy into staging %.1f, seal %.1f), naive stall %.1f ms;"
                                        + " save %.0f MiB/s, plain write %.0f MiB/s",
                                warmup ? "warm-up" : "round", round, copy, stall, save[2] / 1e6, save[3] / 1e6, save[4] / 1e6, naive,
                                mib / saveS, mib / (raw / 1e3));
                        if (!warmup) {
                            copyMs.add(copy);
                            stallMs.add(stall);
                            stallPrepareMs.add(save[2] / 1e6);
                            stallCopyMs.add(save[3] / 1e6);
                            stallSealMs.add(save[4] / 1e6);
                            naiveMs.add(naive);
                            saveMiBps.add(mib / saveS);
                            rawWriteMiBps.add(mib / (raw / 1e3));
                        }
                    }
                } finally {
                    BenchWorkers.closeAll(agents);
                }
                for (int round = 1 - warmupSaves; round <= rounds.saves(); round++) {
                    boolean warmup = round <= 0;
                    double channel = baselines.channelRead();
                    double raw = baselines.rawRead();
                    double restore = restore(w, coordinator.port());
                    BenchReport.progress("%s %d: restore %.0f MiB/s, plain (mapped) read %.0f MiB/s, channel read %.0f MiB/s",
                            warmup ? "warm-up" : "round", round, mib / (restore / 1e3), mib / (raw / 1e3), mib / (channel / 1e3));
                    if (!warmup) {
                        restoreMiBps.add(mib / (restore / 1e3));
                        rawReadMiBps.add(mib / (raw / 1e3));
                        channelReadMiBps.add(mib / (channel / 1e3));
                    }
                }
            }
        }
        double stall = median(stallMs);
        double copy = median(copyMs);
        double naive = median(naiveMs);
        double save = median(saveMiBps);
        double rawWrite = median(rawWriteMiBps);
        double restore = median(restoreMiBps);
        double rawRead = median(rawReadMiBps);
        out.put("stallMs", round2(stall));
        out.put("copyMs", round2(copy));
        out.put("stallRatio", round3(stall / copy));
        out.put("naiveStallMs", round2(naive));
        out.put("naiveStallRatio", round3(naive / copy));
        out.put("saveMiBps", round2(save));
        out.put("rawWriteMiBps", round2(rawWrite));
        out.put("writeRatio", round3(save / rawWrite));
        out.put("restoreMiBps", round2(restore));
        out.put("rawReadMiBps", round2(rawRead));
        out.put("readRatio", round3(restore / rawRead));
        if (!Double.isNaN(median(channelReadMiBps))) {
            // the restore baseline before 2026-11-26 (two copies), for comparison
            out.put("channelReadMiBps", round2(median(channelReadMiBps)));
            out.put("readRatioVsChannelRead", round3(restore / median(channelReadMiBps)));
        }
        Map<String, Object> perRound = new LinkedHashMap<>();
        perRound.put("stallMs", round2(stallMs));
        perRound.put("copyMs", round2(copyMs));
        // the slowest worker's stall in parts: save() call → its copy starts, the copy, copy end → return
        perRound.put("stallPrepareMs", round2(stallPrepareMs));
        perRound.put("stallCopyMs", round2(stallCopyMs));
        perRound.put("stallSealMs", round2(stallSealMs));
        perRound.put("naiveStallMs", round2(naiveMs));
        perRound.put("saveMiBps", round2(saveMiBps));
        perRound.put("rawWriteMiBps", round2(rawWriteMiBps));
        perRound.put("restoreMiBps", round2(restoreMiBps));
        perRound.put("rawReadMiBps", round2(rawReadMiBps));
        perRound.put("channelReadMiBps", round2(channelReadMiBps));
        out.put("rounds", perRound);
        // each round measures a figure next to its baseline; under a drifting machine load the median of
        // these paired ratios is the steadier view (the headline ratios above are ratios of medians)
        Map<String, Object> paired = new LinkedHashMap<>();
        paired.put("stallRatio", round3(median(ratios(stallMs, copyMs))));
        paired.put("naiveStallRatio", round3(median(ratios(naiveMs, copyMs))));
        paired.put("writeRatio", round3(median(ratios(saveMiBps, rawWriteMiBps))));
        paired.put("readRatio", round3(median(ratios(restoreMiBps, rawReadMiBps))));
        out.put("pairedRatioMedians", paired);
    }

    /** Entries of a JIT warm-up save (at least): enough that per-entry code reaches C2 in 100 saves. */
    private static final int WARMUP_ENTRIES = 256;
    /** Staging chunks of the JIT warm-up agents: the smallest, so per-chunk code runs as often as per-entry code. */
    private static final int WARMUP_CHUNK_BYTES = 4096;

    /**
     * Warms the JIT up: {@code --jit-warmup} saves, and as many restores by fresh agents, of a small
     * shard of at least {@value #WARMUP_ENTRIES} entries of 1 KiB, staged in 4 KiB chunks. A save
     * runs most of its code once per entry or per chunk, so tiered compilation needs many saves: with
     * the real shape (32 entries of 8 MiB in 4 MiB chunks) the per-chunk code ran ~64 times a save,
     * and the C1/C2 compiler threads still took 12–66 ms of CPU inside every measured ~85 ms stall
     * (per-thread CPU from {@code /proc/self/task}, {@code --phases}) — on 2 cores, from the
     * trainers' copy. Small entries and chunks run the same code ~100 000 times before the measured
     * rounds. Returns the last step saved.
     */
    private long jitWarmup(BenchWorkers w, int port) throws Exception {
        int jitWarmup = rounds.jitWarmup();
        if (jitWarmup == 0) {
            return 0;
        }
        List<CairnAgent> agents = w.connect(port, WARMUP_CHUNK_BYTES);
        int entries = (int) Math.max(WARMUP_ENTRIES, shardBytes / entryBytes);
        int small = (int) Math.min(1024, shardBytes / entries);
        byte[][] target = new byte[w.workers][small];
        long t0 = System.nanoTime();
        for (int i = 1; i <= jitWarmup; i++) {
            long step = i;
            List<CompletableFuture<Long>> committed = commits(w.workers);
            w.parallel(worker -> {
                SaveHandle h = agents.get(worker).save(step, snap -> {
                    ByteBuffer src = w.state[worker].duplicate();
                    for (int e = 0; e < entries; e++) {
                        src.limit(e * small + small).position(e * small);
                        snap.put(BenchWorkers.entryName(e), src);
                    }
                    snap.metadata("step", step);
                });
                committed.set(worker, BenchWorkers.committedAt(h));
                return 0L;
            });
            BenchWorkers.lastCommit(committed);
        }
        BenchWorkers.closeAll(agents);
        for (int i = 0; i < jitWarmup; i++) {
            List<CairnAgent> fresh = w.connect(port);
            try {
                w.parallel(worker -> {
                    RestoredCheckpoint r = fresh.get(worker).restoreLatest().orElseThrow();
                    for (String name : r.entryNames()) {
                        try (InputStream in = r.open(name)) {
                            if (in.readNBytes(target[worker], 0, small) != small || in.read() != -1) {
                                throw new IOException("warm-up entry " + name + " has not " + small + " bytes");
                            }
                        }
                    }
                    return 0L;
                });
            } finally {
                BenchWorkers.closeAll(fresh);
            }
        }
        BenchReport.progress("JIT warm-up: %d small saves and restores in %.1f s", jitWarmup, (System.nanoTime() - t0) / 1e9);
        return jitWarmup;
    }

    /** One slot per worker for the commit future its trainer thread sets. */
    private static List<CompletableFuture<Long>> commits(int workers) {
        return Collections.synchronizedList(new ArrayList<>(Collections.nCopies(workers, (CompletableFuture<Long>) null)));
    }

    /**
     * Returns {max stall nanos, first save() call to commit nanos, and the slowest worker's stall in
     * three parts: save() call to the start of its copy (the prepare), the copy into staging, end of
     * the copy to save()'s return (sealing)}.
     */
    private long[] cairnSave(BenchWorkers w, List<CairnAgent> agents, long step) throws Exception {
        AtomicLong firstCall = new AtomicLong(Long.MAX_VALUE);
        List<CompletableFuture<Long>> committedAt = commits(w.workers);
        long[][] parts = new long[w.workers][3];
        Map<String, Long> cpuBefore = rounds.phases() ? JvmActivity.threadCpu() : null;
        long uptimeBefore = java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
        long processBefore = OS.getProcessCpuTime();
        long[] stalls = w.parallel(worker -> {
            long t0 = System.nanoTime();
            firstCall.accumulateAndGet(t0, Math::min);
            long[] copyAt = new long[2];
            SaveHandle h = agents.get(worker).save(step, snap -> {
                copyAt[0] = System.nanoTime();
                ByteBuffer src = w.state[worker].duplicate();
                for (long off = 0, e = 0; off < shardBytes; off += entryBytes, e++) {
                    int n = (int) Math.min(entryBytes, shardBytes - off);
                    src.limit((int) off + n).position((int) off);
                    snap.put(BenchWorkers.entryName((int) e), src);
                }
                snap.metadata("step", step);
                copyAt[1] = System.nanoTime();
            });
            long end = System.nanoTime();
            parts[worker] = new long[] {copyAt[0] - t0, copyAt[1] - copyAt[0], end - copyAt[1]};
            committedAt.set(worker, BenchWorkers.committedAt(h));
            return end - t0;
        });
        if (cpuBefore != null) {
            // --phases: what else ran while the trainers were blocked (thread CPU by name; process
            // CPU includes the JIT and GC, which no Java thread accounts for)
            long process = OS.getProcessCpuTime() - processBefore;
            Map<String, Long> after = JvmActivity.threadCpu();
            StringBuilder line = new StringBuilder();
            after.forEach((name, t) -> {
                long d = t - cpuBefore.getOrDefault(name, 0L);
                if (d >= 500_000) {
                    line.append(String.format(" %s %.1f", name, d / 1e6));
                }
            });
            BenchReport.progress("step %d: CPU ms while the trainers were blocked (JVM uptime %d-%d ms): process %.1f;%s", step,
                    uptimeBefore, java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime(), process / 1e6, line);
        }
        long last = BenchWorkers.lastCommit(committedAt);
        int slowest = 0;
        for (int i = 1; i < stalls.length; i++) {
            slowest = stalls[i] > stalls[slowest] ? i : slowest;
        }
        long[] p = parts[slowest];
        return new long[] {stalls[slowest], last - firstCall.get(), p[0], p[1], p[2]};
    }

    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    /**
     * Restore as a trainer does at start: join, open the latest checkpoint, read every entry (CRC32C
     * checked) into its (warm) tensor memory. Joining is not timed; opening the manifest is. Returns ms.
     */
    private double restore(BenchWorkers w, int port) throws Exception {
        List<CairnAgent> agents = w.connect(port);
        try {
            long t0 = System.nanoTime();
            w.parallel(worker -> {
                RestoredCheckpoint r = agents.get(worker).restoreLatest()
                        .orElseThrow(() -> new IllegalStateException("no checkpoint to restore"));
                long off = 0;
                for (String name : r.entryNames()) {
                    int n = (int) r.manifest().entry(worker, name).orElseThrow().length();
                    try (InputStream in = r.open(name)) {
                        if (in.readNBytes(w.dest[worker], (int) off, n) != n || in.read() != -1) {
                            throw new IOException("entry " + name + " has not " + n + " bytes");
                        }
                    }
                    off += n;
                }
                if (off != shardBytes) {
                    throw new IOException("worker " + worker + " restored " + off + " bytes, expected " + shardBytes);
                }
                return 0L;
            });
            return (System.nanoTime() - t0) / 1e6;
        } finally {
            BenchWorkers.closeAll(agents);
        }
    }
}
