package dev.cairn.harness;

import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeoutException;

/**
 * Runs a chaos campaign: one fault per round from the seed's {@link FaultPlan}, the recovery a
 * cluster manager would do, and the {@link ChaosChecker}'s invariants after every round; then one
 * final recovery and the {@link ChaosReport}.
 */
final class ChaosCampaign {
    private static final int EXIT_CHECK_FAILED = 1;

    private final ChaosSettings settings;
    private final ChaosReport report = new ChaosReport();

    ChaosCampaign(ChaosSettings settings) {
        this.settings = settings;
    }

    /** Runs every round and prints the report; returns the exit code: 0 only if no invariant was violated. */
    int run() throws Exception {
        long started = System.nanoTime();
        ChaosStorage storage = ChaosStorage.start(settings.backend(), report);
        FaultPlan plan = new FaultPlan(settings.seed(), settings.rounds(), settings.workers(), settings.onlyFaults());
        ChaosReport.progress("seed %d, %d rounds, %d workers, storage %s; logs in %s", settings.seed(), settings.rounds(),
                settings.workers(), storage.uri(), storage.work());
        ChaosCluster cluster = new ChaosCluster(settings, storage, report);
        // an interrupted campaign (Ctrl-C) leaves no process behind and no immutable directory
        Thread cleanup = new Thread(() -> {
            try {
                cluster.closeNow();
                storage.unfreeze();
            } catch (RuntimeException e) {
                // best effort at exit
            }
        }, "cairn-chaos-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            storage.open();
            Rounds rounds = new Rounds(storage, cluster);
            for (int r = 1; r <= settings.rounds(); r++) {
                rounds.run(r, plan.schedule().get(r - 1), plan);
            }
            rounds.epilogue();
        } finally {
            cluster.stopAll();
            storage.close(); // after the processes: they may still be using it
            Runtime.getRuntime().removeShutdownHook(cleanup);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        report.print(settings, cluster.saveEvents(), storage.work().toString(), millis);
        if (report.violations.isEmpty() && !settings.keepLogs()) {
            storage.deleteWork();
        }
        return report.violations.isEmpty() ? 0 : EXIT_CHECK_FAILED;
    }

    /** The rounds of one campaign, over its storage and processes. */
    private final class Rounds {
        private final ChaosStorage storage;
        private final ChaosCluster cluster;
        private final ChaosChecker checker;
        private final ProcessFaults processFaults;
        private final StorageFaults storageFaults;
        private final SplitBrainRace splitBrain;

        Rounds(ChaosStorage storage, ChaosCluster cluster) {
            this.storage = storage;
            this.cluster = cluster;
            this.checker = new ChaosChecker(settings, storage, cluster, report);
            this.processFaults = new ProcessFaults(settings, cluster, storage.catalog(), report);
            this.storageFaults = new StorageFaults(settings, storage, cluster, report);
            this.splitBrain = new SplitBrainRace(settings, storage, cluster, report);
        }

        void run(int number, ChaosFault fault, FaultPlan plan) throws Exception {
            long started = System.nanoTime();
            long latestBefore = storage.catalog().latestStep().orElse(0L);
            FaultPlan.Target target = plan.next(latestBefore);
            ChaosRound round = new ChaosRound(number, "round " + number, fault, latestBefore, target.faultStep(), target.victim(),
                    new Random(target.variantSeed()), report.violations);
            report.countFault(fault);
            try {
                switch (fault) {
                    case WORKER_KILL_BEFORE_BARRIER, WORKER_KILL_AT_BARRIER, WORKER_KILL_SNAPSHOT, WORKER_KILL_MID_UPLOAD,
                            WORKER_KILL_AFTER_DURABLE, WORKER_STALL -> processFaults.workerFault(round);
                    case COORDINATOR_KILL_BARRIER, COORDINATOR_KILL_BEFORE_MANIFEST, COORDINATOR_KILL_AFTER_MANIFEST ->
                            processFaults.coordinatorFault(round);
                    case STORAGE_READ_ONLY -> storageFaults.inject(round);
                    case SPLIT_BRAIN -> splitBrain.run(round);
                }
            } catch (TimeoutException e) {
                round.violation("hang: " + e.getMessage());
                cluster.dumpThreads(number);
            } finally {
                storage.unfreeze();
                cluster.killWorkers();
            }
            if (cluster.coordinator() != null && !cluster.coordinatorAlive()) {
                round.violation("the coordinator died unexpectedly (see " + storage.work() + ")");
            }
            cluster.ensureCoordinator();
            checker.check(round);
            long latest = storage.catalog().latestStep().orElse(-1L);
            long millis = (System.nanoTime() - started) / 1_000_000;
            ChaosRound.Result result = new ChaosRound.Result(number, fault.label(), round.moment, round.faultStep, round.outcome,
                    round.detectMs, latest, round.violationCount(), millis);
            report.add(result);
            ChaosReport.progress("round %d/%d: %s%s at step %d -> %s%s; latest %d; %s (%.1f s)", number, settings.rounds(), fault.label(),
                    round.moment.isEmpty() ? "" : " (" + round.moment + ")", round.faultStep, round.outcome,
                    round.detectMs >= 0 ? ", detected in " + round.detectMs + " ms" : "", latest,
                    result.violations() == 0 ? "ok" : result.violations() + " violation(s)", millis / 1000.0);
        }

        /** After the last round: the cluster recovers once more and its first save commits. */
        void epilogue() throws Exception {
            ChaosRound last = new ChaosRound(settings.rounds() + 1, "final recovery", ChaosFault.SPLIT_BRAIN,
                    storage.catalog().latestStep().orElse(0L), -1, -1, new Random(settings.seed()), report.violations);
            try {
                cluster.startRound(last, Map.of());
            } catch (TimeoutException e) {
                last.violation("hang: " + e.getMessage());
            } finally {
                cluster.killWorkers();
            }
        }
    }
}
