package dev.cairn.harness;

import static dev.cairn.harness.ChaosSettings.WAIT;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.testkit.FaultInjectingHttpProxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * The chaos fault that strikes storage while a save is in flight: local storage turned read-only,
 * an HDFS DataNode stopped, S3 requests broken by the relay. Any committed checkpoint must then
 * restore byte for byte (the checker's job).
 */
final class StorageFaults {
    private final ChaosSettings settings;
    private final ChaosStorage storage;
    private final ChaosCluster cluster;
    private final ChaosReport report;

    StorageFaults(ChaosSettings settings, ChaosStorage storage, ChaosCluster cluster, ChaosReport report) {
        this.settings = settings;
        this.storage = storage;
        this.cluster = cluster;
        this.report = report;
    }

    void inject(ChaosRound round) throws Exception {
        switch (settings.backend()) {
            case "hdfs" -> remoteStorageFault(round, true);
            case "s3" -> remoteStorageFault(round, false);
            default -> localStorageFault(round);
        }
    }

    /**
     * HDFS: a DataNode is stopped while the save is in flight (the last shard not yet uploaded;
     * replication 2, so the write goes on with the other one) and restarted after the save ended.
     * S3: the relay breaks the next few PUTs (connection resets, 503 SlowDown, 500, requests that
     * get no answer until the client's 2 s socket timeout). Every such fault is retryable, so the
     * save must commit.
     */
    private void remoteStorageFault(ChaosRound round, boolean hdfs) throws Exception {
        long f = round.faultStep;
        ClusterProcess held = cluster.startWithVictimHeldBeforeFaultSave(round);
        FaultInjectingHttpProxy relay = storage.relay();
        MiniDFSCluster.DataNodeProperties stopped = null;
        if (hdfs) {
            MiniDFSCluster dfs = storage.server().hdfs();
            int dn = round.random.nextInt(dfs.getDataNodes().size());
            round.moment = "DataNode " + dn + " stopped mid-save";
            stopped = dfs.stopDataNode(dn);
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
            ended = cluster.awaitSave(round, f);
        } finally {
            if (relay != null) {
                report.storageFaultsInjected += relay.faultsInjected() - injectedBefore;
                relay.clear();
            }
            if (stopped != null) {
                report.storageFaultsInjected++;
                storage.server().hdfs().restartDataNode(stopped, true);
                storage.server().hdfs().waitActive();
            }
        }
        ended(round, ended, t0);
        if (!hdfs && !"COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " was lost although every injected S3 fault was retryable: " + round.outcome);
        }
        cluster.checkSurvivorsTrainOn(round);
        awaitLaterCommit(round, "; step %d committed after", "after the storage fault ended");
    }

    /** Local storage: the data directory turns immutable before the victim's shard is written; the save must abort. */
    private void localStorageFault(ChaosRound round) throws Exception {
        long f = round.faultStep;
        round.moment = "data/ read-only (chattr +i)";
        ClusterProcess held = cluster.startWithVictimHeldBeforeFaultSave(round);
        if (!storage.freeze(true)) {
            round.moment = "skipped: chattr +i not possible here";
            round.outcome = "not injected";
            held.send("go");
            return;
        }
        long t0 = System.currentTimeMillis();
        held.send("go");
        ended(round, cluster.awaitSave(round, f), t0);
        if ("COMMITTED".equals(round.outcome)) {
            round.violation("the save of step " + f + " committed although storage refused every shard");
        }
        storage.freeze(false);
        cluster.checkSurvivorsToldAndTraining(round, Set.of());
        // the storage is back: training went on, and a later save commits without any restart
        awaitLaterCommit(round, "; storage back, step %d committed", "after storage came back");
    }

    private void ended(ChaosRound round, ClusterProcess.Event ended, long t0) {
        long detect = Math.max(0, ended.getLong("atMs") - t0);
        report.storageFailedFor(detect);
        round.detectMs = detect;
        round.outcome = ended.get("outcome");
    }

    private void awaitLaterCommit(ChaosRound round, String outcomeFormat, String when) throws InterruptedException {
        try {
            ClusterProcess.Event next = cluster.awaitCommitAfter(round, round.faultStep);
            round.outcome += String.format(Locale.ROOT, outcomeFormat, next.getLong("step"));
        } catch (TimeoutException e) {
            round.violation("no save committed within " + WAIT.toSeconds() + " s " + when);
            cluster.dumpThreads(round.number);
        }
    }
}
