package dev.cairn.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.NoSuchObjectException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "list", description = "List the committed checkpoints of a run, oldest first. "
        + "A manifest that does not validate is reported on stderr and left out.")
final class ListCommand implements Callable<Integer> {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Mixin
    StorageOption storage;

    @Option(names = "--json", description = "Print a JSON array, one object per checkpoint.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            List<Manifest> manifests = new ArrayList<>();
            for (long step : catalog.steps()) {
                try {
                    manifests.add(catalog.read(step));
                } catch (ManifestException e) {
                    System.err.println("cairn: warning: " + e.getMessage());
                } catch (NoSuchObjectException e) {
                    // deleted by retention while listing
                }
            }
            if (json) {
                ArrayNode array = JSON.createArrayNode();
                manifests.forEach(m -> array.add(summary(m)));
                System.out.println(JSON.writeValueAsString(array));
            } else if (manifests.isEmpty()) {
                System.out.println("no checkpoints in " + store.uri());
            } else {
                System.out.printf("%12s  %-20s  %6s  %12s  %s%n", "STEP", "SAVE ID", "SHARDS", "BYTES", "CREATED");
                for (Manifest m : manifests) {
                    System.out.printf("%12d  %-20s  %6d  %12d  %s%n", m.step(), m.saveId(), m.shards().size(), m.totalBytes(), m.createdAt());
                }
            }
            return 0;
        }
    }

    static ObjectNode summary(Manifest m) {
        ObjectNode n = JSON.createObjectNode();
        n.put("step", m.step());
        n.put("saveId", m.saveId());
        n.put("shards", m.shards().size());
        n.put("bytes", m.totalBytes());
        n.put("entries", m.entries().size());
        n.put("worldSize", m.worldSize());
        n.put("createdAt", m.createdAt().toString());
        n.put("runId", m.runId());
        n.set("metadata", JSON.valueToTree(m.metadata()));
        return n;
    }
}
