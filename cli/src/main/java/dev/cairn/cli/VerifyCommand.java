package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify", description = "Read every object of a checkpoint and check every checksum. "
        + "Exit 0 when all match, 1 naming each bad or missing object, 2 for bad usage or input (also a corrupt manifest).")
final class VerifyCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--json", description = "Print one JSON object: {storage, step, saveId, ok, objects, entries, bytes, problems}.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.")
    boolean quiet;

    @Override
    public Integer call() throws Exception {
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            long objects = m.shards().stream().filter(s -> s.objectKey() != null).count();
            List<String> problems;
            try (Progress progress = Progress.start("verify step " + m.step(), m.totalBytes(), quiet)) {
                problems = catalog.verify(m, progress::add);
            }
            if (json) {
                ObjectNode n = JsonOutput.object();
                n.put("storage", store.uri().toString()).put("step", m.step()).put("saveId", m.saveId()).put("ok", problems.isEmpty())
                        .put("objects", objects).put("entries", m.entries().size()).put("bytes", m.totalBytes());
                ArrayNode list = n.putArray("problems");
                problems.forEach(list::add);
                JsonOutput.print(n);
                return problems.isEmpty() ? 0 : Main.EXIT_CHECK_FAILED;
            }
            if (problems.isEmpty()) {
                System.out.printf("ok: step %d (save %s): %d objects, %d entries, %d bytes verified in %s%n", m.step(), m.saveId(),
                        objects, m.entries().size(), m.totalBytes(), store.uri());
                return 0;
            }
            for (String p : problems) {
                System.out.println("bad: " + p);
            }
            System.out.printf("step %d (save %s) in %s: %d problem(s)%n", m.step(), m.saveId(), store.uri(), problems.size());
            return Main.EXIT_CHECK_FAILED;
        }
    }
}
