package dev.cairn.harness;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Removal of what a harness run wrote: a local directory tree, or everything under a storage root. */
final class StorageCleanup {
    private StorageCleanup() {}

    /** Deletes {@code dir} and everything below it; nothing if it does not exist. */
    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Deletes every object under {@code root}: for a local root its whole directory, elsewhere every listed object. */
    static void deleteAll(StorageUri root) throws IOException {
        if (root.scheme().equals("file")) {
            deleteTree(Path.of(root.path()));
            return;
        }
        try (CheckpointStore store = CheckpointStores.open(root, true)) {
            store.deleteAll(store.list("").stream().map(ObjectInfo::key).toList());
        }
    }
}
