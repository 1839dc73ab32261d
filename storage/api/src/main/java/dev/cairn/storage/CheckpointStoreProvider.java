package dev.cairn.storage;

import java.io.IOException;

/**
 * Opens stores for one URI scheme. Implementations are found with {@link java.util.ServiceLoader}
 * ({@code META-INF/services/dev.cairn.storage.CheckpointStoreProvider}).
 */
public interface CheckpointStoreProvider {

    /** The URI scheme this provider serves: {@code file}, {@code hdfs}, {@code s3}. */
    String scheme();

    /**
     * Opens a store at {@code uri}.
     *
     * @param create when true a missing root is created (where the backend has directories);
     *     when false a missing root is a {@link StorageUnavailableException}
     * @throws StorageUnavailableException when the root is missing, unreadable or unreachable
     */
    CheckpointStore open(StorageUri uri, boolean create) throws IOException;
}
