package dev.cairn.harness;

import dev.cairn.testkit.EmbeddedStorage;
import dev.cairn.testkit.ClusterProcess;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.coordinator.SaveRecord;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The end-to-end demo: a coordinator and N worker processes on loopback; one worker is SIGKILLed in
 * the middle of a save's upload; the save aborts, the previous checkpoint stays intact, the cluster
 * restarts from it and the restored bytes are checked.
 */
@Command(name = "demo", description = "Run a coordinator and N worker processes on loopback, SIGKILL one mid-upload, "
        + "restart from the latest checkpoint and check every byte. Exit 0 only if every check passed.")
public final class DemoCommand implements Callable<Integer> {
    private static final int EXIT_CHECK_FAILED = 1;
    private static final Duration PHASE_TIMEOUT = Duration.ofSeconds(90);

    @Option(names = "--workers", defaultValue = "3", description = "Worker processes (default ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--steps", defaultValue = "30", description = "Steps to train in all (default ${DEFAULT-VALUE}).")
    long steps;

    @Option(names = "--save-every", defaultValue = "10", description = "Save every K steps (default ${DEFAULT-VALUE}).")
    long saveEvery;

    @Option(names = "--storage", paramLabel = "URI",
            description = "Checkpoint root on an existing store: a directory, hdfs://host:port/path or s3://bucket/prefix?... (not with --backend).")
    String storage;

    @Option(names = "--backend", paramLabel = "file|hdfs|s3",
            description = "Start an embedded store on loopback for the demo: file (a temp directory, the default), hdfs (a MiniDFSCluster) or s3 (S3Proxy).")
    String backend;

    @Option(names = "--state-mib", defaultValue = "4", description = "State per worker in MiB (default ${DEFAULT-VALUE}).")
    int stateMib;

    /** The storage URI as given, options included (StorageUri#toString drops them); workers get it too. */
    private String storageText;
    private final List<String> failures = new ArrayList<>();
    private final List<SaveRecord> saves = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        if (workers < 1 || workers > 16) {
            throw new IllegalArgumentException("--workers must be between 1 and 16, was " + workers);
        }
        if (saveEvery < 1) {
            throw new IllegalArgumentException("--save-every must be at least 1, was " + saveEvery);
        }
        if (steps < 3 * saveEvery) {
            throw new IllegalArgumentException("--steps must be at least 3 × --save-every (" + 3 * saveEvery + "), was " + steps);
        }
        if (stateMib < 1 || stateMib > 256) {
            throw new IllegalArgumentException("--state-mib must be between 1 and 256, was " + stateMib);
        }
        if (storage != null && backend != null) {
            throw new IllegalArgumentException("--storage and --backend exclude each other: --storage uses an existing store, --backend starts an embedded one");
        }
        if (backend != null) {
            Backends.check(backend);
        }
        if (storage != null) {
            StorageUri.parse(storage);
        }
        Path work = Files.createTempDirectory("cairn-demo-");
        int exit = EXIT_CHECK_FAILED;
        try {
            exit = runIn(work);
            return exit;
        } finally {
            // the temp directory (logs, and the checkpoints of an embedded store) goes, unless a failed check points at its logs
            if (exit != EXIT_CHECK_FAILED || failures.isEmpty()) {
                StorageCleanup.deleteTree(work);
            }
        }
    }

    private int runIn(Path work) throws Exception {
        if (storage != null) {
            return run(work, storage);
        }
        String kind = backend == null ? "file" : backend;
        long t0 = System.nanoTime();
        try (EmbeddedStorage server = EmbeddedStorage.start(kind, work)) {
            if (!kind.equals("file")) {
                say("embedded %s server started on loopback in %.1f s", kind, (System.nanoTime() - t0) / 1e9);
            }
            return run(work, server.uri("demo"));
        }
    }

    private int run(Path work, String storageText) throws Exception {
        this.storageText = storageText;
        StorageUri uri = StorageUri.parse(storageText);
        String runId = "demo";
        int stateBytes = stateMib << 20;
        long killStep = 2 * saveEvery;
        int victim = workers - 1;
        long started = System.nanoTime();
        say("storage %s, %d workers, saves every %d steps, %d MiB of state per worker; logs in %s (removed when the demo passes)", uri, workers, saveEvery, stateMib, work);

        try (CheckpointStore store = CheckpointStores.open(uri, true)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            if (!catalog.steps().isEmpty()) {
                throw new IllegalArgumentException("storage " + uri + " already holds checkpoints; the demo needs an empty root");
            }
            CoordinatorConfig config = CoordinatorConfig.builder(runId, workers, uri)
                    .saveEverySteps(saveEvery)
                    .barrierTimeout(Duration.ofSeconds(30))
                    .retention(RetentionPolicy.keepLast(5))
                    .build();

            // ---- phase 1: train, SIGKILL one worker in the middle of the upload of step 2K
            say("phase 1: training to step %d; worker %d will be SIGKILLed mid-upload of the save at step %d", killStep, victim, killStep);
            try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
                Map<Long, CompletableFuture<SaveRecord>> outcomes = track(coordinator);
                List<ClusterProcess> procs = startWorkers(work, coordinator.port(), runId, killStep, stateBytes, victim, "UPLOAD_HALFWAY@" + killStep, "p1");
                try {
                    ClusterProcess v = procs.get(victim);
                    v.await("paused", PHASE_TIMEOUT);
                    v.kill();
                    say("worker %d paused halfway through uploading step %d -> SIGKILL (pid %d)", victim, killStep, v.pid());
                    SaveRecord aborted = outcomes.computeIfAbsent(killStep, k -> new CompletableFuture<>()).get(PHASE_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                    check(!aborted.committed(), "save of step " + killStep + " should have aborted, but it committed");
                    say("save of step %d aborted: %s", killStep, aborted.message());
                    for (int w = 0; w < workers; w++) {
                        if (w != victim) {
                            int code = procs.get(w).waitFor(PHASE_TIMEOUT);
                            check(code == 0, "worker " + w + " exited with " + code + " in phase 1");
                        }
                    }
                } finally {
                    procs.forEach(ClusterProcess::close);
                }
                saves.addAll(coordinator.history());
            }
            check(!catalog.steps().contains(killStep), "a manifest exists for the aborted step " + killStep);
            check(catalog.steps().contains(saveEvery), "no manifest for step " + saveEvery);
            Manifest previous = catalog.read(saveEvery);
            List<String> problems = catalog.verify(previous);
            check(problems.isEmpty(), "checkpoint of step " + saveEvery + " does not verify: " + problems);
            List<String> mismatches = ToyState.checkCheckpoint(catalog, previous, stateBytes);
            check(mismatches.isEmpty(), "checkpoint of step " + saveEvery + " differs from the trained state: " + mismatches);
            say("checkpoint of step %d is intact: %d objects verified, every byte equals the state at step %d", saveEvery,
                    previous.shards().stream().filter(s -> s.objectKey() != null).count(), saveEvery);

            // ---- phase 2: restart the whole cluster from the latest manifest
            say("phase 2: restarting the coordinator and %d workers from the latest checkpoint, training to step %d", workers, steps);
            try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
                Set<String> attempts = catalog.attemptIds();
                check(attempts.equals(Set.of(previous.saveId())), "orphaned attempts survived recovery: " + attempts);
                List<ClusterProcess> procs = startWorkers(work, coordinator.port(), runId, steps, stateBytes, -1, null, "p2");
                try {
                    for (int w = 0; w < workers; w++) {
                        ClusterProcess.Event restored = procs.get(w).await("restored", PHASE_TIMEOUT);
                        check(String.valueOf(saveEvery).equals(restored.get("step")),
                                "worker " + w + " restored step " + restored.get("step") + ", expected " + saveEvery);
                    }
                    say("all %d workers restored step %d and checked their bytes", workers, saveEvery);
                    for (int w = 0; w < workers; w++) {
                        int code = procs.get(w).waitFor(PHASE_TIMEOUT);
                        check(code == 0, "worker " + w + " exited with " + code + " in phase 2 (see " + work + ")");
                    }
                } finally {
                    procs.forEach(ClusterProcess::close);
                }
                saves.addAll(coordinator.history());
            }
            long lastSave = steps / saveEvery * saveEvery;
            Manifest latest = catalog.latest().orElseThrow();
            check(latest.step() == lastSave, "latest checkpoint is step " + latest.step() + ", expected " + lastSave);
            problems = catalog.verify(latest);
            check(problems.isEmpty(), "latest checkpoint does not verify: " + problems);
            mismatches = ToyState.checkCheckpoint(catalog, latest, stateBytes);
            check(mismatches.isEmpty(), "latest checkpoint differs from the trained state: " + mismatches);
            check(saves.stream().anyMatch(r -> r.step() == killStep && r.committed()), "the save of step " + killStep + " did not commit after recovery");
        }

        printTable();
        double seconds = (System.nanoTime() - started) / 1e9;
        if (!failures.isEmpty()) {
            failures.forEach(f -> System.out.println("FAILED: " + f));
            System.out.printf("demo failed (%d checks) after %.1f s; logs in %s%n", failures.size(), seconds, work);
            return EXIT_CHECK_FAILED;
        }
        System.out.printf("demo passed in %.1f s: the killed save aborted, step %d stayed intact, the cluster resumed from it, "
                + "and step %d restores byte for byte.%n", seconds, saveEvery, steps / saveEvery * saveEvery);
        return 0;
    }

    private Map<Long, CompletableFuture<SaveRecord>> track(Coordinator coordinator) {
        Map<Long, CompletableFuture<SaveRecord>> outcomes = new ConcurrentHashMap<>();
        coordinator.addListener(r -> outcomes.computeIfAbsent(r.step(), k -> new CompletableFuture<>()).complete(r));
        return outcomes;
    }

    private List<ClusterProcess> startWorkers(Path work, int port, String runId, long trainTo, int stateBytes, int pausing,
                                              String pauseAt, String phase) throws Exception {
        List<ClusterProcess> procs = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            List<String> args = ToyWorkerCommand.commandLine("127.0.0.1:" + port, runId, w, workers, trainTo, stateBytes / 1024,
                    storageText);
            if (w == pausing) {
                args.add("--pause-at");
                args.add(pauseAt);
            }
            procs.add(ClusterProcess.start("worker-" + w, work.resolve(phase + "-worker-" + w + ".log"), "256m", args));
        }
        return procs;
    }

    private void check(boolean ok, String failure) {
        if (!ok) {
            failures.add(failure);
        }
    }

    private void printTable() {
        System.out.println();
        System.out.printf("%8s  %-22s  %12s  %10s  %10s%n", "STEP", "OUTCOME", "BYTES", "STALL ms", "UPLOAD ms");
        for (SaveRecord r : saves) {
            boolean ok = r.committed();
            System.out.printf("%8d  %-22s  %12d  %10s  %10s%n", r.step(), r.outcome(), r.bytes(),
                    ok ? String.format("%.1f", r.maxStallMicros() / 1000.0) : "-",
                    ok ? String.format("%.1f", r.maxUploadMicros() / 1000.0) : "-");
        }
        System.out.println();
    }

    private static void say(String format, Object... args) {
        System.out.printf("cairn demo: " + format + "%n", args);
        System.out.flush();
    }
}
