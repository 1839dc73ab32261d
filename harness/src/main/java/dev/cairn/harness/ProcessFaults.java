package dev.cairn.harness;

import static dev.cairn.harness.ChaosSettings.DETECT_LIMIT_MS;
import static dev.cairn.harness.ChaosSettings.WAIT;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.testkit.ClusterProcess;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeoutException;

/**
 * The chaos faults that strike a process: a worker killed (SIGKILL) or stalled (SIGSTOP) at a
 * moment of the save, and the coordinator killed before or after it wrote the manifest.
 */
final class ProcessFaults {
    private final ChaosSettings settings;
    private final ChaosCluster cluster;
    private final CheckpointCatalog catalog;
    private final ChaosReport report;

    ProcessFaults(ChaosSettings settings, ChaosCluster cluster, CheckpointCatalog catalog, ChaosReport report) {
        this.settings = settings;
        this.cluster = cluster;
        this.catalog = catalog;
        this.report = report;
    }

    /** The victim is paused at the round's moment, then killed or stopped; the save must abort in time and survivors train on. */
    void workerFault(ChaosRound round) throws Exception {
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
                round.holder = (v + 1) % settings.workers();
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
        cluster.startRound(round, extra);
        ClusterProcess victim = cluster.worker(v);
        victim.await("paused", WAIT);
        if (round.holder >= 0) {
            cluster.worker(round.holder).await("paused", WAIT);
        }
        if (round.fault != ChaosFault.WORKER_KILL_AT_BARRIER) {
            cluster.awaitOthersSaved(round);
        }
        cluster.awaitPreviousSaveEnded(round);
        long t0 = System.currentTimeMillis();
        if (round.fault == ChaosFault.WORKER_STALL) {
            victim.pause(true);
        } else {
            victim.kill();
        }
        ClusterProcess.Event ended = cluster.awaitSave(round, f);
        round.outcome = ended.get("outcome");
        round.detectMs = Math.max(0, ended.getLong("atMs") - t0);
        report.workerLostFor(round.detectMs);
        if ("COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " committed although worker " + v + " never reported its shard");
        }
        if (round.detectMs > DETECT_LIMIT_MS) {
            round.violation("worker " + v + " was lost for " + round.detectMs + " ms before the save aborted (limit " + DETECT_LIMIT_MS + " ms)");
        }
        cluster.checkSurvivorsToldAndTraining(round, Set.of(v, round.holder));
    }

    /**
     * The coordinator pauses at a moment of the save and is SIGKILLed there; the manifest exists
     * exactly when it was written before the kill; a restarted coordinator sweeps the orphaned
     * attempt and the reconnected agents commit a later save.
     */
    void coordinatorFault(ChaosRound round) throws Exception {
        long f = round.faultStep;
        String phase = switch (round.fault) {
            case COORDINATOR_KILL_BARRIER -> "BARRIER_STARTED";
            case COORDINATOR_KILL_BEFORE_MANIFEST -> "ALL_REPORTED";
            case COORDINATOR_KILL_AFTER_MANIFEST -> "MANIFEST_WRITTEN";
            default -> throw new IllegalStateException(round.fault.toString());
        };
        round.moment = phase.toLowerCase(Locale.ROOT).replace('_', '-');
        cluster.stopCoordinator();
        cluster.startCoordinator(phase + "@" + f);
        cluster.startRound(round, Map.of());
        cluster.coordinator().awaitAfter(round.coordinatorMark, "paused", ev -> true, WAIT);
        cluster.killCoordinator();
        boolean manifest = catalog.steps().contains(f);
        round.outcome = manifest ? "committed, nobody told" : "no manifest";
        if (round.fault == ChaosFault.COORDINATOR_KILL_AFTER_MANIFEST) {
            if (!manifest) {
                round.violation("the coordinator was killed after writing the manifest of step " + f + ", but there is none");
            }
        } else if (manifest) {
            round.violation("a manifest for step " + f + " exists although the coordinator died before writing it");
        }
        // recovery: a cluster manager restarts the coordinator on the same address; the agents reconnect
        cluster.startCoordinator(null);
        round.coordinatorMark = 0;
        // The restart takes the root over with --force while the killed coordinator's lease is still live, so by
        // the fencing rule (docs/operations.md) it does not sweep that epoch's newest attempt at start: the killed
        // coordinator might only be paused; it sweeps it once the killed one's lease has expired (plus a lease of
        // margin, up to a minute), later than a round waits. The campaign's GC checks that nothing outside a
        // committed checkpoint remains.
        try {
            ClusterProcess.Event next = cluster.awaitCommitAfter(round, f);
            long firstAfter = cluster.coordinator().events().stream().filter(ev -> ev.kind().equals("save")).findFirst()
                    .map(ev -> ev.getLong("step")).orElse(-1L);
            round.outcome += "; agents reconnected, step " + next.getLong("step") + " committed"
                    + (firstAfter == next.getLong("step") ? "" : " (first save after restart: step " + firstAfter + " aborted)");
        } catch (TimeoutException e) {
            round.violation("no save committed within " + WAIT.toSeconds() + " s after the coordinator restarted (agents did not reconnect?)");
        }
    }
}
