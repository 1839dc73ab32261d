package dev.cairn.storage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens {@code file:} stores. */
public final class LocalStoreProvider implements CheckpointStoreProvider {

    @Override
    public String scheme() {
        return "file";
    }

    @Override
    public CheckpointStore open(StorageUri uri, boolean create) throws IOException {
        Path root = Path.of(uri.path());
        if (!Files.exists(root)) {
            if (!create) {
                throw new StorageUnavailableException("storage root does not exist: " + uri);
            }
            try {
                Files.createDirectories(root);
            } catch (IOException e) {
                throw new StorageUnavailableException("cannot create storage root " + uri + ": " + e, e);
            }
        }
        if (!Files.isDirectory(root)) {
            throw new StorageUnavailableException("storage root is not a directory: " + uri);
        }
        if (!Files.isReadable(root) || !Files.isExecutable(root)) {
            throw new StorageUnavailableException("storage root is not readable: " + uri);
        }
        if (create && !Files.isWritable(root)) {
            throw new StorageUnavailableException("storage root is not writable: " + uri);
        }
        return new LocalCheckpointStore(uri, root);
    }
}
