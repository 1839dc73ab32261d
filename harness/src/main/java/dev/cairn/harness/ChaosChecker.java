package dev.cairn.harness;

import dev.cairn.coordinator.CoordinatorLease;
import dev.cairn.coordinator.CheckpointCleaner;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.NoSuchObjectException;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The storage invariants of docs/chaos.md, checked after every round with every worker stopped
 * and no save in flight: every manifest validates and restores byte for byte, none belongs to an
 * aborted save, the latest step never goes back, nothing reported committed is lost, and after
 * the operator's GC nothing outside a committed checkpoint remains.
 */
final class ChaosChecker {
    private final ChaosSettings settings;
    private final ChaosStorage storage;
    private final ChaosCluster cluster;
    private final ChaosReport report;
    private long lastLatest = -1;

    ChaosChecker(ChaosSettings settings, ChaosStorage storage, ChaosCluster cluster, ChaosReport report) {
        this.settings = settings;
        this.storage = storage;
        this.cluster = cluster;
        this.report = report;
    }

    void check(ChaosRound round) throws Exception {
        CheckpointCatalog catalog = storage.catalog();
        List<Long> steps = catalog.steps();
        checkManifests(round, catalog, steps);
        // the latest step never goes backwards, and nothing the coordinator reported committed is lost
        long latest = steps.isEmpty() ? -1 : steps.get(steps.size() - 1);
        if (latest < lastLatest) {
            round.violation("the latest checkpoint went back from step " + lastLatest + " to " + latest);
        }
        long reported = cluster.maxReportedCommit();
        if (latest < reported) {
            round.violation("the coordinator reported step " + reported + " committed, but the latest checkpoint is step " + latest);
        }
        // (only when the round reached its fault: a round that hung before it never saved the step before)
        boolean reachedFault = !round.outcome.isEmpty();
        if (reachedFault && (round.fault.workerLoss || round.fault == ChaosFault.STORAGE_READ_ONLY
                || round.fault == ChaosFault.COORDINATOR_KILL_BARRIER || round.fault == ChaosFault.COORDINATOR_KILL_BEFORE_MANIFEST)) {
            // the save in flight is the only one that may be lost: everything before it committed
            long mustHave = round.faultStep - ChaosSettings.SAVE_EVERY;
            if (latest < mustHave) {
                round.violation("more than the save in flight was lost: latest is step " + latest + ", step " + mustHave + " had committed");
            }
        }
        lastLatest = Math.max(lastLatest, latest);
        // after GC nothing outside a committed checkpoint remains
        runGc();
        List<String> orphans = orphans(storage.rawKeys(), committedIdsNow(catalog));
        for (int retry = 0; retry < 3 && !orphans.isEmpty(); retry++) {
            // the coordinator's retention may be deleting a checkpoint right now (manifest first,
            // then its objects): what is still there a moment later, after another GC, is an orphan
            Thread.sleep(1000);
            runGc();
            orphans = orphans(storage.rawKeys(), committedIdsNow(catalog));
        }
        if (!orphans.isEmpty()) {
            round.violation("after GC, objects outside any committed checkpoint remain: "
                    + orphans.subList(0, Math.min(5, orphans.size())) + (orphans.size() > 5 ? " and " + (orphans.size() - 5) + " more" : ""));
        }
    }

    /** Every manifest validates and restores byte for byte; none belongs to an aborted attempt. */
    private void checkManifests(ChaosRound round, CheckpointCatalog catalog, List<Long> steps) throws IOException {
        Set<String> aborted = cluster.abortedSaveIds();
        for (long step : steps) {
            Manifest m;
            try {
                m = catalog.read(step);
            } catch (NoSuchObjectException e) {
                // listed, then deleted by the live coordinator's asynchronous retention: not a violation
                continue;
            } catch (IOException e) {
                round.violation("the manifest of step " + step + " does not validate: " + e.getMessage());
                continue;
            }
            if (aborted.contains(m.saveId())) {
                round.violation("a manifest exists for step " + step + " of save " + m.saveId() + ", which the coordinator aborted");
            }
            List<String> bad = new ArrayList<>();
            try {
                bad.addAll(catalog.verify(m));
                if (bad.isEmpty()) {
                    bad.addAll(ToyState.checkCheckpoint(catalog, m, settings.stateBytes()));
                }
            } catch (NoSuchObjectException e) {
                // the live coordinator's retention runs asynchronously after a commit and may delete
                // this checkpoint (manifest first) while it is being checked: only a manifest that
                // still exists and names a missing object is a violation
                if (!catalog.steps().contains(step)) {
                    continue;
                }
                bad.add(e.getMessage());
            }
            if (!bad.isEmpty()) {
                round.violation("checkpoint of step " + step + " (save " + m.saveId() + ") does not restore byte for byte: "
                        + bad.subList(0, Math.min(3, bad.size())));
            }
        }
    }

    private static Set<String> committedIdsNow(CheckpointCatalog catalog) throws IOException {
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

    /** Every key (temp files included) that is neither a manifest, the LATEST hint, a lease record, nor part of a committed save. */
    static List<String> orphans(List<String> keys, Set<String> committed) {
        List<String> orphans = new ArrayList<>();
        for (String key : keys) {
            // the coordinators' lease records (fencing) are not checkpoint data: the lease code owns them
            if (key.equals(Layout.LATEST) || Layout.stepOfManifestKey(key).isPresent() || key.startsWith(CoordinatorLease.PREFIX)) {
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
        try (CheckpointStore store = CheckpointStores.open(storage.uri(), false)) {
            CheckpointCleaner.run(new CheckpointCatalog(store), RetentionPolicy.keepLast(ChaosSettings.KEEP_LAST), Instant.now(), false,
                    warning -> { }); // the self-test's corrupt manifests are expected; the checker judges them
        } catch (IOException | RuntimeException e) {
            report.violations.add("cairn gc of " + storage.uri() + " failed: " + e);
        }
    }
}
