package dev.cairn.storage.s3;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreProvider;
import dev.cairn.storage.StorageUri;
import java.io.IOException;

/**
 * Opens {@code s3://bucket/prefix} stores. The bucket must exist: it is never created, whatever
 * {@code create} says (a prefix needs no creating). See {@link S3Options} for the URI options
 * ({@code endpoint}, {@code region}, {@code pathStyle}, {@code accessKey}/{@code secretKey},
 * {@code partSize}, {@code uploadParallelism}, {@code conditionalWrites}, ...).
 */
public final class S3StoreProvider implements CheckpointStoreProvider {

    @Override
    public String scheme() {
        return "s3";
    }

    @Override
    public CheckpointStore open(StorageUri uri, boolean create) throws IOException {
        return S3CheckpointStore.open(uri);
    }
}
