package dev.cairn.harness;

import dev.cairn.coordinator.AdminClient;
import dev.cairn.coordinator.CheckpointCleaner;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.testkit.FaultInjectingHttpProxy;
import dev.cairn.testkit.EmbeddedStorage;
import dev.cairn.testkit.ClusterProcess;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * A chaos campaign: a coordinator and N toy workers on loopback; every round injects one fault
 * chosen by the seed at a moment chosen by the seed, recovers the way a cluster manager would, and
 * checks the invariants of docs/chaos.md. Exit 0 only if no invariant was violated.
 */
@Command(name = "chaos", description = "Run a chaos campaign against a local cluster: kill workers and the coordinator at every "
        + "moment of a save, stall a worker, break storage, race two commits; check after every round that nothing committed "
        + "was lost and nothing partial became visible. Exit 0 only if every invariant held.")
public final class ChaosCommand implements Callable<Integer> {
    private static final int EXIT_CHECK_FAILED = 1;
    static final long DETECT_LIMIT_MS = 10_000;
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final Duration SHORT_WAIT = Duration.ofSeconds(10);
    private static final String RUN_ID = "chaos";
    private static final int KEEP_LAST = 5;

    /** The faults a round can inject. */
    enum Fault {
        WORKER_KILL_BEFORE_BARRIER(true),
        WORKER_KILL_AT_BARRIER(true),
        WORKER_KILL_SNAPSHOT(true),
        WORKER_KILL_MID_UPLOAD(true),
        WORKER_KILL_AFTER_DURABLE(true),
        WORKER_STALL(true),
        COORDINATOR_KILL_BARRIER(false),
        COORDINATOR_KILL_BEFORE_MANIFEST(false),
        COORDINATOR_KILL_AFTER_MANIFEST(false),
        STORAGE_READ_ONLY(false),
        SPLIT_BRAIN(false);

        final boolean workerLoss;

        Fault(boolean workerLoss) {
            this.workerLoss = workerLoss;
        }

        String label() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    @Option(names = "--rounds", defaultValue = "30", description = "Rounds, one fault each (default ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the schedule; the same seed gives the same faults at the same moments (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--workers", defaultValue = "3", description = "Worker processes, 2..8 (default ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--backend", defaultValue = "file", paramLabel = "file|hdfs|s3", description = "Storage backend (default ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    @Option(names = "--state-kib", defaultValue = "256", description = "State per worker in KiB (default ${DEFAULT-VALUE}).")
    int stateKib;

    @Option(names = "--faults", split = ",", paramLabel = "KIND",
            description = "Only these fault kinds (default: all), e.g. worker-stall,split-brain.")
    List<String> onlyFaults;

    @Option(names = "--keep-logs", description = "Keep the work directory (process logs, storage) even when every invariant held.")
    boolean keepLogs;

    @Option(names = "--unsafe-commit-before-durable", hidden = true,
            description = "Checker self-test: run the coordinator with a deliberately broken commit path; the campaign must fail.")
    boolean unsafeCommit;

    private static final long SAVE_EVERY = 4;
    private static final long STEP_MILLIS = 25;

    private Path work;
    private Path root;
    private StorageUri uri;
    /** The storage URI with its options (StorageUri#toString drops them), as the processes get it. */
    private String storageText;
    private EmbeddedStorage server;
    private FaultInjectingHttpProxy relay;
    private int storageFaultsInjected;
    private CheckpointCatalog catalog;
    private CheckpointStore store;
    private ClusterProcess coordinator;
    private int coordinatorStarts;
    private int port;
    private final List<ClusterProcess> allCoordinators = new ArrayList<>();
    private final List<ClusterProcess> workerProcs = new ArrayList<>();
    private final List<String> violations = new ArrayList<>();
    private final List<RoundResult> results = new ArrayList<>();
    private final Map<Fault, Integer> faultCounts = new EnumMap<>(Fault.class);
    private final List<String> notes = new ArrayList<>();
    private long maxDetectMs;
    private long maxStorageDetectMs;
    private long lastLatest = -1;
    private int splitBrainRaces;
    private int splitBrainLosersReported;
    private int workerStarts;
    private boolean chattrWorks = true;

    /** What one round did. */
    record RoundResult(int round, String fault, String moment, long faultStep, String outcome, long detectMs, long latest,
                       int violations, long millis) {}

    @Override
    public Integer call() throws Exception {
        validate();
        long started = System.nanoTime();
        work = Files.createTempDirectory("cairn-chaos-");
        server = EmbeddedStorage.start(backend, work);
        if (backend.equals("s3")) {
            // agents, coordinator and checker all reach S3Proxy through a relay that can break requests
            relay = new FaultInjectingHttpProxy(server.s3Endpoint());
            server.routeS3Through(relay.uri());
        }
        storageText = server.uri(RUN_ID);
        if (backend.equals("s3")) {
            // a stalled request is given up after 2 s and retried, well within the save's deadlines
            storageText += "&socketTimeout=2000";
        }
        if (backend.equals("file")) {
            root = Files.createDirectories(Path.of(storageText));
        }
        uri = StorageUri.parse(storageText);
        Random random = new Random(seed);
        List<Fault> schedule = schedule(random);
        progress("seed %d, %d rounds, %d workers, storage %s; logs in %s", seed, rounds, workers, uri, work);
        // an interrupted campaign (Ctrl-C) leaves no process behind and no immutable directory
        Thread cleanup = new Thread(() -> {
            try {
                List.copyOf(workerProcs).forEach(ClusterProcess::close);
                List.copyOf(allCoordinators).forEach(ClusterProcess::close);
                unfreeze();
            } catch (RuntimeException e) {
                // best effort at exit
            }
        }, "cairn-chaos-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        try (CheckpointStore s = CheckpointStores.open(uri, true)) {
            store = s;
            catalog = new CheckpointCatalog(s);
            for (int r = 1; r <= rounds; r++) {
                runRound(r, schedule.get(r - 1), random);
            }
            epilogue();
        } finally {
            stopAll();
            unfreeze();
            if (relay != null) {
                relay.close();
            }
            server.close();
            Runtime.getRuntime().removeShutdownHook(cleanup);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        report(millis);
        if (violations.isEmpty() && !keepLogs) {
            deleteTree(work);
        }
        return violations.isEmpty() ? 0 : EXIT_CHECK_FAILED;
    }

    private void validate() {
        if (rounds < 1 || rounds > 100_000) {
            throw new IllegalArgumentException("--rounds must be between 1 and 100000, was " + rounds);
        }
        if (workers < 2 || workers > 8) {
            throw new IllegalArgumentException("--workers must be between 2 and 8 (a round may hold one worker and kill another), was " + workers);
        }
        if (stateKib < 8 || stateKib > 64 * 1024) {
            throw new IllegalArgumentException("--state-kib must be between 8 and 65536, was " + stateKib);
        }
        if (onlyFaults != null) {
            for (String f : onlyFaults) {
                if (java.util.Arrays.stream(Fault.values()).noneMatch(k -> k.label().equals(f))) {
                    throw new IllegalArgumentException("--faults: unknown fault kind '" + f + "'; kinds: "
                            + java.util.Arrays.stream(Fault.values()).map(Fault::label).toList());
                }
            }
        }
        switch (backend) {
            case "file", "hdfs", "s3" -> { }
            default -> throw new IllegalArgumentException("--backend must be file, hdfs or s3, was '" + backend + "'");
        }
    }

    /** Decks of every fault kind, each shuffled by the seed: every kind occurs once in each run of {@code Fault.values().length} rounds. */
    private List<Fault> schedule(Random random) {
        List<Fault> kinds = new ArrayList<>();
        for (Fault f : Fault.values()) {
            if (onlyFaults == null || onlyFaults.contains(f.label())) {
                kinds.add(f);
            }
        }
        List<Fault> schedule = new ArrayList<>();
        while (schedule.size() < rounds) {
            List<Fault> deck = new ArrayList<>(kinds);
            java.util.Collections.shuffle(deck, random);
            schedule.addAll(deck);
        }
        return schedule.subList(0, rounds);
    }

    // ------------------------------------------------------------------ one round

    /** Mutable state of the round in progress. */
    private final class Round {
        final int number;
        final String name;
        final Fault fault;
        final long latestBefore;
        final long faultStep;
        final int victim;
        final Random random;
        final int violationsBefore = violations.size();
        String moment = "";
        String outcome = "";
        long detectMs = -1;
        int holder = -1;
        int coordinatorMark;

        Round(int number, String name, Fault fault, long latestBefore, long faultStep, int victim, Random random) {
            this.number = number;
            this.name = name;
            this.fault = fault;
            this.latestBefore = latestBefore;
            this.faultStep = faultStep;
            this.victim = victim;
            this.random = random;
        }

        void violation(String message) {
            violations.add(name + " (" + fault.label() + (moment.isEmpty() ? "" : " " + moment) + ", step " + faultStep + "): " + message);
        }
    }

    private void runRound(int number, Fault fault, Random random) throws Exception {
        long started = System.nanoTime();
        long latestBefore = catalog.latestStep().orElse(0L);
        // the seed picks the moment: which save of the round, which worker, and the variant of the fault
        long faultStep = latestBefore + SAVE_EVERY * (2 + random.nextInt(2));
        int victim = random.nextInt(workers);
        Round round = new Round(number, "round " + number, fault, latestBefore, faultStep, victim, new Random(random.nextLong()));
        faultCounts.merge(fault, 1, Integer::sum);
        try {
            switch (fault) {
                case WORKER_KILL_BEFORE_BARRIER, WORKER_KILL_AT_BARRIER, WORKER_KILL_SNAPSHOT, WORKER_KILL_MID_UPLOAD,
                        WORKER_KILL_AFTER_DURABLE, WORKER_STALL -> workerFault(round);
                case COORDINATOR_KILL_BARRIER, COORDINATOR_KILL_BEFORE_MANIFEST, COORDINATOR_KILL_AFTER_MANIFEST -> coordinatorFault(round);
                case STORAGE_READ_ONLY -> storageFault(round);
                case SPLIT_BRAIN -> splitBrain(round);
            }
        } catch (TimeoutException e) {
            round.violation("hang: " + e.getMessage());
            dumpThreads(number);
        } finally {
            unfreeze();
            killWorkers();
        }
        if (coordinator != null && !coordinator.isAlive()) {
            round.violation("the coordinator died unexpectedly (see " + work + ")");
        }
        if (coordinator == null || !coordinator.isAlive()) {
            startCoordinator(null);
        }
        checkStorage(round);
        long latest = catalog.latestStep().orElse(-1L);
        long millis = (System.nanoTime() - started) / 1_000_000;
        RoundResult result = new RoundResult(number, fault.label(), round.moment, faultStep, round.outcome, round.detectMs, latest,
                violations.size() - round.violationsBefore, millis);
        results.add(result);
        progress("round %d/%d: %s%s at step %d -> %s%s; latest %d; %s (%.1f s)", number, rounds, fault.label(),
                round.moment.isEmpty() ? "" : " (" + round.moment + ")", faultStep, round.outcome,
                round.detectMs >= 0 ? ", detected in " + round.detectMs + " ms" : "", latest,
                result.violations() == 0 ? "ok" : result.violations() + " violation(s)", millis / 1000.0);
    }

    /**
     * Starts the workers of a round from the latest checkpoint and checks the recovery: every worker
     * restores the latest step, and the first save after it commits.
     */
    private void startRound(Round round, Map<Integer, List<String>> extraArgs) throws Exception {
        if (coordinator == null || !coordinator.isAlive()) {
            startCoordinator(null);
        }
        round.coordinatorMark = coordinator.eventCount();
        for (int w = 0; w < workers; w++) {
            List<String> args = new ArrayList<>(List.of("toy-worker", "--coordinator", "127.0.0.1:" + port, "--run-id", RUN_ID,
                    "--index", Integer.toString(w), "--world", Integer.toString(workers),
                    "--steps", Long.toString(round.latestBefore + 100_000), "--state-kib", Integer.toString(stateKib),
                    "--chunk-kib", Integer.toString(Math.max(4, stateKib / 16)), "--staging-mib", "16", "--step-millis", Long.toString(STEP_MILLIS),
                    "--storage", storageText));
            args.addAll(extraArgs.getOrDefault(w, List.of()));
            workerProcs.add(ClusterProcess.start("worker-" + w, work.resolve("round-" + round.number + "-worker-" + w + ".log"), "96m", args));
            workerStarts++;
        }
        String expected = round.latestBefore == 0 ? "none" : Long.toString(round.latestBefore);
        for (int w = 0; w < workers; w++) {
            ClusterProcess p = workerProcs.get(w);
            ClusterProcess.Event restored = p.await("restored", WAIT);
            if (!expected.equals(restored.get("step"))) {
                round.violation("worker " + w + " restored step " + restored.get("step") + " but the latest checkpoint is " + expected);
            }
        }
        long first = round.latestBefore + SAVE_EVERY;
        ClusterProcess.Event e = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == first, WAIT);
        if (!"COMMITTED".equals(e.get("outcome"))) {
            round.violation("the first save after recovery (step " + first + ") did not commit: " + e.get("outcome"));
        }
    }

    private void workerFault(Round round) throws Exception {
        Map<Integer, List<String>> extra = new TreeMap<>();
        long f = round.faultStep;
        int v = round.victim;
        switch (round.fault) {
            case WORKER_KILL_BEFORE_BARRIER -> {
                round.moment = "held before prepare";
                extra.put(v, List.of("--hold-before-save", Long.toString(f)));
            }
            case WORKER_KILL_AT_BARRIER -> {
                // the victim prepared; another worker is held before preparing, so the barrier stays open
                round.holder = (v + 1) % workers;
                round.moment = "prepared, barrier open";
                extra.put(v, List.of("--pause-at", "PREPARED@" + f));
                extra.put(round.holder, List.of("--hold-before-save", Long.toString(f)));
            }
            case WORKER_KILL_SNAPSHOT -> {
                round.moment = "barrier released, snapshot not copied";
                extra.put(v, List.of("--pause-at", "PREPARED@" + f));
            }
            case WORKER_KILL_MID_UPLOAD -> {
                round.moment = "upload halfway";
                extra.put(v, List.of("--pause-at", "UPLOAD_HALFWAY@" + f));
            }
            case WORKER_KILL_AFTER_DURABLE -> {
                round.moment = "shard durable, not reported";
                extra.put(v, List.of("--pause-at", "SHARD_DURABLE@" + f));
            }
            case WORKER_STALL -> {
                String phase = round.random.nextBoolean() ? "PREPARED" : "UPLOAD_HALFWAY";
                round.moment = "SIGSTOP at " + phase.toLowerCase(Locale.ROOT);
                extra.put(v, List.of("--pause-at", phase + "@" + f));
            }
            default -> throw new IllegalStateException(round.fault.toString());
        }
        startRound(round, extra);
        ClusterProcess victim = workerProcs.get(v);
        victim.await("paused", WAIT);
        if (round.holder >= 0) {
            workerProcs.get(round.holder).await("paused", WAIT);
        }
        if (round.fault != Fault.WORKER_KILL_AT_BARRIER) {
            // the other workers prepared step f: the victim is the one the save waits for
            for (int w = 0; w < workers; w++) {
                if (w != v) {
                    workerProcs.get(w).await("saved", ev -> ev.getLong("step") == f, WAIT);
                }
            }
        }
        awaitPreviousSaveEnded(round);
        long t0 = System.currentTimeMillis();
        if (round.fault == Fault.WORKER_STALL) {
            victim.pause(true);
        } else {
            victim.kill();
        }
        ClusterProcess.Event ended = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == f, WAIT);
        round.outcome = ended.get("outcome");
        round.detectMs = Math.max(0, ended.getLong("atMs") - t0);
        maxDetectMs = Math.max(maxDetectMs, round.detectMs);
        if ("COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " committed although worker " + v + " never reported its shard");
        }
        if (round.detectMs > DETECT_LIMIT_MS) {
            round.violation("worker " + v + " was lost for " + round.detectMs + " ms before the save aborted (limit " + DETECT_LIMIT_MS + " ms)");
        }
        checkSurvivorsToldAndTraining(round, Set.of(v, round.holder));
    }

    /**
     * Waits until the save before the fault step ended, so the save in flight when the fault hits is
     * the fault step's. Workers train at their own pace (the toy has no all-reduce), so the others
     * may have prepared the fault step while the previous save is still uploading.
     */
    private void awaitPreviousSaveEnded(Round round) throws TimeoutException, InterruptedException {
        long previous = round.faultStep - SAVE_EVERY;
        coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == previous, WAIT);
    }

    /** Surviving workers that were in the save are told why it aborted, and keep training. */
    private void checkSurvivorsToldAndTraining(Round round, Set<Integer> excluded) throws InterruptedException {
        long f = round.faultStep;
        for (int w = 0; w < workers; w++) {
            if (excluded.contains(w)) {
                continue;
            }
            ClusterProcess p = workerProcs.get(w);
            try {
                ClusterProcess.Event a = p.await("aborted", ev -> ev.getLong("step") == f, SHORT_WAIT);
                if (a.get("reason") == null || a.get("reason").isEmpty()) {
                    round.violation("worker " + w + " was told the save of step " + f + " aborted, but not why");
                }
            } catch (TimeoutException e) {
                round.violation("surviving worker " + w + " was not told that the save of step " + f + " aborted");
                continue;
            }
            try {
                p.await("saved", ev -> ev.getLong("step") > f, SHORT_WAIT);
            } catch (TimeoutException e) {
                round.violation("surviving worker " + w + " stopped training after the save of step " + f + " aborted");
            }
        }
    }

    private void coordinatorFault(Round round) throws Exception {
        long f = round.faultStep;
        String phase = switch (round.fault) {
            case COORDINATOR_KILL_BARRIER -> "BARRIER_STARTED";
            case COORDINATOR_KILL_BEFORE_MANIFEST -> "ALL_REPORTED";
            case COORDINATOR_KILL_AFTER_MANIFEST -> "MANIFEST_WRITTEN";
            default -> throw new IllegalStateException(round.fault.toString());
        };
        round.moment = phase.toLowerCase(Locale.ROOT).replace('_', '-');
        stopCoordinator();
        startCoordinator(phase + "@" + f);
        startRound(round, Map.of());
        ClusterProcess.Event paused = coordinator.awaitAfter(round.coordinatorMark, "paused", ev -> true, WAIT);
        String saveId = paused.get("saveId");
        coordinator.kill();
        coordinator.waitFor(WAIT);
        boolean manifest = catalog.steps().contains(f);
        round.outcome = manifest ? "committed, nobody told" : "no manifest";
        if (round.fault == Fault.COORDINATOR_KILL_AFTER_MANIFEST) {
            if (!manifest) {
                round.violation("the coordinator was killed after writing the manifest of step " + f + ", but there is none");
            }
        } else if (manifest) {
            round.violation("a manifest for step " + f + " exists although the coordinator died before writing it");
        }
        // recovery: a cluster manager restarts the coordinator on the same address; the agents reconnect
        startCoordinator(null);
        round.coordinatorMark = 0;
        if (round.fault == Fault.COORDINATOR_KILL_BEFORE_MANIFEST && !"-".equals(saveId) && catalog.attemptIds().contains(saveId)) {
            round.violation("the restarted coordinator did not sweep the orphaned attempt " + saveId);
        }
        try {
            ClusterProcess.Event next = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> "COMMITTED".equals(ev.get("outcome")) && ev.getLong("step") > f, WAIT);
            long firstAfter = coordinator.events().stream().filter(ev -> ev.kind().equals("save")).findFirst()
                    .map(ev -> ev.getLong("step")).orElse(-1L);
            round.outcome += "; agents reconnected, step " + next.getLong("step") + " committed"
                    + (firstAfter == next.getLong("step") ? "" : " (first save after restart: step " + firstAfter + " aborted)");
        } catch (TimeoutException e) {
            round.violation("no save committed within " + WAIT.toSeconds() + " s after the coordinator restarted (agents did not reconnect?)");
        }
    }

    private void storageFault(Round round) throws Exception {
        switch (backend) {
            case "hdfs" -> remoteStorageFault(round, true);
            case "s3" -> remoteStorageFault(round, false);
            default -> localStorageFault(round);
        }
    }

    /**
     * Starts the round's workers with the victim held just before its save of the fault step, waits
     * until every other worker has saved that step and the save before it has ended, and returns the
     * held victim (resumed by a line on its stdin).
     */
    private ClusterProcess startWithVictimHeldBeforeFaultSave(Round round) throws Exception {
        long f = round.faultStep;
        int v = round.victim;
        startRound(round, Map.of(v, List.of("--hold-before-save", Long.toString(f))));
        ClusterProcess held = workerProcs.get(v);
        held.await("paused", WAIT);
        for (int w = 0; w < workers; w++) {
            if (w != v) {
                workerProcs.get(w).await("saved", ev -> ev.getLong("step") == f, WAIT);
            }
        }
        awaitPreviousSaveEnded(round);
        return held;
    }

    /**
     * HDFS: a DataNode is stopped while the save is in flight (the last shard not yet uploaded;
     * replication 2, so the write goes on with the other one) and restarted after the save ended.
     * S3: the relay breaks the next few PUTs (connection resets, 503 SlowDown, 500, requests that
     * get no answer until the client's 2 s socket timeout). Every such fault is retryable, so the
     * save must commit; any committed checkpoint must then restore byte for byte (checkStorage).
     */
    private void remoteStorageFault(Round round, boolean hdfs) throws Exception {
        long f = round.faultStep;
        int v = round.victim;
        ClusterProcess held = startWithVictimHeldBeforeFaultSave(round);
        org.apache.hadoop.hdfs.MiniDFSCluster.DataNodeProperties stopped = null;
        if (hdfs) {
            int dn = round.random.nextInt(server.hdfs().getDataNodes().size());
            round.moment = "DataNode " + dn + " stopped mid-save";
            stopped = server.hdfs().stopDataNode(dn);
        } else {
            FaultInjectingHttpProxy.Fault[] kinds = {FaultInjectingHttpProxy.Fault.CONNECTION_RESET,
                    FaultInjectingHttpProxy.Fault.SLOW_DOWN_503, FaultInjectingHttpProxy.Fault.INTERNAL_ERROR_500,
                    FaultInjectingHttpProxy.Fault.NO_ANSWER};
            int n = 2 + round.random.nextInt(3);
            List<FaultInjectingHttpProxy.Fault> faults = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                faults.add(kinds[round.random.nextInt(kinds.length)]);
            }
            round.moment = "next PUTs: " + faults.stream().map(x -> x.name().toLowerCase(Locale.ROOT)).toList();
            relay.failNext("PUT", faults.toArray(FaultInjectingHttpProxy.Fault[]::new));
        }
        int injectedBefore = relay == null ? 0 : relay.faultsInjected();
        long t0 = System.currentTimeMillis();
        held.send("go");
        ClusterProcess.Event ended;
        try {
            ended = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == f, WAIT);
        } finally {
            if (relay != null) {
                storageFaultsInjected += relay.faultsInjected() - injectedBefore;
                relay.clear();
            }
            if (stopped != null) {
                storageFaultsInjected++;
                server.hdfs().restartDataNode(stopped, true);
                server.hdfs().waitActive();
            }
        }
        long detect = Math.max(0, ended.getLong("atMs") - t0);
        maxStorageDetectMs = Math.max(maxStorageDetectMs, detect);
        round.detectMs = detect;
        round.outcome = ended.get("outcome");
        if (!hdfs && !"COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " was lost although every injected S3 fault was retryable: " + round.outcome);
        }
        checkSurvivorsTrainOn(round, f);
        try {
            ClusterProcess.Event next = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> "COMMITTED".equals(ev.get("outcome")) && ev.getLong("step") > f, WAIT);
            round.outcome += "; step " + next.getLong("step") + " committed after";
        } catch (TimeoutException e) {
            round.violation("no save committed within " + WAIT.toSeconds() + " s after the storage fault ended");
            dumpThreads(round.number);
        }
    }

    /** Every worker keeps training past the fault step. */
    private void checkSurvivorsTrainOn(Round round, long f) throws InterruptedException {
        for (int w = 0; w < workers; w++) {
            try {
                workerProcs.get(w).await("saved", ev -> ev.getLong("step") > f, SHORT_WAIT);
            } catch (TimeoutException e) {
                round.violation("worker " + w + " stopped training after the storage fault at step " + f);
            }
        }
    }

    private void localStorageFault(Round round) throws Exception {
        long f = round.faultStep;
        int v = round.victim;
        round.moment = "data/ read-only (chattr +i)";
        ClusterProcess held = startWithVictimHeldBeforeFaultSave(round);
        // root ignores permission bits, so chmod cannot make a directory read-only here; the
        // immutable attribute can (ext4/xfs, needs CAP_LINUX_IMMUTABLE)
        if (!freeze(true)) {
            round.moment = "skipped: chattr +i not possible here";
            round.outcome = "not injected";
            held.send("go");
            return;
        }
        long t0 = System.currentTimeMillis();
        held.send("go");
        ClusterProcess.Event ended = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == f, WAIT);
        long detect = Math.max(0, ended.getLong("atMs") - t0);
        maxStorageDetectMs = Math.max(maxStorageDetectMs, detect);
        round.detectMs = detect;
        round.outcome = ended.get("outcome");
        if ("COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " committed although storage refused every shard");
        }
        freeze(false);
        checkSurvivorsToldAndTraining(round, Set.of());
        // the storage is back: training went on, and a later save commits without any restart
        try {
            ClusterProcess.Event next = coordinator.awaitAfter(round.coordinatorMark, "save", ev -> "COMMITTED".equals(ev.get("outcome")) && ev.getLong("step") > f, WAIT);
            round.outcome += "; storage back, step " + next.getLong("step") + " committed";
        } catch (TimeoutException e) {
            round.violation("no save committed within " + WAIT.toSeconds() + " s after storage came back");
            dumpThreads(round.number);
        }
    }

    /**
     * Two coordinators racing to commit the same step (a split brain), each with its own store
     * handle and save attempt, released together: exactly one manifest must win, the loser must be
     * told ALREADY_EXISTS and must leave nothing behind. Runs on a scratch root beside the run's, so
     * the live coordinator's view of its run stays true; the run itself does a normal round.
     */
    private void splitBrain(Round round) throws Exception {
        round.moment = "two commits of one step";
        startRound(round, Map.of());
        long step = round.faultStep;
        String scratchName = "split-brain-" + round.number;
        StorageUri scratch = StorageUri.parse(server.uri(scratchName) + (backend.equals("s3") ? "&socketTimeout=2000" : ""));
        int stateBytes = stateKib * 1024;
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<String[]>> racers = new ArrayList<>();
        try {
            for (int c = 0; c < 2; c++) {
                racers.add(pool.submit(() -> {
                    try (CheckpointStore s = CheckpointStores.open(scratch, true)) {
                        CheckpointCatalog cat = new CheckpointCatalog(s);
                        Manifest m = writeToyCheckpoint(s, step, stateBytes);
                        go.await();
                        CheckpointCatalog.CommitOutcome outcome = cat.commit(m);
                        if (outcome == CheckpointCatalog.CommitOutcome.ALREADY_EXISTS) {
                            cat.deleteAttempt(m.saveId()); // what the losing coordinator does
                        }
                        return new String[] {m.saveId(), outcome.name()};
                    }
                }));
            }
            go.countDown();
            String[] a = racers.get(0).get();
            String[] b = racers.get(1).get();
            splitBrainRaces++;
            long winners = Stream.of(a, b).filter(x -> x[1].equals("COMMITTED")).count();
            long losers = Stream.of(a, b).filter(x -> x[1].equals("ALREADY_EXISTS")).count();
            splitBrainLosersReported += (int) losers;
            round.outcome = winners + " winner, " + losers + " loser told ALREADY_EXISTS";
            if (winners != 1 || losers != 1) {
                round.violation("split brain: " + winners + " commits won and " + losers + " were refused (want exactly 1 and 1)");
            }
            try (CheckpointStore s = CheckpointStores.open(scratch, false)) {
                CheckpointCatalog cat = new CheckpointCatalog(s);
                String winner = a[1].equals("COMMITTED") ? a[0] : b[0];
                Manifest m = cat.read(step);
                if (!m.saveId().equals(winner)) {
                    round.violation("split brain: the manifest names save " + m.saveId() + " but save " + winner + " was told it won");
                }
                List<String> bad = new ArrayList<>(cat.verify(m));
                bad.addAll(ToyState.checkCheckpoint(cat, m, stateBytes));
                if (!bad.isEmpty()) {
                    round.violation("split brain: the winning checkpoint does not restore: " + bad);
                }
                List<String> orphans = orphans(server.rawKeys(scratchName, s), Set.of(m.saveId()));
                if (!orphans.isEmpty()) {
                    round.violation("split brain: the loser left objects behind: " + orphans);
                }
            }
        } finally {
            pool.shutdownNow();
            try (CheckpointStore s = CheckpointStores.open(scratch, true)) {
                s.deleteAll(s.list("").stream().map(o -> o.key()).toList());
            }
            if (backend.equals("file")) {
                deleteTree(Path.of(server.uri(scratchName)));
            }
        }
    }

    /** Writes every worker's shard of the toy state at {@code step} under a fresh save id, as agents would. */
    private Manifest writeToyCheckpoint(CheckpointStore s, long step, int stateBytes) throws IOException {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        int len = Math.max(1, stateBytes / (ToyState.PARTS + 1));
        for (int w = 0; w < workers; w++) {
            String key = Layout.shardKey(saveId, w);
            CRC32C objectCrc = new CRC32C();
            long offset = 0;
            try (ObjectWriter out = s.create(key)) {
                List<Object[]> parts = new ArrayList<>();
                for (int k = 0; k < ToyState.PARTS; k++) {
                    parts.add(new Object[] {ToyState.part(k), ToyState.bytes(w, step, k, len), false});
                }
                if (w == 0) {
                    parts.add(new Object[] {ToyState.EMBEDDING, ToyState.bytes(-1, step, ToyState.PARTS, len), true});
                }
                parts.add(new Object[] {ToyState.OPTIMIZER_STEP, ToyState.stepBytes(step), false});
                for (Object[] p : parts) {
                    byte[] bytes = (byte[]) p[1];
                    CRC32C crc = new CRC32C();
                    crc.update(bytes);
                    objectCrc.update(bytes);
                    out.write(bytes);
                    entries.add(new Manifest.EntryRef((String) p[0], w, offset, bytes.length, (int) crc.getValue(), (Boolean) p[2]));
                    offset += bytes.length;
                }
                out.commit();
            }
            shards.add(new Manifest.ShardRef(w, key, offset, (int) objectCrc.getValue()));
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, RUN_ID, step, saveId, Instant.now(), workers, shards, entries,
                Map.of("step", step));
    }

    // ------------------------------------------------------------------ invariants

    /** The storage invariants, with every worker stopped and no save in flight. */
    private void checkStorage(Round round) throws Exception {
        // every manifest validates and restores byte for byte; none belongs to an aborted attempt
        Set<String> aborted = abortedSaveIds();
        Set<String> committedIds = new HashSet<>();
        List<Long> steps = catalog.steps();
        for (long step : steps) {
            Manifest m;
            try {
                m = catalog.read(step);
            } catch (dev.cairn.storage.NoSuchObjectException e) {
                // listed, then deleted by the live coordinator's asynchronous retention: not a violation
                continue;
            } catch (IOException e) {
                round.violation("the manifest of step " + step + " does not validate: " + e.getMessage());
                continue;
            }
            committedIds.add(m.saveId());
            if (aborted.contains(m.saveId())) {
                round.violation("a manifest exists for step " + step + " of save " + m.saveId() + ", which the coordinator aborted");
            }
            List<String> bad = new ArrayList<>();
            try {
                bad.addAll(catalog.verify(m));
                if (bad.isEmpty()) {
                    bad.addAll(ToyState.checkCheckpoint(catalog, m, stateKib * 1024));
                }
            } catch (dev.cairn.storage.NoSuchObjectException e) {
                // the live coordinator's retention runs asynchronously after a commit and may delete
                // this checkpoint (manifest first) while it is being checked: only a manifest that
                // still exists and names a missing object is a violation
                if (!catalog.steps().contains(step)) {
                    committedIds.remove(m.saveId());
                    continue;
                }
                bad.add(e.getMessage());
            }
            if (!bad.isEmpty()) {
                round.violation("checkpoint of step " + step + " (save " + m.saveId() + ") does not restore byte for byte: "
                        + bad.subList(0, Math.min(3, bad.size())));
            }
        }
        // the latest step never goes backwards, and nothing the coordinator reported committed is lost
        long latest = steps.isEmpty() ? -1 : steps.get(steps.size() - 1);
        if (latest < lastLatest) {
            round.violation("the latest checkpoint went back from step " + lastLatest + " to " + latest);
        }
        long reported = maxReportedCommit();
        if (latest < reported) {
            round.violation("the coordinator reported step " + reported + " committed, but the latest checkpoint is step " + latest);
        }
        if (round.fault.workerLoss || round.fault == Fault.STORAGE_READ_ONLY || round.fault == Fault.COORDINATOR_KILL_BARRIER
                || round.fault == Fault.COORDINATOR_KILL_BEFORE_MANIFEST) {
            // the save in flight is the only one that may be lost: everything before it committed
            long mustHave = round.faultStep - SAVE_EVERY;
            if (latest < mustHave) {
                round.violation("more than the save in flight was lost: latest is step " + latest + ", step " + mustHave + " had committed");
            }
        }
        lastLatest = Math.max(lastLatest, latest);
        // after GC nothing outside a committed checkpoint remains
        runGc();
        List<String> orphans = orphans(server.rawKeys(RUN_ID, store), committedIdsNow());
        for (int retry = 0; retry < 3 && !orphans.isEmpty(); retry++) {
            // the coordinator's retention may be deleting a checkpoint right now (manifest first,
            // then its objects): what is still there a moment later, after another GC, is an orphan
            Thread.sleep(1000);
            runGc();
            orphans = orphans(server.rawKeys(RUN_ID, store), committedIdsNow());
        }
        if (!orphans.isEmpty()) {
            round.violation("after GC, objects outside any committed checkpoint remain: "
                    + orphans.subList(0, Math.min(5, orphans.size())) + (orphans.size() > 5 ? " and " + (orphans.size() - 5) + " more" : ""));
        }
    }

    private Set<String> committedIdsNow() throws IOException {
        Set<String> ids = new HashSet<>();
        for (long step : catalog.steps()) {
            try {
                ids.add(catalog.read(step).saveId());
            } catch (IOException e) {
                // reported by the manifest check
            }
        }
        return ids;
    }

    /** Every key (temp files included) that is neither a manifest, the LATEST hint, nor part of a committed save. */
    private static List<String> orphans(List<String> keys, Set<String> committed) {
        List<String> orphans = new ArrayList<>();
        for (String key : keys) {
            if (key.equals(Layout.LATEST) || Layout.stepOfManifestKey(key).isPresent()) {
                continue;
            }
            Optional<String> saveId = Layout.saveIdOfDataKey(key);
            String name = key.substring(key.lastIndexOf('/') + 1);
            boolean temp = name.startsWith(".");
            if (saveId.isPresent() && committed.contains(saveId.get()) && !temp) {
                continue;
            }
            orphans.add(key);
        }
        orphans.sort(Comparator.naturalOrder());
        return orphans;
    }

    /** The operator's GC ({@code cairn gc}), run in-process while no save is in flight; its report is not the campaign's output. */
    private void runGc() {
        try (CheckpointStore store = CheckpointStores.open(uri, false)) {
            CheckpointCleaner.run(new CheckpointCatalog(store), RetentionPolicy.keepLast(KEEP_LAST), java.time.Instant.now(), false,
                    warning -> { }); // the self-test's corrupt manifests are expected; the checker judges them
        } catch (IOException | RuntimeException e) {
            violations.add("cairn gc of " + uri + " failed: " + e);
        }
    }

    private Set<String> abortedSaveIds() {
        Set<String> ids = new HashSet<>();
        for (ClusterProcess c : allCoordinators) {
            for (ClusterProcess.Event e : c.events()) {
                if (e.kind().equals("save") && !"COMMITTED".equals(e.get("outcome")) && !"-".equals(e.get("saveId"))) {
                    ids.add(e.get("saveId"));
                }
            }
        }
        return ids;
    }

    private long maxReportedCommit() {
        long max = -1;
        for (ClusterProcess c : allCoordinators) {
            for (ClusterProcess.Event e : c.events()) {
                if (e.kind().equals("save") && "COMMITTED".equals(e.get("outcome"))) {
                    max = Math.max(max, e.getLong("step"));
                }
            }
        }
        return max;
    }

    /** After the last round: the cluster recovers once more and its first save commits. */
    private void epilogue() throws Exception {
        Round last = new Round(rounds + 1, "final recovery", Fault.SPLIT_BRAIN, catalog.latestStep().orElse(0L), -1, -1, new Random(seed));
        try {
            startRound(last, Map.of());
        } catch (TimeoutException e) {
            last.violation("hang: " + e.getMessage());
        } finally {
            killWorkers();
        }
    }

    // ------------------------------------------------------------------ processes

    private void startCoordinator(String pauseAt) throws Exception {
        List<String> args = new ArrayList<>(List.of("coordinator", "--storage", storageText, "--world", Integer.toString(workers),
                "--run-id", RUN_ID, "--port", Integer.toString(port), "--save-every-steps", Long.toString(SAVE_EVERY),
                "--keep-last", Integer.toString(KEEP_LAST)));
        if (pauseAt != null) {
            args.add("--pause-at");
            args.add(pauseAt);
        }
        if (unsafeCommit) {
            args.add("--unsafe-commit-before-durable");
        }
        coordinatorStarts++;
        coordinatorArmed = pauseAt != null;
        ClusterProcess c = ClusterProcess.start("coordinator-" + coordinatorStarts, work.resolve("coordinator-" + coordinatorStarts + ".log"), "192m", args);
        allCoordinators.add(c);
        coordinator = c;
        ClusterProcess.Event listening = c.await("listening", WAIT);
        port = (int) listening.getLong("port");
    }

    private void stopCoordinator() throws Exception {
        if (coordinator != null && coordinator.isAlive()) {
            coordinator.terminate();
            coordinator.waitFor(WAIT);
        }
    }

    private void killWorkers() throws Exception {
        for (ClusterProcess p : workerProcs) {
            p.kill();
        }
        for (ClusterProcess p : workerProcs) {
            p.waitFor(WAIT);
            p.close();
        }
        workerProcs.clear();
        if (coordinator != null && coordinator.isAlive() && !coordinatorArmed) {
            // the coordinator has noticed every session ended and aborted what was in flight
            awaitIdle();
        } else if (coordinator != null) {
            coordinator.kill();
            coordinator.waitFor(WAIT);
            coordinator = null;
        }
    }

    /** The running coordinator was started with a pause point. */
    private boolean coordinatorArmed;

    /** Waits until the coordinator ended the save in flight, if any: its status shows no phase and no workers. */
    private void awaitIdle() throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            try (AdminClient admin = new AdminClient("127.0.0.1:" + port)) {
                var status = admin.stub.status(dev.cairn.proto.v1.StatusRequest.getDefaultInstance());
                if (status.getConnectedWorkersCount() == 0 && status.getInFlightPhase().isEmpty()) {
                    return;
                }
            }
            Thread.sleep(50);
        }
        throw new TimeoutException("coordinator still has workers or a save in flight " + WAIT.toSeconds() + " s after every worker was killed");
    }

    /** Thread dumps of every live process of a hung round, beside its logs. */
    private void dumpThreads(int number) {
        List<ClusterProcess> procs = new ArrayList<>(workerProcs);
        if (coordinator != null) {
            procs.add(coordinator);
        }
        for (ClusterProcess p : procs) {
            if (!p.isAlive()) {
                continue;
            }
            try {
                Path out = work.resolve("round-" + number + "-" + p.name() + ".threads");
                new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(), Long.toString(p.pid()), "Thread.print")
                        .redirectErrorStream(true).redirectOutput(out.toFile()).start().waitFor();
            } catch (IOException | InterruptedException e) {
                notes.add("no thread dump of " + p.name() + ": " + e);
            }
        }
    }

    private void stopAll() {
        for (ClusterProcess p : workerProcs) {
            p.close();
        }
        workerProcs.clear();
        if (coordinator != null) {
            coordinator.terminate();
            try {
                coordinator.waitFor(SHORT_WAIT);
            } catch (Exception e) {
                coordinator.close();
            }
        }
        for (ClusterProcess c : allCoordinators) {
            c.close();
        }
    }

    private boolean frozen;

    /** Makes the data directory immutable (even for root) or mutable again. Returns false when that is not possible here. */
    private boolean freeze(boolean on) throws IOException, InterruptedException {
        if (on && !chattrWorks) {
            return false;
        }
        Path data = Files.createDirectories(root.resolve("data"));
        Process p = new ProcessBuilder("chattr", on ? "+i" : "-i", data.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        int code = p.waitFor();
        if (code != 0) {
            if (on) {
                chattrWorks = false;
                notes.add("storage fault not injected: 'chattr +i' failed (" + output.trim() + "); chmod cannot stop root");
            }
            return false;
        }
        frozen = on;
        return true;
    }

    private void unfreeze() {
        if (frozen) {
            try {
                freeze(false);
            } catch (IOException | InterruptedException e) {
                violations.add("could not make " + root.resolve("data") + " writable again: " + e);
            }
        }
    }

    // ------------------------------------------------------------------ output

    private void report(long millis) throws IOException {
        long committed = 0;
        long aborted = 0;
        Map<String, Integer> reasons = new TreeMap<>();
        for (ClusterProcess c : allCoordinators) {
            for (ClusterProcess.Event e : c.events()) {
                if (e.kind().equals("save")) {
                    if ("COMMITTED".equals(e.get("outcome"))) {
                        committed++;
                    } else {
                        aborted++;
                        reasons.merge(e.get("outcome"), 1, Integer::sum);
                    }
                }
            }
        }
        Map<String, Integer> faults = new LinkedHashMap<>();
        for (Fault f : Fault.values()) {
            faults.put(f.label(), faultCounts.getOrDefault(f, 0));
        }
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("rounds", rounds);
            o.put("seed", seed);
            o.put("workers", workers);
            o.put("backend", backend);
            o.put("storageFaultsInjected", storageFaultsInjected);
            o.put("faults", faults);
            o.put("committed", committed);
            o.put("aborted", aborted);
            o.put("abortReasons", reasons);
            o.put("violations", violations.size());
            o.put("violationMessages", violations);
            o.put("maxDetectMs", maxDetectMs);
            o.put("maxStorageDetectMs", maxStorageDetectMs);
            o.put("splitBrainRaces", splitBrainRaces);
            o.put("coordinatorStarts", coordinatorStarts);
            o.put("workerStarts", workerStarts);
            o.put("notes", notes);
            o.put("durationMs", millis);
            System.out.println(new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(o));
            return;
        }
        System.out.println();
        System.out.printf("%5s  %-34s  %-40s  %6s  %9s  %6s  %s%n", "ROUND", "FAULT", "MOMENT", "STEP", "DETECT ms", "LATEST", "RESULT");
        for (RoundResult r : results) {
            System.out.printf("%5d  %-34s  %-40s  %6d  %9s  %6d  %s%n", r.round(), r.fault(), r.moment(), r.faultStep(),
                    r.detectMs() >= 0 ? Long.toString(r.detectMs()) : "-", r.latest(),
                    r.violations() == 0 ? "ok" : r.violations() + " violation(s)");
        }
        System.out.println();
        System.out.printf("faults: %s%n", faults);
        System.out.printf("saves: %d committed, %d aborted %s; split-brain races: %d (each with one loser told ALREADY_EXISTS)%n",
                committed, aborted, reasons, splitBrainRaces);
        System.out.printf("slowest detection of a killed or stalled worker: %d ms (limit %d ms); of a storage failure: %d ms%n",
                maxDetectMs, DETECT_LIMIT_MS, maxStorageDetectMs);
        notes.forEach(n -> System.out.println("note: " + n));
        if (violations.isEmpty()) {
            System.out.printf("chaos campaign passed: %d rounds, seed %d, every invariant held (%.1f s)%n", rounds, seed, millis / 1000.0);
        } else {
            violations.forEach(v -> System.out.println("VIOLATION: " + v));
            System.out.printf("chaos campaign FAILED: %d violation(s) in %d rounds, seed %d (%.1f s); logs in %s%n",
                    violations.size(), rounds, seed, millis / 1000.0, work);
        }
    }

    private void progress(String format, Object... args) {
        System.err.printf("cairn chaos: " + format + "%n", args);
        System.err.flush();
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
