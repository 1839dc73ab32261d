package dev.cairn.cli;

import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectInfo;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "gc", description = "Apply retention to a run's checkpoints and sweep orphaned save attempts "
        + "(objects no manifest references). Manifests that do not validate are left alone, and so are attempts at their step.")
final class GcCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Mixin
    RetentionOptions retention;

    @Option(names = "--min-age-minutes", paramLabel = "M", defaultValue = "60",
            description = "Only sweep orphaned attempts whose newest object is older than M minutes, "
                    + "so a save in flight of a running job is never touched (default ${DEFAULT-VALUE}; 0 when no job runs).")
    long minAgeMinutes;

    @Option(names = "--dry-run", description = "Print what would be deleted; delete nothing.")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        if (minAgeMinutes < 0) {
            throw new UserError("--min-age-minutes must not be negative, was " + minAgeMinutes);
        }
        RetentionPolicy policy = retention.policy();
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
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
                    System.err.println("cairn: warning: " + e.getMessage() + " (left alone)");
                }
            }
            Set<Long> delete = policy.toDelete(kept);
            String verb = dryRun ? "would delete" : "deleted";
            int checkpoints = 0;
            for (Manifest m : manifests) {
                if (delete.contains(m.step())) {
                    if (!dryRun) {
                        catalog.delete(m);
                    }
                    checkpoints++;
                    System.out.printf("%s checkpoint step %d (save %s)%n", verb, m.step(), m.saveId());
                }
            }
            Instant cutoff = Instant.now().minus(Duration.ofMinutes(minAgeMinutes));
            int attempts = 0;
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
                attempts++;
                System.out.printf("%s orphaned attempt %s (%d objects)%n", verb, saveId, objects.size());
            }
            // temp files of manifest / LATEST writes whose coordinator was killed mid-write
            int leftovers = dryRun ? 0 : catalog.sweepAbandonedCommitWrites(cutoff);
            System.out.printf("gc of %s: %s %d checkpoint(s), %d orphaned attempt(s) and %d abandoned commit write(s); %d checkpoint(s) kept%n",
                    store.uri(), verb, checkpoints, attempts, leftovers, manifests.size() - checkpoints);
            return 0;
        }
    }
}
