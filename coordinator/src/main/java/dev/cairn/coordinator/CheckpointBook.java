package dev.cairn.coordinator;

import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The coordinator's committed-checkpoint bookkeeping: recovery from storage at start, retention
 * after each commit, sweeping of orphaned and aborted attempts, and the LATEST hint. The scan and
 * sweep are {@link CheckpointCleaner}'s, with its guards. {@link #recover} and {@link #committed}
 * run on the event loop; deletes and hint writes on the I/O executor.
 */
final class CheckpointBook {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointBook.class);

    private final CoordinatorConfig config;
    private final CheckpointCatalog catalog;
    private final EventLoop loop;
    private final Fence fence;
    /** Committed checkpoints whose manifests validate, by step. Touched on the loop only. */
    private final TreeMap<Long, RetentionPolicy.Kept> kept = new TreeMap<>();
    private long hintedStep = -1;
    /** Told of every checkpoint retention deleted (metrics); I/O thread. */
    private volatile Runnable onRetentionDelete = () -> { };

    CheckpointBook(CoordinatorConfig config, CheckpointCatalog catalog, EventLoop loop, Fence fence) {
        this.fence = fence;
        this.config = config;
        this.catalog = catalog;
        this.loop = loop;
    }

    /**
     * Reads every manifest, keeps the valid ones for retention and sweeps attempts no valid manifest
     * references that were last written before {@code sweepCutoff} (the coordinator's start, or the
     * previous lease holder's last renewal if earlier). Returns the newest valid checkpoint.
     */
    Optional<CheckpointRef> recover(Instant sweepCutoff) throws IOException {
        Instant startedAt = sweepCutoff;
        CheckpointCleaner.Scan scan = CheckpointCleaner.scan(catalog,
                warning -> LOG.error("{} — skipped; restore uses the newest valid checkpoint", warning));
        scan.kept().forEach(k -> kept.put(k.step(), k));
        fence.check();
        List<CheckpointCleaner.SweptAttempt> swept = CheckpointCleaner.sweepOrphans(catalog, scan, startedAt, false);
        for (CheckpointCleaner.SweptAttempt a : swept) {
            LOG.info("swept orphaned attempt {} of run {} in {} ({} objects)", a.saveId(), config.runId(), catalog.store().uri(), a.objects());
        }
        int leftovers = catalog.sweepAbandonedCommitWrites(startedAt);
        if (scan.valid().isEmpty()) {
            LOG.info("run {} has no checkpoint in {} yet", config.runId(), catalog.store().uri());
            return Optional.empty();
        }
        Manifest newest = scan.valid().get(scan.valid().size() - 1);
        Optional<Long> hinted = catalog.latestStep();
        if (hinted.orElse(-1L) != newest.step() && !scan.corruptSteps().contains(hinted.orElse(-1L))) {
            catalog.updateHint(newest.step());
        }
        LOG.info("run {} resumes from step {} (save {}) in {}; {} checkpoints kept, {} orphaned attempts and {} leftovers swept",
                config.runId(), newest.step(), newest.saveId(), catalog.store().uri(), kept.size(), swept.size(), leftovers);
        return Optional.of(ref(newest.step(), newest.saveId()));
    }

    static CheckpointRef ref(long step, String saveId) {
        return CheckpointRef.newBuilder().setStep(step).setSaveId(saveId).setManifestKey(Layout.manifestKey(step)).build();
    }

    void onRetentionDelete(Runnable listener) {
        this.onRetentionDelete = listener;
    }

    /** A checkpoint was committed: apply retention, and sweep recently aborted attempts again. Loop thread. */
    void committed(Manifest manifest, Set<String> recentlyAborted) {
        kept.put(manifest.step(), CheckpointCleaner.kept(manifest));
        List<RetentionPolicy.Kept> victims = new ArrayList<>();
        for (long step : config.retention().toDelete(new ArrayList<>(kept.values()))) {
            victims.add(kept.remove(step));
        }
        if (!victims.isEmpty() || !recentlyAborted.isEmpty()) {
            loop.io(() -> applyRetention(victims, recentlyAborted));
        }
    }

    /** The checkpoints retention keeps, ascending by step. Loop thread. */
    List<CheckpointRef> kept() {
        return kept.values().stream().map(k -> ref(k.step(), k.saveId())).toList();
    }

    /** Deletes an aborted attempt's objects, best effort, on the I/O executor. */
    void deleteAttempt(String saveId) {
        loop.io(() -> {
            try {
                fence.check();
                int n = catalog.deleteAttempt(saveId);
                LOG.debug("deleted {} objects of aborted save {} in {}", n, saveId, catalog.store().uri());
            } catch (IOException | RuntimeException e) {
                LOG.warn("could not delete aborted save {} in {} (swept at next start): {}", saveId, catalog.store().uri(), e.toString());
            }
        });
    }

    /**
     * The sweep a start left for later: after a forced takeover (or a predecessor whose lease
     * expired unrenewed) the start swept only attempts older than the predecessor's last renewal.
     * Once the predecessor's lease has expired it can commit nothing more, so every attempt that no
     * valid manifest references is an orphan — except this coordinator's save in flight
     * ({@code keep}) and attempts written after {@code cutoff} (saves released since). I/O executor.
     */
    void sweepAfterTakeover(java.util.Set<String> keep, Instant cutoff, long previousEpoch) {
        loop.io(() -> {
            try {
                fence.check();
                CheckpointCleaner.Scan scan = CheckpointCleaner.scan(catalog, warning -> { });
                List<CheckpointCleaner.SweptAttempt> swept = CheckpointCleaner.sweepOrphans(catalog, scan, cutoff, false, keep);
                int leftovers = catalog.sweepAbandonedCommitWrites(cutoff);
                LOG.info("epoch {}'s lease has expired: swept {} orphaned attempts ({} objects) and {} leftovers of run {} in {}",
                        previousEpoch, swept.size(), swept.stream().mapToInt(CheckpointCleaner.SweptAttempt::objects).sum(), leftovers,
                        config.runId(), catalog.store().uri());
            } catch (IOException | RuntimeException e) {
                LOG.warn("sweep after the takeover of epoch {} in {} failed (a later start or cairn gc sweeps): {}",
                        previousEpoch, catalog.store().uri(), e.toString());
            }
        });
    }

    /** Hint updates of consecutive commits may run on different I/O threads: never move the hint back. */
    synchronized void updateHintMonotonic(long step) {
        if (step > hintedStep) {
            catalog.updateHint(step);
            hintedStep = step;
        }
    }

    private void applyRetention(List<RetentionPolicy.Kept> victims, Set<String> abortedAttempts) {
        try {
            fence.check(); // a deposed coordinator deletes nothing
        } catch (IOException | RuntimeException e) {
            LOG.error("retention of run {} in {} skipped: {}", config.runId(), catalog.store().uri(), e.getMessage());
            return;
        }
        for (RetentionPolicy.Kept k : victims) {
            try {
                CheckpointCleaner.deleteCheckpoint(catalog, k);
                onRetentionDelete.run();
                LOG.info("retention deleted step {} (save {}) of run {} from {}", k.step(), k.saveId(), config.runId(), catalog.store().uri());
            } catch (IOException | RuntimeException e) {
                LOG.warn("retention could not delete step {} of run {} from {}: {}", k.step(), config.runId(), catalog.store().uri(), e.toString());
            }
        }
        // an agent may still have been finishing an aborted attempt when it was deleted: sweep again
        for (String saveId : abortedAttempts) {
            try {
                catalog.deleteAttempt(saveId);
            } catch (IOException | RuntimeException e) {
                LOG.debug("sweep of aborted save {} in {}: {}", saveId, catalog.store().uri(), e.toString());
            }
        }
    }
}
