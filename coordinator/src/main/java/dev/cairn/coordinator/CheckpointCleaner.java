package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Garbage collection of a run's storage root: the one scan and sweep that {@code cairn gc}, chaos
 * campaigns and a coordinator's recovery and retention share. Retention counts only checkpoints
 * whose manifests validate. A manifest that does not validate is never deleted, and neither are the
 * attempts at its step: an operator decides about those. Attempts with an object younger than the
 * cutoff are left alone (a save that may still be in flight).
 */
public final class CheckpointCleaner {
    /** One orphaned attempt: its save id and how many objects it held. */
    public record SweptAttempt(String saveId, int objects) {}

    /** What a run deleted (or, with {@code dryRun}, would delete). */
    public record Report(List<Manifest> deletedCheckpoints, List<SweptAttempt> sweptAttempts,
                         int abandonedCommitWrites, int keptCheckpoints) {}

    /**
     * The committed checkpoints of a root: the manifests that validate, ascending by step, and the
     * steps whose manifests do not.
     */
    public record Scan(List<Manifest> valid, Set<Long> corruptSteps) {
        /** Save ids referenced by a valid manifest. */
        public Set<String> referenced() {
            Set<String> ids = new HashSet<>();
            valid.forEach(m -> ids.add(m.saveId()));
            return ids;
        }

        /** What retention needs to know of each valid checkpoint. */
        public List<RetentionPolicy.Kept> kept() {
            return valid.stream().map(CheckpointCleaner::kept).toList();
        }
    }

    private CheckpointCleaner() {}

    /** What retention needs to know of {@code m}. */
    static RetentionPolicy.Kept kept(Manifest m) {
        return new RetentionPolicy.Kept(m.step(), m.saveId(), m.createdAt(), m.metadata());
    }

    /**
     * Reads every manifest.
     *
     * @param warn called with a one-line message for every manifest that does not validate
     */
    public static Scan scan(CheckpointCatalog catalog, Consumer<String> warn) throws IOException {
        List<Manifest> valid = new ArrayList<>();
        Set<Long> corrupt = new HashSet<>();
        for (long step : catalog.steps()) {
            try {
                valid.add(catalog.read(step));
            } catch (ManifestException e) {
                corrupt.add(step);
                warn.accept(e.getMessage() + " (left alone)");
            } catch (NoSuchObjectException e) {
                // deleted while reading
            }
        }
        return new Scan(List.copyOf(valid), Set.copyOf(corrupt));
    }

    /**
     * Deletes the attempts no valid manifest references, except those at a corrupt manifest's step
     * and those with an object last written after {@code cutoff}.
     */
    public static List<SweptAttempt> sweepOrphans(CheckpointCatalog catalog, Scan scan, Instant cutoff, boolean dryRun)
            throws IOException {
        return sweepOrphans(catalog, scan, cutoff, dryRun, Set.of());
    }

    /** As {@link #sweepOrphans(CheckpointCatalog, Scan, Instant, boolean)}, never touching the attempts in {@code keep}. */
    static List<SweptAttempt> sweepOrphans(CheckpointCatalog catalog, Scan scan, Instant cutoff, boolean dryRun, Set<String> keep)
            throws IOException {
        Set<String> referenced = scan.referenced();
        List<SweptAttempt> swept = new ArrayList<>();
        for (String saveId : catalog.attemptIds()) {
            if (keep.contains(saveId) || referenced.contains(saveId) || scan.corruptSteps().contains(Layout.stepOfSaveId(saveId))) {
                continue;
            }
            List<ObjectInfo> objects = new ArrayList<>(catalog.attemptObjects(saveId));
            objects.addAll(catalog.abandonedWrites(saveId)); // partial objects of writers killed mid-write
            if (objects.stream().anyMatch(o -> o.lastModified().isAfter(cutoff))) {
                continue;
            }
            if (!dryRun) {
                catalog.deleteAttempt(saveId);
            }
            swept.add(new SweptAttempt(saveId, objects.size()));
        }
        return swept;
    }

    /** Deletes one checkpoint: its manifest first (from then on it does not exist), then its attempt's objects. */
    static void deleteCheckpoint(CheckpointCatalog catalog, RetentionPolicy.Kept k) throws IOException {
        catalog.store().delete(Layout.manifestKey(k.step()));
        catalog.deleteAttempt(k.saveId());
    }

    /**
     * Runs one collection.
     *
     * @param cutoff attempts whose newest object is younger than this are left alone (a save in flight)
     * @param warn   called with a one-line message for every manifest that does not validate
     */
    public static Report run(CheckpointCatalog catalog, RetentionPolicy policy, Instant cutoff, boolean dryRun,
                             Consumer<String> warn) throws IOException {
        Scan scan = scan(catalog, warn);
        Set<Long> delete = policy.toDelete(scan.kept());
        List<Manifest> deleted = new ArrayList<>();
        for (Manifest m : scan.valid()) {
            if (delete.contains(m.step())) {
                if (!dryRun) {
                    deleteCheckpoint(catalog, kept(m));
                }
                deleted.add(m);
            }
        }
        List<SweptAttempt> swept = sweepOrphans(catalog, scan, cutoff, dryRun);
        // temp files of manifest / LATEST writes whose coordinator was killed mid-write
        int leftovers = dryRun ? 0 : catalog.sweepAbandonedCommitWrites(cutoff);
        return new Report(List.copyOf(deleted), List.copyOf(swept), leftovers, scan.valid().size() - deleted.size());
    }
}
