package dev.cairn.storage;

import java.io.IOException;
import java.util.ServiceLoader;

/** Opens a {@link CheckpointStore} for a storage URI, choosing the backend by scheme. */
public final class CheckpointStores {
    private CheckpointStores() {}

    /** Opens an existing store; a missing root is a {@link StorageUnavailableException}. */
    public static CheckpointStore open(String uri) throws IOException {
        return open(StorageUri.parse(uri), false);
    }

    /**
     * Opens the store at {@code uri}.
     *
     * @param create create a missing root directory (file, hdfs); buckets are never created
     */
    public static CheckpointStore open(StorageUri uri, boolean create) throws IOException {
        for (CheckpointStoreProvider provider : ServiceLoader.load(CheckpointStoreProvider.class, CheckpointStores.class.getClassLoader())) {
            if (provider.scheme().equals(uri.scheme())) {
                return provider.open(uri, create);
            }
        }
        String module = switch (uri.scheme()) {
            case "hdfs" -> "dev.cairn:cairn-storage-hdfs";
            case "s3" -> "dev.cairn:cairn-storage-s3";
            default -> null;
        };
        throw new InvalidStorageUriException(module == null
                ? "no storage backend for scheme '" + uri.scheme() + "' in '" + uri + "' is on the class path"
                : "the " + uri.scheme() + " backend for '" + uri + "' is not on the class path: add the module " + module);
    }
}
