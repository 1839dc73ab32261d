package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.export.DirectoryRestore;
import dev.cairn.storage.export.RestoreSelection;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "restore", description = "Write a checkpoint's entries as files under DIR: worker-<i>/<name> for each "
        + "worker's own entries, replicated/<name> for replicated ones, plus manifest.json and index.json. Every entry's checksum "
        + "is checked. Files are written to a hidden directory beside DIR and renamed to DIR at the end: an interrupted restore "
        + "leaves nothing at DIR, and a rerun removes what it left.")
final class RestoreCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--to", required = true, paramLabel = "DIR", description = "Directory to write to; must be empty or absent.")
    Path to;

    @Option(names = "--worker", paramLabel = "I", description = "Restore only what worker I needs (its entries and the replicated ones).")
    Integer worker;

    @Option(names = "--world", paramLabel = "M", description = "With --rank: restore what rank R of a new world of M workers needs: "
            + "rank-<R>/<name>, its rows of every sharded tensor (NumPy array_split along dimension 0), the replicated entries, "
            + "and the own entries of saved worker R (if any).")
    Integer world;

    @Option(names = "--rank", paramLabel = "R", description = "The rank of --world M to restore for (0 to M-1).")
    Integer rank;

    @Option(names = "--json", description = "Print one JSON object: {storage, step, saveId, to, worker, world, rank, entries, bytes}.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.")
    boolean quiet;

    private RestoreSelection selection() {
        if ((world == null) != (rank == null)) {
            throw new UserError("--world and --rank go together");
        }
        if (world != null && worker != null) {
            throw new UserError("--worker restores a saved worker's entries, --world/--rank a rank of a new world: give one of them");
        }
        return world != null ? RestoreSelection.rank(rank, world) : worker != null ? RestoreSelection.worker(worker) : RestoreSelection.all();
    }

    @Override
    public Integer call() throws Exception {
        RestoreSelection selection = selection(); // bad options are refused before storage is opened
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            DirectoryRestore restore = DirectoryRestore.plan(catalog, m, selection);
            Path dir;
            try (Progress progress = Progress.start("restore step " + m.step(), restore.bytes(), quiet)) {
                dir = restore.writeTo(to, progress::add, p -> System.err.println("cairn: removing " + p + ", left by an interrupted restore"));
            }
            if (json) {
                ObjectNode n = JsonOutput.object().put("storage", store.uri().toString()).put("step", m.step())
                        .put("saveId", m.saveId()).put("to", dir.toString());
                n.set("worker", worker == null ? n.nullNode() : n.numberNode(worker));
                n.set("world", world == null ? n.nullNode() : n.numberNode(world));
                n.set("rank", rank == null ? n.nullNode() : n.numberNode(rank));
                JsonOutput.print(n.put("entries", restore.entryFiles()).put("bytes", restore.bytes()));
            } else {
                System.out.printf("restored step %d (save %s): %d entries, %d bytes to %s%n", m.step(), m.saveId(),
                        restore.entryFiles(), restore.bytes(), dir);
            }
            return 0;
        }
    }
}
