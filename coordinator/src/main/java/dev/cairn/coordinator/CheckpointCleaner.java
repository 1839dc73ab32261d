package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectInfo;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Garbage collection of a run's storage root with no coordinator running ({@code cairn gc}, chaos
 * campaigns): applies a retention policy to the checkpoints whose manifests validate and sweeps
 * attempts that no manifest references. A manifest that does not validate is never deleted, and
 * neither are the attempts at its step: an operator decides about those.
 */
public final class CheckpointCleaner {
    /** One orphaned attempt: its save id and how many objects it held. */
    public record SweptAttempt(String saveId, int objects) {}

    /** What a run deleted (or, with {@code dryRun}, would delete). */
    public record Report(List<Manifest> deletedCheckpoints, List<SweptAttempt> sweptAttempts,
                         int abandonedCommitWrites, int keptCheckpoints) {}

    private CheckpointCleaner() {}

    /**
     * Runs one collection.
     *
     * @param cutoff attempts whose newest object is younger than this are left alone (a save in flight)
     * @param warn   called with a one-line message for every manifest that does not validate
     */
    public static Report run(CheckpointCatalog catalog, RetentionPolicy policy, Instant cutoff, boolean dryRun,
                             Consumer<String> warn) throws IOException {
        List<RetentionPolicy.Kept> kept = new ArrayList<>();
        List<Manifest> manifests = new ArrayList<>();
        Set<String> referenced = new HashSet<>();
        Set<Long> corrupt = new HashSet<>();
        for (long step : catalog.steps()) {
            try {
                Manifest m = catalog.read(step);
                manifests.add(m);
                referenced.add(m.saveId());
                kept.add(new RetentionPolicy.Kept(step, m.saveId(), m.createdAt(), m.metadata()));
            } catch (ManifestException e) {
                corrupt.add(step);
                warn.accept(e.getMessage() + " (left alone)");
            }
        }
        Set<Long> delete = policy.toDelete(kept);
        List<Manifest> deleted = new ArrayList<>();
        for (Manifest m : manifests) {
            if (delete.contains(m.step())) {
                if (!dryRun) {
                    catalog.delete(m);
                }
                deleted.add(m);
            }
        }
        List<SweptAttempt> swept = new ArrayList<>();
        for (String saveId : catalog.attemptIds()) {
            if (referenced.contains(saveId) || corrupt.contains(Layout.stepOfSaveId(saveId))) {
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
        // temp files of manifest / LATEST writes whose coordinator was killed mid-write
        int leftovers = dryRun ? 0 : catalog.sweepAbandonedCommitWrites(cutoff);
        return new Report(List.copyOf(deleted), List.copyOf(swept), leftovers, manifests.size() - deleted.size());
    }
}
