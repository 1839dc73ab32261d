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
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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

    static final int COLS = 1024;
    /** Fewest unmeasured rounds before the measured ones (the JIT compiles readRegion's path over the first ones). */
    static final int MIN_WARMUP_ROUNDS = 10;
    private static final long ROW_BYTES = COLS * 4L;
    private static final String RUN = "bench-reshard";

    private final Settings s;
    private final long rows;

    BenchReshard(Settings settings) {
        this.s = settings;
        this.rows = Math.max(settings.to(), settings.totalBytes() / settings.tensors() / ROW_BYTES);
    }

    static String name(int tensor) {
        return String.format(Locale.ROOT, "model/layer_%03d/kernel", tensor);
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
            Reader[] readers = new Reader[s.to()];
            for (int r = 0; r < s.to(); r++) {
                CheckpointStore store = CheckpointStores.open(uri, false);
                stores.add(store);
                CheckpointCatalog catalog = new CheckpointCatalog(store);
                readers[r] = new Reader(r, uri, catalog, catalog.read(step));
            }
            measure(pool, readers, out);
        } finally {
            pool.shutdownNow();
            for (CheckpointStore store : stores) {
                store.close();
            }
        }
    }

    private void measure(ExecutorService pool, Reader[] readers, Map<String, Object> out) throws Exception {
        double mib = rows * ROW_BYTES * s.tensors() / 1048576.0;
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
        row.put("globalShape", List.of(rows, COLS));
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
        RegionRead run(Reader reader) throws Exception;
    }

    /** Runs {@code task} on every reader at once; returns {wall ms}, and the readers' summed reads in {@code total[0]}. */
    private static double[] timed(ExecutorService pool, Reader[] readers, ReaderTask task, RegionRead... total) throws Exception {
        List<Future<RegionRead>> futures = new ArrayList<>();
        long t0 = System.nanoTime();
        for (Reader r : readers) {
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
                            .stagingBytes(part.rows() * ROW_BYTES * s.tensors() + (8L << 20))
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
        BenchReport.progress("reshard: %d workers saved %d tensors of [%d, %d] float32 in %.1f s", s.from(), s.tensors(), rows, COLS,
                (System.nanoTime() - t0) / 1e9);
        return step;
    }

    private void saveShard(CairnAgent agent, RowSplit part, long step) throws Exception {
        List<ByteBuffer> state = new ArrayList<>();
        for (int t = 0; t < s.tensors(); t++) {
            ByteBuffer b = ByteBuffer.allocateDirect((int) (part.rows() * ROW_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
            for (long r = part.start(); r < part.end(); r++) {
                fillRow(b, t, r);
            }
            state.add(b.flip());
        }
        agent.save(step, snap -> {
            for (int t = 0; t < s.tensors(); t++) {
                if (part.rows() > 0) {
                    snap.put(name(t), state.get(t), Manifest.Tensor.of(DType.FLOAT32, part.rows(), COLS)
                            .withGlobal(new long[] {rows, COLS}, new long[] {part.start(), 0}));
                }
            }
        }).committed().get(BenchWorkers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    /** Appends row {@code row} of tensor {@code tensor}: values that depend on both, so a misplaced row is found. */
    private static void fillRow(ByteBuffer b, int tensor, long row) {
        long x = seed(tensor, row);
        for (int i = 0; i < ROW_BYTES / 8; i++) {
            x = next(x);
            b.putLong(x);
        }
    }

    private static long seed(int tensor, long row) {
        return 0x9E3779B97F4A7C15L * (tensor + 1) ^ (row + 1) * 0xC2B2AE3D27D4EB4FL;
    }

    private static long next(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        return x ^ x << 17;
    }

    /** One restoring worker: its row block of every tensor, its own store, and its buffer. */
    private final class Reader {
        private final RowSplit part;
        private final StorageUri uri;
        private final CheckpointCatalog catalog;
        private final Manifest manifest;
        private final ByteBuffer dest;
        /** The plain reads of the baseline: (object, offset in it, length, offset in dest), from the manifest's layout. */
        private final List<long[]> ranges = new ArrayList<>();
        private final List<String> keys = new ArrayList<>();

        Reader(int rank, StorageUri uri, CheckpointCatalog catalog, Manifest manifest) {
            this.part = RowSplit.of(rows, s.to(), rank);
            this.uri = uri;
            this.catalog = catalog;
            this.manifest = manifest;
            this.dest = ByteBuffer.allocate((int) (part.rows() * ROW_BYTES * s.tensors()));
            java.util.Arrays.fill(dest.array(), (byte) 1); // warm, as a trainer's tensors are
            for (int t = 0; t < s.tensors(); t++) {
                for (Manifest.EntryRef e : manifest.entries()) {
                    if (!e.name().equals(name(t))) {
                        continue;
                    }
                    long pieceStart = e.tensor().globalOffsets().get(0);
                    long lo = Math.max(pieceStart, part.start());
                    long hi = Math.min(pieceStart + e.tensor().shape().get(0), part.end());
                    if (lo < hi) {
                        keys.add(manifest.shard(e.worker()).objectKey());
                        boolean whole = (hi - lo) * ROW_BYTES == e.length();
                        ranges.add(new long[] {keys.size() - 1, e.offset() + (lo - pieceStart) * ROW_BYTES, (hi - lo) * ROW_BYTES,
                                t * part.rows() * ROW_BYTES + (lo - part.start()) * ROW_BYTES, whole ? 1 : 0, e.crc32c()});
                    }
                }
            }
        }

        RegionRead cairnRead() throws IOException {
            RegionRead total = RegionRead.NONE;
            ByteBuffer d = dest.duplicate();
            for (int t = 0; t < s.tensors(); t++) {
                d.position((int) (t * part.rows() * ROW_BYTES));
                total = total.plus(catalog.readRegion(manifest, name(t), DType.FLOAT32, new long[] {part.start(), 0},
                        new long[] {part.rows(), COLS}, d));
            }
            return total;
        }

        /**
         * The plain reads; with {@code check}, also the CRC32C of every range that is a whole stored
         * entry, as readRegion checks them (the same integrity work, to show what the check costs).
         */
        void plainRead(boolean check) throws IOException {
            if (uri.scheme().equals("file")) {
                Map<String, FileChannel> open = new HashMap<>();
                try {
                    for (long[] r : ranges) {
                        String key = keys.get((int) r[0]);
                        FileChannel ch = open.get(key);
                        if (ch == null) {
                            ch = FileChannel.open(Path.of(uri.path(), key), StandardOpenOption.READ);
                            open.put(key, ch);
                        }
                        ch.map(FileChannel.MapMode.READ_ONLY, r[1], r[2]).get(0, dest.array(), (int) r[3], (int) r[2]);
                        checkCrc(check, r);
                    }
                } finally {
                    for (FileChannel ch : open.values()) {
                        ch.close();
                    }
                }
            } else {
                for (long[] r : ranges) {
                    try (InputStream in = catalog.store().read(keys.get((int) r[0]), r[1], r[2])) {
                        if (in.readNBytes(dest.array(), (int) r[3], (int) r[2]) != r[2]) {
                            throw new IOException("short read of " + keys.get((int) r[0]));
                        }
                    }
                    checkCrc(check, r);
                }
            }
        }

        private void checkCrc(boolean check, long[] r) throws IOException {
            if (check && r[4] == 1) {
                java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
                crc.update(dest.array(), (int) r[3], (int) r[2]);
                if ((int) crc.getValue() != (int) r[5]) {
                    throw new IOException("reshard bench: CRC32C mismatch in " + keys.get((int) r[0]));
                }
            }
        }

        /** Checks every byte of the buffer against the saved values; clears it for the next read. */
        void verify(String how) {
            ByteBuffer d = dest.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            for (int t = 0; t < s.tensors(); t++) {
                for (long r = part.start(); r < part.end(); r++) {
                    long x = seed(t, r);
                    for (int i = 0; i < ROW_BYTES / 8; i++) {
                        x = next(x);
                        if (d.getLong() != x) {
                            throw new IllegalStateException("reshard bench: " + how + " restored wrong bytes at row " + r + " of " + name(t));
                        }
                    }
                }
            }
            java.util.Arrays.fill(dest.array(), (byte) 1);
        }
    }
}
