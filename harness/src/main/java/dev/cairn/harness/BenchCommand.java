package dev.cairn.harness;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cairn.agent.CairnAgent;
import dev.cairn.storage.StorageUri;
import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
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
 *
 * <p>This class holds the options, their checks and the run's header; each figure is its own
 * class ({@link BenchThroughput}, {@link BenchCoordination}, {@link BenchReshard}, {@link BenchMemory}, the sweeps
 * {@link BenchScale} and {@link BenchKept}), and {@link BenchReport} prints the tables.
 */
@Command(name = "bench", description = "Measure stall, save and restore throughput, coordination latency and agent heap "
        + "against plain copies, writes and reads on the same storage, in one run.")
public final class BenchCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

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

    @Option(names = "--coord-workers", split = ",", paramLabel = "N,...",
            description = "World sizes for the coordination figure (default 1,8,32,64; with --coord-sim 1,8,64,256,1024).")
    int[] coordWorkers;

    @Option(names = "--coord-sim", description = "Coordination figure with lightweight simulated workers (raw protocol streams over "
            + "shared connections) at every world size; without it, only worlds above " + BenchCoordination.MAX_AGENT_WORLD
            + " are simulated and the others run one full agent per worker.")
    boolean coordSim;

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

    @Option(names = "--jit-quiet-ms", defaultValue = "100", description = "Before each timed copy and save, and each measured "
            + "coordination round, wait (at most 3 s) until the JIT has compiled nothing for this long, so compiler threads do not "
            + "share the cores with what is timed; 0 does not wait (default ${DEFAULT-VALUE}).")
    int jitQuietMs;

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

    @Option(names = "--python", description = "Measure real Python trainer processes saving through the cairn package and their "
            + "sidecars instead (stall beside numpy.copyto, save/restore beside plain writes/reads, torch.save; JSON output; "
            + "local storage; python3: $CAIRN_PYTHON or /usr/bin/python3). See docs/python.md.")
    boolean python;

    @Option(names = "--mirrored", description = "With --python: the state is identical on every worker (DDP) and saved once, "
            + "split across workers; also reports maxWorkerBytes / (S/N).")
    boolean mirrored;

    @Option(names = "--reshard", defaultValue = "4:3", paramLabel = "N:M", description = "Resharded restore figure: a checkpoint "
            + "saved by N workers (row blocks of every tensor) restored by M readers, each its own row block (default ${DEFAULT-VALUE}).")
    String reshard;

    @Option(names = "--reshard-mib", defaultValue = "256", description = "Size of the resharded checkpoint, all tensors together, in MiB "
            + "(default ${DEFAULT-VALUE}).")
    int reshardMib;

    @Option(names = "--json", description = "Print one JSON object instead of a table.")
    boolean json;

    @Option(names = "--keep", description = "Keep the benchmark's files.")
    boolean keep;

    @Option(names = "--phases", hidden = true, description = "Print every agent phase with a millisecond clock (to see where a save's time goes).")
    boolean phases;

    @Option(names = "--only", split = ",", hidden = true, description = "Measure only some figures: throughput, coordination, memory, "
            + "reshard, sizes (--shard-sizes), kept (--kept).")
    List<String> only = List.of("throughput", "coordination", "memory", "reshard");

    private final Map<String, Object> out = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        validate();
        Backends.requireAvailable(backend);
        if (mirrored && !python) {
            throw new IllegalArgumentException("--mirrored needs --python");
        }
        if (python) {
            only = List.of();
        }
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
        BenchThroughput.Rounds rounds = new BenchThroughput.Rounds(workers, saves, warmupSaves, jitWarmup, jitQuietMs, phases);
        try (BenchStorage storage = new BenchStorage(backend, keep)) {
            StorageUri root = storage.open(this.storage);
            describe(root, storage.embeddedServer(), entryBytes);
            if (python) {
                new BenchPython(new BenchPython.Settings(workers, shardMib, Math.max(1, entryKib >> 10), saves, warmupSaves, mirrored,
                        pythonExecutable())).run(BenchStorage.child(root, "python"), out);
            }
            if (only.contains("throughput")) {
                new BenchThroughput(rounds, BenchStorage.child(root, "throughput"), shardBytes, entryBytes, out).run();
            }
            if (only.contains("coordination")) {
                new BenchCoordination(coordWorkers, coordRounds, coordWarmup, coordSim, jitQuietMs).run(BenchStorage.child(root, "coordination"), out);
            }
            if (only.contains("reshard")) {
                int[] nm = reshardWorlds();
                // at least 10 warm-up rounds: with 3, readRegion's path was still being compiled (ratio 0.41-0.46 against 0.68)
                new BenchReshard(new BenchReshard.Settings(nm[0], nm[1], (long) reshardMib << 20, 8, saves,
                        Math.max(BenchReshard.MIN_WARMUP_ROUNDS, warmupSaves)))
                        .run(BenchStorage.child(root, "reshard"), out);
            }
            if (only.contains("memory")) {
                new BenchMemory(memoryShardMib, memoryHeapMib).run(BenchStorage.child(root, "memory"), out);
            }
            if (only.contains("sizes")) {
                out.put("shardSizes", BenchScale.shardSizes(shardSizes, BenchStorage.child(root, "sizes"), entryKib,
                        (uri, bytes, entry, sink) -> new BenchThroughput(rounds, uri, bytes, entry, sink).run()));
            }
            if (only.contains("kept")) {
                out.put("keptRounds", keptRounds);
                out.put("kept", BenchKept.run(kept, keptRounds, BenchStorage.child(root, "kept")));
            }
        }

        out.put("loadAverageAtEnd", loadAverage());
        boolean sweepsOnly = only.stream().allMatch(f -> f.equals("sizes") || f.equals("kept"));
        if (json || python || (!sweepsOnly && !only.containsAll(List.of("throughput", "coordination", "memory", "reshard")))) {
            System.out.println(JSON.writeValueAsString(out));
        } else {
            if (!sweepsOnly) {
                BenchReport.printTable(out);
            }
            BenchReport.printSweeps(out);
        }
        return 0;
    }

    /** The run's header fields: where, on what machine, with which options. */
    private void describe(StorageUri root, String embeddedServer, int entryBytes) {
        out.put("backend", backend);
        out.put("storage", root.toString());
        if (embeddedServer != null) {
            out.put("storageServer", embeddedServer);
        }
        out.put("cores", Runtime.getRuntime().availableProcessors());
        out.put("jvm", System.getProperty("java.vm.name") + " " + Runtime.version());
        out.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        out.put("maxHeapMiB", Runtime.getRuntime().maxMemory() >> 20);
        out.put("loadAverageAtStart", loadAverage());
        out.put("workers", workers);
        out.put("shardMiB", shardMib);
        out.put("entryKiB", entryBytes >> 10);
        out.put("saves", saves);
        out.put("warmupSaves", warmupSaves);
        out.put("jitWarmupSaves", jitWarmup);
        out.put("jitQuietMs", jitQuietMs);
        out.put("workersAre", "trainer threads in this JVM, one CairnAgent (own gRPC connection) per worker; state off-heap");
        BenchReport.progress("backend %s at %s; %d workers x %d MiB, %d saves + %d warm-up; %d cores", backend, root, workers, shardMib,
                saves, warmupSaves, Runtime.getRuntime().availableProcessors());
    }

    private static String pythonExecutable() {
        String env = System.getenv("CAIRN_PYTHON");
        if (env != null && !env.isBlank()) {
            return env;
        }
        return java.nio.file.Files.isExecutable(java.nio.file.Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    }

    private static double loadAverage() {
        return BenchStats.round2(ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    /** {@code --reshard N:M} as {N, M}. */
    private int[] reshardWorlds() {
        String[] parts = reshard.split(":");
        try {
            int n = Integer.parseInt(parts[0].trim());
            int m = Integer.parseInt(parts[1].trim());
            if (parts.length == 2 && n >= 1 && m >= 1 && n <= 64 && m <= 64) {
                return new int[] {n, m};
            }
        } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            // below
        }
        throw new IllegalArgumentException("--reshard must be N:M with 1 <= N, M <= 64 (e.g. 4:3), was " + reshard);
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
        if (jitQuietMs < 0) {
            throw new IllegalArgumentException("--jit-quiet-ms must not be negative, was " + jitQuietMs);
        }
        if (jitWarmup < 0) {
            throw new IllegalArgumentException("--jit-warmup must not be negative, was " + jitWarmup);
        }
        if (coordWarmup < 0) {
            throw new IllegalArgumentException("--coord-warmup must not be negative, was " + coordWarmup);
        }
        if (coordWorkers == null) {
            coordWorkers = coordSim ? new int[] {1, 8, 64, 256, 1024} : new int[] {1, 8, 32, 64};
        }
        for (int w : coordWorkers) {
            if (w < 1 || w > 1024) {
                throw new IllegalArgumentException("--coord-workers must be between 1 and 1024, was " + w);
            }
        }
        reshardWorlds();
        if (reshardMib < 1 || reshardMib > 2048) {
            throw new IllegalArgumentException("--reshard-mib must be between 1 and 2048, was " + reshardMib);
        }
        if (memoryShardMib < 8 || memoryHeapMib < 16) {
            throw new IllegalArgumentException("--memory-shard-mib must be at least 8 and --memory-heap-mib at least 16");
        }
    }
}
