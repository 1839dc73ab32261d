package dev.cairn.storage.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Manifest;
import java.util.List;

/** Which part of a checkpoint a {@link DirectoryRestore} writes. */
public sealed interface RestoreSelection {
    /** Every entry: each worker's own ones and the replicated ones. */
    static RestoreSelection all() {
        return new All();
    }

    /** What saved worker {@code worker} restores: its own entries and the replicated ones. */
    static RestoreSelection worker(int worker) {
        return new Worker(worker);
    }

    List<RestoreFile> files(CheckpointCatalog catalog, Manifest m);

    ObjectNode toJson(ObjectMapper json);

    /** Every entry. */
    record All() implements RestoreSelection {
        @Override
        public List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) {
            return DirectoryRestore.wholeEntries(catalog, m, m.logicalEntries());
        }

        @Override
        public ObjectNode toJson(ObjectMapper json) {
            return json.createObjectNode();
        }
    }

    /** One saved worker's view. */
    record Worker(int worker) implements RestoreSelection {
        @Override
        public List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) {
            if (worker < 0 || worker >= m.worldSize()) {
                throw new IllegalArgumentException("--worker " + worker + " is outside the checkpoint's world size " + m.worldSize());
            }
            return DirectoryRestore.wholeEntries(catalog, m, m.entriesFor(worker));
        }

        @Override
        public ObjectNode toJson(ObjectMapper json) {
            return json.createObjectNode().put("worker", worker);
        }
    }
}
