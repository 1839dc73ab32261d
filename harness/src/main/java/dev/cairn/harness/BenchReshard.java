package dev.cairn.harness;

import static dev.cairn.harness.BenchStats.median;
import static dev.cairn.harness.BenchStats.ratios;
import static dev.cairn.harness.BenchStats.round2;
import static dev.cairn.harness.BenchStats.round3;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.DType;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.RegionRead;
import dev.cairn.storage.StorageUri;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The resharded-restore figure of {@code cairn bench}: a checkpoint of {@code tensors} float32
 * tensors of 4 KiB rows, saved by {@code from} agents each holding its {@link RowSplit} row block
 * of every tensor, is restored by {@code to} readers in parallel, each reading its own row block of
 * every tensor with {@link CheckpointCatalog#readRegion} into a warm heap buffer. The baseline
 * reads the same byte regions the plain way into the same buffers: for files a mapped copy of each
 * overlapping piece's byte range, elsewhere one ranged {@code store.read} per overlapping piece.
 * A third variant adds to those plain reads the CRC32C of every range that is a whole stored
 * entry — the check readRegion does — to show what that check costs. The first warm-up round
 * checks every byte against the saved values.
 */
final class BenchReshard {
    /** The figure's options. */
    record Settings(int from, int to, long totalBytes, int tensors, int saves, int warmup) {}

    /** Fewest unmeasured rounds before the measured ones (the JIT compiles readRegion's path over the first ones). */
    static final int MIN_WARMUP_ROUNDS = 10;
    private static final String RUN = "bench-reshard";

    private final Settings s;
    private final long rows;

    BenchReshard(Settings settings) {
        this.s = settings;
        this.rows = Math.max(settings.to(), settings.totalBytes() / settings.tensors() / ReshardReader.ROW_BYTES);
    }

    void run(StorageUri uri, Map<String, Object> out) throws Exception {
        long step = save(uri);
        ExecutorService pool = Executors.newFixedThreadPool(s.to(), r -> {
            Thread t = new Thread(r, "bench-reshard-reader");
            t.setDaemon(true);
            return t;
        });
        List<CheckpointStore> stores = new ArrayList<>();
        try {
            ReshardReader[] readers = new ReshardReader[s.to()];
            for (int r = 0; r < s.to(); r++) {
                CheckpointStore store = CheckpointStores.open(uri, false);
                stores.add(store);
                CheckpointCatalog catalog = new CheckpointCatalog(store);
                readers[r] = new ReshardReader(RowSplit.of(rows, s.to(), r), s.tensors(), uri, catalog, catalog.read(step));
            }
            measure(pool, readers, out);
        } finally {
            pool.shutdownNow();
            for (CheckpointStore store : stores) {
                store.close();
            }
        }
    }

    private void measure(ExecutorService pool, ReshardReader[] readers, Map<String, Object> out) throws Exception {
        double mib = rows * ReshardReader.ROW_BYTES * s.tensors() / 1048576.0;
        List<Double> cairnMiBps = new ArrayList<>();
        List<Double> plainMiBps = new ArrayList<>();
        List<Double> checkedMiBps = new ArrayList<>();
        RegionRead lastRead = RegionRead.NONE;
        for (int round = 1 - s.warmup(); round <= s.saves(); round++) {
            boolean warmup = round <= 0;
            boolean check = round == 1 - s.warmup();
            // rotate which goes first, so none always finds the pages freshly touched by another
            double plain = 0;
            double checked = 0;
            double cairn = 0;
            RegionRead read = RegionRead.NONE;
            for (int k = 0; k < 3; k++) {
                int which = (k + round + s.warmup()) % 3; // rotate which goes first
                if (which == 0) {
                    plain = timed(pool, readers, reader -> {
                        reader.plainRead(false);
                        if (check) {
                            reader.verify("plain ranged reads");
                        }
                        return RegionRead.NONE;
                    })[0];
                } else if (which == 1) {
                    checked = timed(pool, readers, reader -> {
                        reader.plainRead(true);
                        return RegionRead.NONE;
                    })[0];
                } else {
                    RegionRead[] total = new RegionRead[1];
                    cairn = timed(pool, readers, reader -> {
                        RegionRead r = reader.cairnRead();
                        if (check) {
                            reader.verify("readRegion");
                        }
                        return r;
                    }, total)[0];
                    read = total[0];
                }
            }
            BenchReport.progress("reshard %s %d: %d -> %d readers, readRegion %.0f MiB/s, plain ranged read %.0f MiB/s, with the CRC32C of "
                    + "whole pieces %.0f MiB/s (read %d of %d bytes needed, %d ranged reads)", warmup ? "warm-up" : "round", round, s.from(),
                    s.to(), mib / (cairn / 1e3), mib / (plain / 1e3), mib / (checked / 1e3), read.bytesRead(), read.bytesNeeded(),
                    read.rangedReads());
            if (!warmup) {
                cairnMiBps.add(mib / (cairn / 1e3));
                plainMiBps.add(mib / (plain / 1e3));
                checkedMiBps.add(mib / (checked / 1e3));
                lastRead = read;
            }
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("savedBy", s.from());
        row.put("restoredBy", s.to());
        row.put("tensors", s.tensors());
        row.put("globalShape", List.of(rows, ReshardReader.COLS));
        row.put("dtype", "float32");
        row.put("MiB", round2(mib));
        row.put("warmupRounds", s.warmup());
        out.put("reshard", row);
        out.put("reshardReadMiBps", round2(median(cairnMiBps)));
        out.put("reshardRawReadMiBps", round2(median(plainMiBps)));
        out.put("reshardReadRatio", round3(median(cairnMiBps) / median(plainMiBps)));
        out.put("reshardPairedReadRatio", round3(median(ratios(cairnMiBps, plainMiBps))));
        // the same plain reads plus the CRC32C of the ranges that are whole stored entries, as readRegion checks them
        out.put("reshardCheckedRawReadMiBps", round2(median(checkedMiBps)));
        out.put("reshardReadRatioVsChecked", round3(median(cairnMiBps) / median(checkedMiBps)));
        out.put("reshardBytesNeeded", lastRead.bytesNeeded());
        out.put("reshardBytesRead", lastRead.bytesRead());
        out.put("reshardBytesReadOverNeeded", round3((double) lastRead.bytesRead() / lastRead.bytesNeeded()));
        out.put("reshardRangedReads", lastRead.rangedReads());
        row.put("rounds", Map.of("readMiBps", round2(cairnMiBps), "rawReadMiBps", round2(plainMiBps), "checkedRawReadMiBps",
                round2(checkedMiBps)));
    }

    @FunctionalInterface
    private interface ReaderTask {
        RegionRead run(ReshardReader reader) throws Exception;
    }

    /** Runs {@code task} on every reader at once; returns {wall ms}, and the readers' summed reads in {@code total[0]}. */
    private static double[] timed(ExecutorService pool, ReshardReader[] readers, ReaderTask task, RegionRead... total) throws Exception {
        List<Future<RegionRead>> futures = new ArrayList<>();
        long t0 = System.nanoTime();
        for (ReshardReader r : readers) {
            futures.add(pool.submit(() -> task.run(r)));
        }
        RegionRead sum = RegionRead.NONE;
        for (Future<RegionRead> f : futures) {
            try {
                RegionRead r = f.get(BenchWorkers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                sum = new RegionRead(sum.bytesNeeded() + r.bytesNeeded(), sum.bytesRead() + r.bytesRead(),
                        sum.rangedReads() + r.rangedReads(), sum.piecesRead() + r.piecesRead());
            } catch (java.util.concurrent.ExecutionException e) {
                throw e.getCause() instanceof Exception ex ? ex : e;
            }
        }
        double ms = (System.nanoTime() - t0) / 1e6;
        if (total.length > 0) {
            total[0] = sum;
        }
        return new double[] {ms};
    }

    /** Saves the checkpoint with {@code from} agents (threads, one connection each); returns its step. */
    private long save(StorageUri uri) throws Exception {
        long step = 1;
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, s.from(), uri).build();
        long t0 = System.nanoTime();
        // one trainer thread per saving worker: their saves meet at the barrier
        ExecutorService trainers = Executors.newFixedThreadPool(s.from());
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
            List<CairnAgent> agents = new ArrayList<>();
            try {
                List<CompletableFuture<Void>> saved = new ArrayList<>();
                for (int w = 0; w < s.from(); w++) {
                    RowSplit part = RowSplit.of(rows, s.from(), w);
                    CairnAgent agent = CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + coordinator.port(), RUN, w, s.from())
                            .stagingBytes(part.rows() * ReshardReader.ROW_BYTES * s.tensors() + (8L << 20))
                            .build());
                    agents.add(agent);
                    saved.add(CompletableFuture.runAsync(() -> {
                        try {
                            saveShard(agent, part, step);
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    }, trainers));
                }
                CompletableFuture.allOf(saved.toArray(CompletableFuture[]::new)).get(BenchWorkers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            } finally {
                BenchWorkers.closeAll(agents);
            }
        } finally {
            trainers.shutdownNow();
        }
        BenchReport.progress("reshard: %d workers saved %d tensors of [%d, %d] float32 in %.1f s", s.from(), s.tensors(), rows, ReshardReader.COLS,
                (System.nanoTime() - t0) / 1e9);
        return step;
    }

    private void saveShard(CairnAgent agent, RowSplit part, long step) throws Exception {
        List<ByteBuffer> state = new ArrayList<>();
        for (int t = 0; t < s.tensors(); t++) {
            ByteBuffer b = ByteBuffer.allocateDirect((int) (part.rows() * ReshardReader.ROW_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
            for (long r = part.start(); r < part.end(); r++) {
                ReshardReader.fillRow(b, t, r);
            }
            state.add(b.flip());
        }
        agent.save(step, snap -> {
            for (int t = 0; t < s.tensors(); t++) {
                if (part.rows() > 0) {
                    snap.put(ReshardReader.name(t), state.get(t), Manifest.Tensor.of(DType.FLOAT32, part.rows(), ReshardReader.COLS)
                            .withGlobal(new long[] {rows, ReshardReader.COLS}, new long[] {part.start(), 0}));
                }
            }
        }).committed().get(BenchWorkers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

}
