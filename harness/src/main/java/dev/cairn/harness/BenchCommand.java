package dev.cairn.harness;

import dev.cairn.testkit.EmbeddedStorage;
import dev.cairn.testkit.ClusterProcess;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.RestoredCheckpoint;
import dev.cairn.agent.SaveHandle;
import dev.cairn.agent.SavedCheckpoint;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreProvider;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code cairn bench}: measures Cairn against the physical limits of the machine it runs on, each
 * figure beside a baseline measured in the same run on the same storage (see docs/performance.md).
 *
 * <p>The simulated workers are trainer threads in this JVM, one {@link CairnAgent} per worker,
 * each with its own gRPC connection to a coordinator on loopback. Their state lives off-heap
 * (direct buffers, as tensors on a device or in native memory do) and is handed to
 * {@code save()} through the public {@link dev.cairn.agent.Snapshot} API. The memory figure comes
 * from a separate small-heap JVM running one agent.
 */
@Command(name = "bench", description = "Measure stall, save and restore throughput, coordination latency and agent heap "
        + "against plain copies, writes and reads on the same storage, in one run.")
public final class BenchCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Duration TIMEOUT = Duration.ofMinutes(10);
    private static final String RUN = "bench";

    @Option(names = "--backend", defaultValue = "file", description = "file, hdfs or s3 (default ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--storage", paramLabel = "URI", description = "Root to benchmark under (default: a fresh temp directory for "
            + "file, an embedded MiniDFSCluster or S3Proxy on loopback for hdfs and s3). A bench-<time> directory is created below "
            + "it and removed afterwards.")
    String storage;

    @Option(names = "--workers", defaultValue = "2", description = "Workers saving and restoring in parallel (default ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--shard-mib", defaultValue = "256", description = "Bytes per worker shard, in MiB (default ${DEFAULT-VALUE}).")
    int shardMib;

    @Option(names = "--saves", defaultValue = "5", description = "Measured repetitions of every figure; medians are reported "
            + "(default ${DEFAULT-VALUE}, plus one warm-up round).")
    int saves;

    @Option(names = "--entry-kib", defaultValue = "8192", description = "Size of each entry (tensor) of a shard, in KiB (default ${DEFAULT-VALUE}).")
    int entryKib;

    @Option(names = "--coord-workers", split = ",", defaultValue = "1,8,32,64",
            description = "World sizes for the coordination figure (default ${DEFAULT-VALUE}).")
    int[] coordWorkers;

    @Option(names = "--coord-rounds", defaultValue = "100", description = "Saves of empty shards per world size (default ${DEFAULT-VALUE}).")
    int coordRounds;

    @Option(names = "--coord-warmup", defaultValue = "200", description = "Unmeasured saves per world size before the measured ones, "
            + "so the JIT has compiled the save path as in a long training run (default ${DEFAULT-VALUE}).")
    int coordWarmup;

    @Option(names = "--warmup-saves", defaultValue = "3", description = "Full-size saves and restores before the measured ones, "
            + "not counted (default ${DEFAULT-VALUE}).")
    int warmupSaves;

    @Option(names = "--jit-warmup", defaultValue = "100", description = "Small saves and restores of the same shape (entries) "
            + "before the measured stall, save and restore rounds, so the JIT has compiled their paths as in a long training run "
            + "(default ${DEFAULT-VALUE}).")
    int jitWarmup;

    @Option(names = "--memory-shard-mib", defaultValue = "128", description = "Shard size of the memory figure; the staging "
            + "budget is 1/8 of it (default ${DEFAULT-VALUE}).")
    int memoryShardMib;

    @Option(names = "--memory-heap-mib", defaultValue = "64", description = "-Xmx of the JVM running the memory figure's agent (default ${DEFAULT-VALUE}).")
    int memoryHeapMib;

    @Option(names = "--shard-sizes", split = ",", paramLabel = "MIB,...", description = "Also run the stall/save/restore figures "
            + "for each of these shard sizes in MiB, e.g. 1,4,16,64,256,1024 (the shardSizes table).")
    int[] shardSizes;

    @Option(names = "--kept", split = ",", paramLabel = "K,...", description = "Also measure commit and latest-checkpoint lookup "
            + "with K checkpoints already committed, for each K, e.g. 1,10,100,1000,10000 (the kept table).")
    int[] kept;

    @Option(names = "--kept-rounds", defaultValue = "50", description = "Commits and lookups measured per count of --kept "
            + "(default ${DEFAULT-VALUE}, plus 3 warm-up rounds).")
    int keptRounds;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Option(names = "--keep", description = "Keep the benchmark's files.")
    boolean keep;

    @Option(names = "--phases", hidden = true, description = "Print every agent phase with a millisecond clock (to see where a save's time goes).")
    boolean phases;

    @Option(names = "--only", split = ",", hidden = true, description = "Measure only some figures: throughput, coordination, memory, "
            + "sizes (--shard-sizes), kept (--kept).")
    List<String> only = List.of("throughput", "coordination", "memory");

    private final Map<String, Object> out = new LinkedHashMap<>();
    /** The temp directory this run made when no --storage was given; removed at the end. */
    private Path createdBase;
    /** The embedded server of --backend hdfs|s3 without --storage; stopped at the end. */
    private EmbeddedStorage embedded;

    @Override
    public Integer call() throws Exception {
        validate();
        requireBackend(backend);
        only = BenchScale.selectSweeps(only, shardSizes, kept);
        shardSizes = BenchScale.checkShardSizes(only, shardSizes, workers);
        kept = BenchKept.checkCounts(only, kept, keptRounds);
        long shardBytes = (long) shardMib << 20;
        int entryBytes = (int) Math.min(shardBytes, (long) entryKib << 10);
        // copy-baseline targets on the heap; staging and the trainers' state are direct (limited to -Xmx too)
        long needHeap = 2L * workers * shardBytes + (256L << 20);
        if (only.contains("throughput") && Runtime.getRuntime().maxMemory() < needHeap) {
            throw new IllegalArgumentException("cairn bench with " + workers + " workers of " + shardMib + " MiB needs a heap of at least "
                    + (needHeap >> 20) + " MiB (staging plus the copy baseline); this JVM has " + (Runtime.getRuntime().maxMemory() >> 20)
                    + " MiB: run with CAIRN_JAVA_OPTS=-Xmx" + ((needHeap >> 30) + 1) + "g or fewer/smaller shards");
        }
        StorageUri base = baseUri();
        StorageUri root = child(base, "bench-" + System.currentTimeMillis());

        out.put("backend", backend);
        out.put("storage", root.toString());
        if (embedded != null) {
            out.put("storageServer", embedded.describe());
        }
        out.put("cores", Runtime.getRuntime().availableProcessors());
        out.put("jvm", System.getProperty("java.vm.name") + " " + Runtime.version());
        out.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        out.put("maxHeapMiB", Runtime.getRuntime().maxMemory() >> 20);
        out.put("loadAverageAtStart", round2(java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
        out.put("workers", workers);
        out.put("shardMiB", shardMib);
        out.put("entryKiB", entryBytes >> 10);
        out.put("saves", saves);
        out.put("warmupSaves", warmupSaves);
        out.put("jitWarmupSaves", jitWarmup);
        out.put("workersAre", "trainer threads in this JVM, one CairnAgent (own gRPC connection) per worker; state off-heap");

        progress("backend %s at %s; %d workers x %d MiB, %d saves + %d warm-up; %d cores", backend, root, workers, shardMib, saves, warmupSaves,
                Runtime.getRuntime().availableProcessors());
        try {
            if (only.contains("throughput")) {
                new Throughput(child(root, "throughput"), shardBytes, entryBytes, out).run();
            }
            if (only.contains("coordination")) {
                coordination(child(root, "coordination"));
            }
            if (only.contains("memory")) {
                memory(child(root, "memory"));
            }
            if (only.contains("sizes")) {
                out.put("shardSizes", BenchScale.shardSizes(shardSizes, child(root, "sizes"), entryKib,
                        (uri, bytes, entry, sink) -> new Throughput(uri, bytes, entry, sink).run(), this::progress));
            }
            if (only.contains("kept")) {
                out.put("keptRounds", keptRounds);
                out.put("kept", BenchKept.run(kept, keptRounds, child(root, "kept"), this::progress));
            }
        } finally {
            if (!keep && embedded == null) {
                deleteTree(root);
                if (createdBase != null) {
                    Files.deleteIfExists(createdBase);
                }
            }
            if (embedded != null) {
                embedded.close(); // its data lives in createdBase
                if (!keep) {
                    deleteTree(StorageUri.parse(createdBase.toString()));
                } else {
                    progress("the embedded server's files are kept in %s", createdBase);
                }
            }
        }

        out.put("loadAverageAtEnd", round2(java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
        boolean sweepsOnly = only.stream().allMatch(f -> f.equals("sizes") || f.equals("kept"));
        if (json || (!sweepsOnly && !only.containsAll(List.of("throughput", "coordination", "memory")))) {
            System.out.println(JSON.writeValueAsString(out));
        } else {
            if (!sweepsOnly) {
                printTable();
            }
            BenchScale.printTables(out);
        }
        return 0;
    }

    private void validate() {
        if (workers < 1 || workers > 64) {
            throw new IllegalArgumentException("--workers must be between 1 and 64, was " + workers);
        }
        if (shardMib < 1 || shardMib > 4096) {
            throw new IllegalArgumentException("--shard-mib must be between 1 and 4096, was " + shardMib);
        }
        if (saves < 1 || saves > 1000) {
            throw new IllegalArgumentException("--saves must be between 1 and 1000, was " + saves);
        }
        if (entryKib < 4) {
            throw new IllegalArgumentException("--entry-kib must be at least 4, was " + entryKib);
        }
        if (coordRounds < 1) {
            throw new IllegalArgumentException("--coord-rounds must be at least 1, was " + coordRounds);
        }
        if (warmupSaves < 1) {
            throw new IllegalArgumentException("--warmup-saves must be at least 1 (it touches the staging memory), was " + warmupSaves);
        }
        if (jitWarmup < 0) {
            throw new IllegalArgumentException("--jit-warmup must not be negative, was " + jitWarmup);
        }
        if (coordWarmup < 0) {
            throw new IllegalArgumentException("--coord-warmup must not be negative, was " + coordWarmup);
        }
        for (int w : coordWorkers) {
            if (w < 1 || w > 1024) {
                throw new IllegalArgumentException("--coord-workers must be between 1 and 1024, was " + w);
            }
        }
        if (memoryShardMib < 8 || memoryHeapMib < 16) {
            throw new IllegalArgumentException("--memory-shard-mib must be at least 8 and --memory-heap-mib at least 16");
        }
    }

    /** Exit 2 naming the backend when no store for its scheme is on the class path (HDFS and S3 are optional modules). */
    static void requireBackend(String backend) {
        if (!List.of("file", "hdfs", "s3").contains(backend)) {
            throw new IllegalArgumentException("--backend must be file, hdfs or s3, was '" + backend + "'");
        }
        for (CheckpointStoreProvider p : ServiceLoader.load(CheckpointStoreProvider.class, CheckpointStores.class.getClassLoader())) {
            if (p.scheme().equals(backend)) {
                return;
            }
        }
        throw new IllegalArgumentException("backend '" + backend + "' is not available: no " + backend + " CheckpointStore on the class path of this "
                + "cairn build (only " + availableSchemes() + "); build cairn with the " + backend + " storage module to benchmark it");
    }

    private static List<String> availableSchemes() {
        List<String> schemes = new ArrayList<>();
        for (CheckpointStoreProvider p : ServiceLoader.load(CheckpointStoreProvider.class, CheckpointStores.class.getClassLoader())) {
            schemes.add(p.scheme());
        }
        return schemes;
    }

    private StorageUri baseUri() throws IOException {
        if (storage == null) {
            createdBase = Files.createTempDirectory("cairn-bench-");
            if (!backend.equals("file")) {
                // the same servers as cairn demo --backend hdfs|s3, in this JVM, stopped at the end
                long t0 = System.nanoTime();
                embedded = EmbeddedStorage.start(backend, createdBase);
                progress("started %s in %.1f s", embedded.describe(), (System.nanoTime() - t0) / 1e9);
                return StorageUri.parse(embedded.uri("bench"));
            }
            return StorageUri.parse(createdBase.toString());
        }
        StorageUri uri = StorageUri.parse(storage);
        if (!uri.scheme().equals(backend)) {
            throw new IllegalArgumentException("--storage " + storage + " is not a " + backend + " URI (--backend " + backend + ")");
        }
        return uri;
    }

    private static StorageUri child(StorageUri parent, String name) {
        String path = parent.path().isEmpty() ? name : parent.path().endsWith("/") ? parent.path() + name : parent.path() + "/" + name;
        return new StorageUri(parent.scheme(), parent.authority(), path, parent.options());
    }

    private static void deleteTree(StorageUri root) {
        try {
            if (root.scheme().equals("file")) {
                Path p = Path.of(root.path());
                if (Files.exists(p)) {
                    Files.walkFileTree(p, new SimpleFileVisitor<>() {
                        @Override
                        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                            Files.delete(file);
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                            Files.delete(dir);
                            return FileVisitResult.CONTINUE;
                        }
                    });
                }
            } else {
                try (CheckpointStore store = CheckpointStores.open(root, true)) {
                    store.deleteAll(store.list("").stream().map(ObjectInfo::key).toList());
                }
            }
        } catch (IOException | RuntimeException e) {
            System.err.println("cairn bench: could not remove " + root + ": " + e);
        }
    }

    // ------------------------------------------------------------------ stall, save, restore

    /** Stall, save throughput, naive saves and restore throughput, each beside its baseline. */
    private final class Throughput {
        private final StorageUri uri;
        private final long shardBytes;
        private final int entryBytes;
        /** Where the figures go: the command's output, or one row of the shard-size sweep. */
        private final Map<String, Object> out;
        private final ByteBuffer[] state;
        private final byte[][] dest;
        private final ExecutorService trainers;

        Throughput(StorageUri uri, long shardBytes, int entryBytes, Map<String, Object> out) {
            this.uri = uri;
            this.shardBytes = shardBytes;
            this.entryBytes = entryBytes;
            this.out = out;
            if (shardBytes > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("--shard-mib above 2047 is not supported by the copy baseline");
            }
            this.state = new ByteBuffer[workers];
            this.dest = new byte[workers][];
            this.trainers = Executors.newFixedThreadPool(workers, r -> {
                Thread t = new Thread(r, "bench-trainer");
                t.setDaemon(true);
                return t;
            });
        }

        void run() throws Exception {
            progress("preparing %d x %d MiB of trainer state", workers, shardBytes >> 20);
            parallel(w -> {
                state[w] = ByteBuffer.allocateDirect((int) shardBytes);
                fill(state[w], w);
                dest[w] = new byte[(int) shardBytes];
                Arrays.fill(dest[w], (byte) 1); // the copy baseline's target is warm, as reused staging is
                return 0L;
            });
            CoordinatorConfig config = CoordinatorConfig.builder(RUN, workers, uri)
                    .retention(RetentionPolicy.keepLast(2))
                    .build();
            List<Double> copyMs = new ArrayList<>();
            List<Double> stallMs = new ArrayList<>();
            List<Double> naiveMs = new ArrayList<>();
            List<Double> saveMiBps = new ArrayList<>();
            List<Double> rawWriteMiBps = new ArrayList<>();
            List<Double> restoreMiBps = new ArrayList<>();
            List<Double> rawReadMiBps = new ArrayList<>();
            double mib = workers * (shardBytes / 1048576.0);
            try (CheckpointStore store = CheckpointStores.open(uri, true);
                 Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
                long warmedUp = jitWarmup(coordinator.port());
                List<CairnAgent> agents = connect(coordinator.port());
                try {
                    for (int round = 1 - warmupSaves; round <= saves; round++) {
                        boolean warmup = round <= 0;
                        long step = warmedUp + warmupSaves + round;
                        double raw = rawWrite(store, step);
                        double copy = copyBaseline(); // right before the save: the same conditions
                        long[] save = cairnSave(agents, step);
                        double naive = naiveSave(store, step);
                        double stall = save[0] / 1e6;
                        double saveS = save[1] / 1e9;
                        progress("%s %d: copy %.1f ms, stall %.1f ms, naive stall %.1f ms; save %.0f MiB/s, plain write %.0f MiB/s",
                                warmup ? "warm-up" : "round", round, copy, stall, naive, mib / saveS, mib / (raw / 1e3));
                        if (!warmup) {
                            copyMs.add(copy);
                            stallMs.add(stall);
                            naiveMs.add(naive);
                            saveMiBps.add(mib / saveS);
                            rawWriteMiBps.add(mib / (raw / 1e3));
                        }
                    }
                } finally {
                    closeAll(agents);
                }
                for (int round = 1 - warmupSaves; round <= saves; round++) {
                    boolean warmup = round <= 0;
                    double raw = rawRead(store);
                    double restore = restore(coordinator.port());
                    progress("%s %d: restore %.0f MiB/s, plain read %.0f MiB/s", warmup ? "warm-up" : "round", round,
                            mib / (restore / 1e3), mib / (raw / 1e3));
                    if (!warmup) {
                        restoreMiBps.add(mib / (restore / 1e3));
                        rawReadMiBps.add(mib / (raw / 1e3));
                    }
                }
            } finally {
                trainers.shutdownNow();
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
            Map<String, Object> rounds = new LinkedHashMap<>();
            rounds.put("stallMs", round2(stallMs));
            rounds.put("copyMs", round2(copyMs));
            rounds.put("naiveStallMs", round2(naiveMs));
            rounds.put("saveMiBps", round2(saveMiBps));
            rounds.put("rawWriteMiBps", round2(rawWriteMiBps));
            rounds.put("restoreMiBps", round2(restoreMiBps));
            rounds.put("rawReadMiBps", round2(rawReadMiBps));
            out.put("rounds", rounds);
            // each round measures a figure next to its baseline; under a drifting machine load the median of
            // these paired ratios is the steadier view (the headline ratios above are ratios of medians)
            Map<String, Object> paired = new LinkedHashMap<>();
            paired.put("stallRatio", round3(median(ratios(stallMs, copyMs))));
            paired.put("naiveStallRatio", round3(median(ratios(naiveMs, copyMs))));
            paired.put("writeRatio", round3(median(ratios(saveMiBps, rawWriteMiBps))));
            paired.put("readRatio", round3(median(ratios(restoreMiBps, rawReadMiBps))));
            out.put("pairedRatioMedians", paired);
        }

        private List<CairnAgent> connect(int port) throws Exception {
            List<CairnAgent> agents = new ArrayList<>();
            try {
                for (int w = 0; w < workers; w++) {
                    int worker = w;
                    agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + port, RUN, w, workers)
                            .stagingBytes(shardBytes + (8L << 20))
                            .hooks(new dev.cairn.agent.AgentHooks() {
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

        /**
         * Warms the JIT up: {@code --jit-warmup} saves, and as many restores by fresh agents, of a small
         * shard with the same entries (4 KiB each). Each save runs the save path's code only once per
         * entry or chunk, so without this the compiler threads are still busy in the measured rounds and
         * take CPU from the trainers' copy (seen as C1/C2 thread time inside the stall on 2 cores).
         * Returns the last step saved.
         */
        private long jitWarmup(int port) throws Exception {
            if (jitWarmup == 0) {
                return 0;
            }
            List<CairnAgent> agents = connect(port);
            int entries = (int) Math.max(1, shardBytes / entryBytes);
            int small = Math.min(4096, entryBytes);
            byte[][] target = new byte[workers][small];
            long t0 = System.nanoTime();
            for (int i = 1; i <= jitWarmup; i++) {
                long step = i;
                List<CompletableFuture<SavedCheckpoint>> committed = new ArrayList<>();
                for (int w = 0; w < workers; w++) {
                    committed.add(new CompletableFuture<>());
                }
                parallel(w -> {
                    SaveHandle h = agents.get(w).save(step, snap -> {
                        ByteBuffer src = state[w].duplicate();
                        for (int e = 0; e < entries; e++) {
                            src.limit(e * small + small).position(e * small);
                            snap.put(entryName(e), src);
                        }
                        snap.metadata("step", step);
                    });
                    h.committed().whenComplete((ok, err) -> {
                        if (err != null) {
                            committed.get(w).completeExceptionally(err);
                        } else {
                            committed.get(w).complete(ok);
                        }
                    });
                    return 0L;
                });
                for (CompletableFuture<SavedCheckpoint> f : committed) {
                    f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                }
            }
            closeAll(agents);
            for (int i = 0; i < jitWarmup; i++) {
                List<CairnAgent> fresh = connect(port);
                try {
                    parallel(w -> {
                        RestoredCheckpoint r = fresh.get(w).restoreLatest().orElseThrow();
                        for (String name : r.entryNames()) {
                            try (InputStream in = r.open(name)) {
                                if (in.readNBytes(target[w], 0, small) != small || in.read() != -1) {
                                    throw new IOException("warm-up entry " + name + " has not " + small + " bytes");
                                }
                            }
                        }
                        return 0L;
                    });
                } finally {
                    closeAll(fresh);
                }
            }
            progress("JIT warm-up: %d small saves and restores in %.1f s", jitWarmup, (System.nanoTime() - t0) / 1e9);
            return jitWarmup;
        }

        /** The baseline of the stall: every worker copies its state into warm heap memory, in parallel. */
        private double copyBaseline() throws Exception {
            long[] nanos = parallel(w -> {
                long t0 = System.nanoTime();
                ByteBuffer src = state[w].duplicate();
                for (long off = 0; off < shardBytes; off += entryBytes) {
                    int n = (int) Math.min(entryBytes, shardBytes - off);
                    src.limit((int) off + n).position((int) off);
                    src.get(dest[w], (int) off, n);
                }
                return System.nanoTime() - t0;
            });
            return max(nanos) / 1e6;
        }

        /** Returns {max stall nanos, first save() call to commit nanos}. */
        private long[] cairnSave(List<CairnAgent> agents, long step) throws Exception {
            AtomicLong firstCall = new AtomicLong(Long.MAX_VALUE);
            List<CompletableFuture<Long>> committedAt = new ArrayList<>();
            for (int w = 0; w < workers; w++) {
                committedAt.add(new CompletableFuture<>());
            }
            long[] stalls = parallel(w -> {
                long t0 = System.nanoTime();
                firstCall.accumulateAndGet(t0, Math::min);
                SaveHandle h = agents.get(w).save(step, snap -> {
                    ByteBuffer src = state[w].duplicate();
                    for (long off = 0, e = 0; off < shardBytes; off += entryBytes, e++) {
                        int n = (int) Math.min(entryBytes, shardBytes - off);
                        src.limit((int) off + n).position((int) off);
                        snap.put(entryName((int) e), src);
                    }
                    snap.metadata("step", step);
                });
                long stall = System.nanoTime() - t0;
                h.committed().whenComplete((ok, err) -> {
                    if (err != null) {
                        committedAt.get(w).completeExceptionally(err);
                    } else {
                        committedAt.get(w).complete(System.nanoTime());
                    }
                });
                return stall;
            });
            long last = 0;
            for (CompletableFuture<Long> f : committedAt) {
                last = Math.max(last, f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS));
            }
            return new long[] {max(stalls), last - firstCall.get()};
        }

        /** The naive way: every worker blocks until its shard is durable (write, fsync, rename) through the store. */
        private double naiveSave(CheckpointStore store, long step) throws Exception {
            long[] nanos = parallel(w -> {
                long t0 = System.nanoTime();
                byte[] buf = new byte[1 << 20];
                try (ObjectWriter writer = store.create("naive/step-" + step + "/worker-" + w + ".bin")) {
                    ByteBuffer src = state[w].duplicate();
                    while (src.hasRemaining()) {
                        int n = Math.min(buf.length, src.remaining());
                        src.get(buf, 0, n);
                        writer.write(buf, 0, n);
                    }
                    writer.commit();
                }
                return System.nanoTime() - t0;
            });
            store.deleteAll(store.list("naive/").stream().map(ObjectInfo::key).toList());
            return max(nanos) / 1e6;
        }

        private String rawKey(int w) {
            return "raw/worker-" + w + ".bin";
        }

        /**
         * The baseline of save throughput: every worker writes the same bytes with a plain client of the
         * storage, durably (a FileChannel with fsync for files; the store's own writer elsewhere).
         */
        private double rawWrite(CheckpointStore store, long step) throws Exception {
            long t0 = System.nanoTime();
            parallel(w -> {
                ByteBuffer src = state[w].duplicate();
                if (uri.scheme().equals("file")) {
                    Path p = Path.of(uri.path(), rawKey(w));
                    Files.createDirectories(p.getParent());
                    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING)) {
                        while (src.hasRemaining()) {
                            ByteBuffer slice = src.slice().limit(Math.min(src.remaining(), entryBytes));
                            while (slice.hasRemaining()) {
                                ch.write(slice);
                            }
                            src.position(src.position() + slice.position());
                        }
                        ch.force(true);
                    }
                } else {
                    byte[] buf = new byte[Math.min(entryBytes, 8 << 20)];
                    try (ObjectWriter writer = store.create(rawKey(w))) {
                        while (src.hasRemaining()) {
                            int n = Math.min(buf.length, src.remaining());
                            src.get(buf, 0, n);
                            writer.write(buf, 0, n);
                        }
                        writer.commit();
                    }
                }
                return 0L;
            });
            return (System.nanoTime() - t0) / 1e6;
        }

        /** The baseline of restore throughput: every worker reads the same number of bytes back, in parallel. */
        private double rawRead(CheckpointStore store) throws Exception {
            long t0 = System.nanoTime();
            parallel(w -> {
                if (uri.scheme().equals("file")) {
                    try (FileChannel ch = FileChannel.open(Path.of(uri.path(), rawKey(w)), StandardOpenOption.READ)) {
                        for (long off = 0; off < shardBytes; off += entryBytes) {
                            int n = (int) Math.min(entryBytes, shardBytes - off);
                            ByteBuffer b = ByteBuffer.wrap(dest[w], (int) off, n);
                            while (b.hasRemaining()) {
                                if (ch.read(b, b.position()) < 0) { // array offset == file offset
                                    throw new IOException("short read of " + rawKey(w));
                                }
                            }
                        }
                    }
                } else {
                    for (long off = 0; off < shardBytes; off += entryBytes) {
                        int n = (int) Math.min(entryBytes, shardBytes - off);
                        try (InputStream in = store.read(rawKey(w), off, n)) {
                            if (in.readNBytes(dest[w], (int) off, n) != n) {
                                throw new IOException("short read of " + rawKey(w));
                            }
                        }
                    }
                }
                return 0L;
            });
            return (System.nanoTime() - t0) / 1e6;
        }

        /**
         * Restore as a trainer does at start: join, open the latest checkpoint, read every entry (CRC32C
         * checked) into its (warm) tensor memory. Joining is not timed; opening the manifest is.
         */
        private double restore(int port) throws Exception {
            List<CairnAgent> agents = connect(port);
            try {
                long t0 = System.nanoTime();
                parallel(w -> {
                    RestoredCheckpoint r = agents.get(w).restoreLatest()
                            .orElseThrow(() -> new IllegalStateException("no checkpoint to restore"));
                    long off = 0;
                    for (String name : r.entryNames()) {
                        int n = (int) r.manifest().entry(w, name).orElseThrow().length();
                        try (InputStream in = r.open(name)) {
                            if (in.readNBytes(dest[w], (int) off, n) != n || in.read() != -1) {
                                throw new IOException("entry " + name + " has not " + n + " bytes");
                            }
                        }
                        off += n;
                    }
                    if (off != shardBytes) {
                        throw new IOException("worker " + w + " restored " + off + " bytes, expected " + shardBytes);
                    }
                    return 0L;
                });
                return (System.nanoTime() - t0) / 1e6;
            } finally {
                closeAll(agents);
            }
        }

        private long[] parallel(WorkerTask task) throws Exception {
            List<Future<Long>> futures = new ArrayList<>();
            for (int w = 0; w < workers; w++) {
                int worker = w;
                futures.add(trainers.submit(() -> task.run(worker)));
            }
            long[] result = new long[workers];
            for (int w = 0; w < workers; w++) {
                try {
                    result[w] = futures.get(w).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    if (e.getCause() instanceof Exception ex) {
                        throw ex;
                    }
                    throw e;
                }
            }
            return result;
        }
    }

    private static String entryName(int e) {
        return String.format(Locale.ROOT, "model/layer_%04d/kernel", e);
    }

    @FunctionalInterface
    private interface WorkerTask {
        long run(int worker) throws Exception;
    }

    private static void fill(ByteBuffer b, int worker) {
        long x = 0x9E3779B97F4A7C15L * (worker + 1);
        ByteBuffer longs = b.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        while (longs.remaining() >= 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            longs.putLong(x);
        }
    }

    private static void closeAll(List<CairnAgent> agents) {
        for (CairnAgent a : agents) {
            a.close();
        }
    }

    // ------------------------------------------------------------------ coordination

    /** Barrier plus commit of empty shards for each world size: first prepare to the last worker seeing the commit. */
    private void coordination(StorageUri root) throws Exception {
        List<Map<String, Object>> table = new ArrayList<>();
        // a training run saves thousands of times: measure the compiled save path, not the JIT compiling it
        // (at 64 workers the compiler threads took about half the CPU of each of the first rounds)
        int warmup = coordWarmup;
        for (int world : coordWorkers) {
            CoordinatorConfig config = CoordinatorConfig.builder(RUN, world, child(root, "w" + world))
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
                        agents.add(CairnAgent.connect(AgentConfig.builder("127.0.0.1:" + coordinator.port(), RUN, w, world)
                                .stagingBytes(1 << 20)
                                .chunkBytes(64 << 10)
                                .build()));
                    }
                    for (int round = 0; round < warmup + coordRounds; round++) {
                        long step = round + 1;
                        List<CompletableFuture<SavedAt>> done = new ArrayList<>();
                        long t0 = System.nanoTime();
                        for (CairnAgent a : agents) {
                            SaveHandle h = a.save(step, snap -> { });
                            CompletableFuture<SavedAt> at = new CompletableFuture<>();
                            h.committed().whenComplete((ok, err) -> {
                                if (err != null) {
                                    at.completeExceptionally(err);
                                } else {
                                    at.complete(new SavedAt(System.nanoTime()));
                                }
                            });
                            done.add(at);
                        }
                        long last = 0;
                        for (CompletableFuture<SavedAt> f : done) {
                            last = Math.max(last, f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS).nanos());
                        }
                        if (round >= warmup) {
                            latencies.add((last - t0) / 1e6);
                            // the storage part of it: one atomic create of a manifest-sized object, right after
                            long c0 = System.nanoTime();
                            store.createIfAbsent("bench-probe/" + round, manifestSized);
                            commits.add((System.nanoTime() - c0) / 1e6);
                        }
                    }
                } finally {
                    closeAll(agents);
                }
            }
            List<Double> sorted = new ArrayList<>(latencies);
            sorted.sort(null);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("workers", world);
            row.put("rounds", sorted.size());
            row.put("warmupRounds", warmup);
            row.put("p50Ms", round2(percentile(sorted, 50)));
            row.put("p99Ms", round2(percentile(sorted, 99)));
            row.put("maxMs", round2(sorted.get(sorted.size() - 1)));
            List<Double> commitSorted = new ArrayList<>(commits);
            commitSorted.sort(null);
            row.put("storageCommitP50Ms", round2(percentile(commitSorted, 50)));
            row.put("storageCommitP99Ms", round2(percentile(commitSorted, 99)));
            table.add(row);
            progress("coordination, %d workers: p50 %.1f ms, p99 %.1f ms over %d saves (a plain atomic create of the manifest: "
                    + "p50 %.1f ms, p99 %.1f ms)", world, percentile(sorted, 50), percentile(sorted, 99), sorted.size(),
                    percentile(commitSorted, 50), percentile(commitSorted, 99));
        }
        Map<String, Object> largest = table.get(table.size() - 1);
        out.put("coordWorkers", largest.get("workers"));
        out.put("coordP50Ms", largest.get("p50Ms"));
        out.put("coordP99Ms", largest.get("p99Ms"));
        out.put("coordStorageCommitP99Ms", largest.get("storageCommitP99Ms"));
        out.put("coordination", table);
    }

    private record SavedAt(long nanos) {}

    // ------------------------------------------------------------------ memory

    /** One agent in a small-heap JVM saves a shard 8x its staging budget; it reports its peak heap. */
    private void memory(StorageUri root) throws Exception {
        int stagingMib = Math.max(1, memoryShardMib / 8);
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, 1, root).retention(RetentionPolicy.keepLast(1)).build();
        Path log = Files.createTempFile("cairn-bench-agent-", ".log");
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             ClusterProcess child = ClusterProcess.start("bench-agent", log, memoryHeapMib + "m", List.of("bench-agent",
                     "--coordinator", "127.0.0.1:" + coordinator.port(), "--run-id", RUN,
                     "--shard-mib", Integer.toString(memoryShardMib), "--staging-mib", Integer.toString(stagingMib)))) {
            ClusterProcess.Event e;
            try {
                e = child.await("memory", TIMEOUT);
            } catch (java.util.concurrent.TimeoutException ex) {
                throw new IllegalStateException("the memory figure's agent failed (log " + log + "): " + ex.getMessage()
                        + "\n" + tail(log), ex);
            }
            child.waitFor(Duration.ofSeconds(60));
            double peak = e.getLong("peakHeapBytes") / 1048576.0;
            out.put("peakHeapMiB", round2(peak));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("shardMiB", memoryShardMib);
            m.put("stagingMiB", stagingMib);
            m.put("xmxMiB", memoryHeapMib);
            m.put("peakStagingMiB", round2(e.getLong("peakStagingBytes") / 1048576.0));
            m.put("stagingIs", "direct (off-heap) chunks, bounded by the staging budget; not part of peakHeapMiB");
            m.put("stallMs", round2(e.getLong("stallMicros") / 1000.0));
            m.put("measuredBy", "sum of the peak usage of the heap memory pools during the save (an upper bound, garbage included)");
            out.put("memory", m);
            progress("memory: a %d MiB shard with a %d MiB staging budget saved with a peak heap of %.1f MiB (-Xmx%dm)",
                    memoryShardMib, stagingMib, peak, memoryHeapMib);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }

    // ------------------------------------------------------------------ output

    private void printTable() {
        System.out.printf("cairn bench: backend %s, %s, %d cores, %s%n", out.get("backend"), out.get("storage"), out.get("cores"), out.get("jvm"));
        System.out.printf("%d workers x %d MiB (entries of %d KiB), medians of %d saves; workers are %s%n%n",
                workers, shardMib, out.get("entryKiB"), saves, out.get("workersAre"));
        String f = "%-40s %14s %16s %8s %10s%n";
        System.out.printf(f, "FIGURE", "CAIRN", "BASELINE", "RATIO", "TARGET");
        System.out.printf(f, "stall per save (ms)", out.get("stallMs"), out.get("copyMs") + " copy", out.get("stallRatio"), "<= 1.2");
        System.out.printf(f, "naive synchronous stall (ms)", out.get("naiveStallMs"), out.get("copyMs") + " copy", out.get("naiveStallRatio"), "-");
        System.out.printf(f, "save throughput (MiB/s)", out.get("saveMiBps"), out.get("rawWriteMiBps") + " write", out.get("writeRatio"), ">= 0.9");
        System.out.printf(f, "restore throughput (MiB/s)", out.get("restoreMiBps"), out.get("rawReadMiBps") + " read", out.get("readRatio"), ">= 0.9");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> coord = (List<Map<String, Object>>) out.get("coordination");
        for (Map<String, Object> row : coord) {
            System.out.printf(f, "coordination " + row.get("workers") + " workers p50/p99 (ms)",
                    row.get("p50Ms") + "/" + row.get("p99Ms"), row.get("storageCommitP50Ms") + "/" + row.get("storageCommitP99Ms") + " fs",
                    "", (int) row.get("workers") == 64 ? "p99 <= 50" : "");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) out.get("memory");
        System.out.printf(f, "agent peak heap (MiB)", out.get("peakHeapMiB"), m.get("shardMiB") + " shard", "",
                "bounded");
        System.out.printf("%n(coordination baseline \"fs\": one plain atomic create of a manifest-sized object on the same storage, "
                + "p50/p99; memory: staging budget %s MiB off-heap, agent JVM -Xmx%sm)%n", m.get("stagingMiB"), m.get("xmxMiB"));
    }

    void progress(String format, Object... args) {
        System.err.printf("cairn bench: " + format + "%n", args);
        System.err.flush();
    }

    static double median(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** Nearest-rank percentile of sorted values. */
    static double percentile(List<Double> sorted, double p) {
        int rank = (int) Math.ceil(p / 100.0 * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }

    private static List<Double> ratios(List<Double> a, List<Double> b) {
        List<Double> r = new ArrayList<>();
        for (int i = 0; i < a.size(); i++) {
            r.add(a.get(i) / b.get(i));
        }
        return r;
    }

    private static long max(long[] values) {
        return Arrays.stream(values).max().orElse(0);
    }

    private static double round2(double v) {
        return Math.round(v * 100) / 100.0;
    }

    private static double round3(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private static List<Double> round2(List<Double> values) {
        return values.stream().map(BenchCommand::round2).toList();
    }
}
