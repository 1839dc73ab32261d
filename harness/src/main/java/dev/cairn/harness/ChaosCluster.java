package dev.cairn.harness;

import static dev.cairn.harness.ChaosSettings.SAVE_EVERY;
import static dev.cairn.harness.ChaosSettings.SHORT_WAIT;
import static dev.cairn.harness.ChaosSettings.WAIT;

import dev.cairn.coordinator.AdminClient;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.testkit.ClusterProcess;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeoutException;

/**
 * The processes of a chaos campaign: the coordinator (restarted as a cluster manager would, on
 * the same port) and a round's worker processes, and the checks of a round's start and of the
 * workers that survive a fault. Every process is a real JVM running a {@code cairn} command.
 */
final class ChaosCluster {
    private final ChaosSettings settings;
    private final ChaosStorage storage;
    private final ChaosReport report;
    private final List<ClusterProcess> allCoordinators = new ArrayList<>();
    private final List<ClusterProcess> workerProcs = new ArrayList<>();
    private ClusterProcess coordinator;
    private int port;
    /** The running coordinator was started with a pause point. */
    private boolean coordinatorArmed;

    ChaosCluster(ChaosSettings settings, ChaosStorage storage, ChaosReport report) {
        this.settings = settings;
        this.storage = storage;
        this.report = report;
    }

    /** The current coordinator process, or null before the first start. */
    ClusterProcess coordinator() {
        return coordinator;
    }

    boolean coordinatorAlive() {
        return coordinator != null && coordinator.isAlive();
    }

    ClusterProcess worker(int index) {
        return workerProcs.get(index);
    }

    // ------------------------------------------------------------------ coordinator

    /** The coordinator command line; {@code pauseAt} (PHASE@STEP) makes it block there, to be killed. */
    private List<String> coordinatorArgs(String pauseAt) {
        List<String> args = new ArrayList<>(List.of("coordinator", "--storage", storage.storageText(),
                "--world", Integer.toString(settings.workers()), "--run-id", ChaosSettings.RUN_ID, "--port", Integer.toString(port),
                "--save-every-steps", Long.toString(SAVE_EVERY), "--keep-last", Integer.toString(ChaosSettings.KEEP_LAST)));
        if (pauseAt != null) {
            args.add("--pause-at");
            args.add(pauseAt);
        }
        if (settings.unsafeCommit()) {
            args.add("--unsafe-commit-before-durable");
        }
        if (report.coordinatorStarts > 1) {
            // a cluster manager restarting the coordinator it killed: the dead one's lease is not
            // yet expired, and waiting it out would only slow the campaign
            args.add("--force");
        }
        return args;
    }

    void startCoordinator(String pauseAt) throws Exception {
        report.coordinatorStarts++;
        int n = report.coordinatorStarts;
        coordinatorArmed = pauseAt != null;
        ClusterProcess c = ClusterProcess.start("coordinator-" + n, storage.work().resolve("coordinator-" + n + ".log"), "192m",
                coordinatorArgs(pauseAt));
        allCoordinators.add(c);
        coordinator = c;
        ClusterProcess.Event listening = c.await("listening", WAIT);
        port = (int) listening.getLong("port");
    }

    /** Starts a coordinator unless one is running. */
    void ensureCoordinator() throws Exception {
        if (!coordinatorAlive()) {
            startCoordinator(null);
        }
    }

    void stopCoordinator() throws Exception {
        if (coordinatorAlive()) {
            coordinator.terminate();
            coordinator.waitFor(WAIT);
        }
    }

    void killCoordinator() throws Exception {
        coordinator.kill();
        coordinator.waitFor(WAIT);
    }

    /** The save events of every coordinator of the campaign. */
    List<ClusterProcess.Event> saveEvents() {
        List<ClusterProcess.Event> saves = new ArrayList<>();
        for (ClusterProcess c : allCoordinators) {
            for (ClusterProcess.Event e : c.events()) {
                if (e.kind().equals("save")) {
                    saves.add(e);
                }
            }
        }
        return saves;
    }

    Set<String> abortedSaveIds() {
        Set<String> ids = new HashSet<>();
        for (ClusterProcess.Event e : saveEvents()) {
            if (!"COMMITTED".equals(e.get("outcome")) && !"-".equals(e.get("saveId"))) {
                ids.add(e.get("saveId"));
            }
        }
        return ids;
    }

    long maxReportedCommit() {
        long max = -1;
        for (ClusterProcess.Event e : saveEvents()) {
            if ("COMMITTED".equals(e.get("outcome"))) {
                max = Math.max(max, e.getLong("step"));
            }
        }
        return max;
    }

    // ------------------------------------------------------------------ a round's workers

    /**
     * Starts the workers of a round from the latest checkpoint and checks the recovery: every worker
     * restores the latest step, and the first save after it commits.
     */
    void startRound(ChaosRound round, Map<Integer, List<String>> extraArgs) throws Exception {
        ensureCoordinator();
        round.coordinatorMark = coordinator.eventCount();
        int workers = settings.workers();
        for (int w = 0; w < workers; w++) {
            List<String> args = ToyWorkerCommand.commandLine("127.0.0.1:" + port, ChaosSettings.RUN_ID, w, workers,
                    round.latestBefore + 100_000, settings.stateKib(), storage.storageText());
            args.addAll(List.of("--chunk-kib", Integer.toString(Math.max(4, settings.stateKib() / 16)), "--staging-mib", "16",
                    "--step-millis", Long.toString(ChaosSettings.STEP_MILLIS)));
            args.addAll(extraArgs.getOrDefault(w, List.of()));
            workerProcs.add(ClusterProcess.start("worker-" + w, storage.work().resolve("round-" + round.number + "-worker-" + w + ".log"),
                    "96m", args));
            report.workerStarts++;
        }
        String expected = round.latestBefore == 0 ? "none" : Long.toString(round.latestBefore);
        for (int w = 0; w < workers; w++) {
            ClusterProcess.Event restored = workerProcs.get(w).await("restored", WAIT);
            if (!expected.equals(restored.get("step"))) {
                round.violation("worker " + w + " restored step " + restored.get("step") + " but the latest checkpoint is " + expected);
            }
        }
        long first = round.latestBefore + SAVE_EVERY;
        ClusterProcess.Event e = awaitSave(round, first);
        if (!"COMMITTED".equals(e.get("outcome"))) {
            round.violation("the first save after recovery (step " + first + ") did not commit: " + e.get("outcome"));
        }
    }

    /**
     * Starts the round's workers with the victim held just before its save of the fault step, waits
     * until every other worker has saved that step and the save before it has ended, and returns the
     * held victim (resumed by a line on its stdin).
     */
    ClusterProcess startWithVictimHeldBeforeFaultSave(ChaosRound round) throws Exception {
        long f = round.faultStep;
        int v = round.victim;
        startRound(round, Map.of(v, List.of("--hold-before-save", Long.toString(f))));
        ClusterProcess held = workerProcs.get(v);
        held.await("paused", WAIT);
        awaitOthersSaved(round);
        awaitPreviousSaveEnded(round);
        return held;
    }

    /** Every worker but the victim has prepared the fault step: the victim is the one the save waits for. */
    void awaitOthersSaved(ChaosRound round) throws TimeoutException, InterruptedException {
        for (int w = 0; w < settings.workers(); w++) {
            if (w != round.victim) {
                workerProcs.get(w).await("saved", ev -> ev.getLong("step") == round.faultStep, WAIT);
            }
        }
    }

    /**
     * Waits until the save before the fault step ended, so the save in flight when the fault hits is
     * the fault step's. Workers train at their own pace (the toy has no all-reduce), so the others
     * may have prepared the fault step while the previous save is still uploading.
     */
    void awaitPreviousSaveEnded(ChaosRound round) throws TimeoutException, InterruptedException {
        awaitSave(round, round.faultStep - SAVE_EVERY);
    }

    /** The coordinator's event of the save of {@code step} in this round. */
    ClusterProcess.Event awaitSave(ChaosRound round, long step) throws TimeoutException, InterruptedException {
        return coordinator.awaitAfter(round.coordinatorMark, "save", ev -> ev.getLong("step") == step, WAIT);
    }

    /** The coordinator's event of the first save after {@code step} that committed in this round. */
    ClusterProcess.Event awaitCommitAfter(ChaosRound round, long step) throws TimeoutException, InterruptedException {
        return coordinator.awaitAfter(round.coordinatorMark, "save",
                ev -> "COMMITTED".equals(ev.get("outcome")) && ev.getLong("step") > step, WAIT);
    }

    /** Surviving workers that were in the save are told why it aborted, and keep training. */
    void checkSurvivorsToldAndTraining(ChaosRound round, Set<Integer> excluded) throws InterruptedException {
        long f = round.faultStep;
        for (int w = 0; w < settings.workers(); w++) {
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

    /** Every worker keeps training past the fault step (after a storage fault). */
    void checkSurvivorsTrainOn(ChaosRound round) throws InterruptedException {
        long f = round.faultStep;
        for (int w = 0; w < settings.workers(); w++) {
            try {
                workerProcs.get(w).await("saved", ev -> ev.getLong("step") > f, SHORT_WAIT);
            } catch (TimeoutException e) {
                round.violation("worker " + w + " stopped training after the storage fault at step " + f);
            }
        }
    }

    // ------------------------------------------------------------------ ending a round, and the campaign

    /** SIGKILLs the round's workers; waits until the coordinator ended what was in flight, or kills an armed one. */
    void killWorkers() throws Exception {
        for (ClusterProcess p : workerProcs) {
            p.kill();
        }
        for (ClusterProcess p : workerProcs) {
            p.waitFor(WAIT);
            p.close();
        }
        workerProcs.clear();
        if (coordinatorAlive() && !coordinatorArmed) {
            // the coordinator has noticed every session ended and aborted what was in flight
            awaitIdle();
        } else if (coordinator != null) {
            coordinator.kill();
            coordinator.waitFor(WAIT);
            coordinator = null;
        }
    }

    /** Waits until the coordinator ended the save in flight, if any: its status shows no phase and no workers. */
    private void awaitIdle() throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            try (AdminClient admin = new AdminClient("127.0.0.1:" + port)) {
                var status = admin.stub.status(StatusRequest.getDefaultInstance());
                if (status.getConnectedWorkersCount() == 0 && status.getInFlightPhase().isEmpty()) {
                    return;
                }
            }
            Thread.sleep(50);
        }
        throw new TimeoutException("coordinator still has workers or a save in flight " + WAIT.toSeconds() + " s after every worker was killed");
    }

    /** Thread dumps of every live process of a hung round, beside its logs. */
    void dumpThreads(int round) {
        List<ClusterProcess> procs = new ArrayList<>(workerProcs);
        if (coordinator != null) {
            procs.add(coordinator);
        }
        for (ClusterProcess p : procs) {
            if (!p.isAlive()) {
                continue;
            }
            try {
                Path out = storage.work().resolve("round-" + round + "-" + p.name() + ".threads");
                new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(), Long.toString(p.pid()), "Thread.print")
                        .redirectErrorStream(true).redirectOutput(out.toFile()).start().waitFor();
            } catch (IOException | InterruptedException e) {
                report.notes.add("no thread dump of " + p.name() + ": " + e);
            }
        }
    }

    /** Stops every process: the coordinator gracefully if it can. */
    void stopAll() {
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

    /** Kills every process at once (an interrupted campaign's shutdown hook). */
    void closeNow() {
        List.copyOf(workerProcs).forEach(ClusterProcess::close);
        List.copyOf(allCoordinators).forEach(ClusterProcess::close);
    }
}
