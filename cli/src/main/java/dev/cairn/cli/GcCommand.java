package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.coordinator.CheckpointCleaner;
import dev.cairn.coordinator.CoordinatorLease;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
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

    @Option(names = "--json", description = "Print one JSON object: what was (or would be) deleted and what was kept.")
    boolean json;

    @Option(names = "--force", description = "Run even while a coordinator holds the storage root's lease (its save in flight may be swept).")
    boolean force;

    @Override
    public Integer call() throws Exception {
        if (minAgeMinutes < 0) {
            throw new UserError("--min-age-minutes must not be negative, was " + minAgeMinutes);
        }
        RetentionPolicy policy = retention.policy();
        try (CheckpointStore store = storage.open()) {
            Optional<CoordinatorLease.Holder> holder = CoordinatorLease.current(store);
            if (holder.isPresent() && holder.get().liveAt(Instant.now())) {
                if (!force) {
                    throw new UserError("storage root " + store.uri() + " is held by the " + holder.get().describe() + " until "
                            + holder.get().expiresAt() + "; gc runs while no coordinator runs (or pass --force)");
                }
                System.err.println("cairn: warning: --force: collecting while the " + holder.get().describe() + " holds the root");
            }
            Instant cutoff = Instant.now().minus(Duration.ofMinutes(minAgeMinutes));
            CheckpointCleaner.Report report = CheckpointCleaner.run(new CheckpointCatalog(store), policy, cutoff, dryRun,
                    warning -> System.err.println("cairn: warning: " + warning));
            if (json) {
                JsonOutput.print(toJson(store.uri().toString(), report));
                return 0;
            }
            String verb = dryRun ? "would delete" : "deleted";
            for (Manifest m : report.deletedCheckpoints()) {
                System.out.printf("%s checkpoint step %d (save %s)%n", verb, m.step(), m.saveId());
            }
            for (CheckpointCleaner.SweptAttempt a : report.sweptAttempts()) {
                System.out.printf("%s orphaned attempt %s (%d objects)%n", verb, a.saveId(), a.objects());
            }
            System.out.printf("gc of %s: %s %d checkpoint(s), %d orphaned attempt(s) and %d abandoned commit write(s); %d checkpoint(s) kept%n",
                    store.uri(), verb, report.deletedCheckpoints().size(), report.sweptAttempts().size(),
                    report.abandonedCommitWrites(), report.keptCheckpoints());
            return 0;
        }
    }

    private ObjectNode toJson(String uri, CheckpointCleaner.Report report) {
        ObjectNode n = JsonOutput.object();
        n.put("storage", uri);
        n.put("dryRun", dryRun);
        ArrayNode deleted = n.putArray("deletedCheckpoints");
        for (Manifest m : report.deletedCheckpoints()) {
            deleted.addObject().put("step", m.step()).put("saveId", m.saveId()).put("bytes", m.totalBytes());
        }
        ArrayNode swept = n.putArray("sweptAttempts");
        for (CheckpointCleaner.SweptAttempt a : report.sweptAttempts()) {
            swept.addObject().put("saveId", a.saveId()).put("objects", a.objects());
        }
        n.put("abandonedCommitWrites", report.abandonedCommitWrites());
        n.put("keptCheckpoints", report.keptCheckpoints());
        return n;
    }
}
