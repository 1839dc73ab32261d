package dev.cairn.cli;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import picocli.CommandLine.Option;

/** {@code --storage URI} and {@code --step N}, shared by the operator commands. */
final class StorageOption {
    @Option(names = "--storage", required = true, paramLabel = "URI",
            description = "Checkpoint root: file:///path, hdfs://host:port/path or s3://bucket/prefix")
    String storage;

    /** Opens an existing store (a missing root is an error). */
    CheckpointStore open() throws IOException {
        return CheckpointStores.open(StorageUri.parse(storage), false);
    }

    /**
     * The checkpoint at {@code step}, or when {@code step} is null the newest whose manifest
     * validates: each newer one skipped is named on stderr, one line each.
     */
    static Manifest select(CheckpointCatalog catalog, Long step) throws IOException {
        if (step == null) {
            return catalog.latest(e -> System.err.println("cairn: warning: skipped a newer checkpoint: " + e.getMessage()))
                    .orElseThrow(() -> new UserError("no checkpoint in " + catalog.store().uri()));
        }
        if (step < 0) {
            throw new UserError("--step must not be negative, was " + step);
        }
        try {
            return catalog.read(step);
        } catch (NoSuchObjectException e) {
            throw new UserError("no checkpoint at step " + step + " in " + catalog.store().uri());
        }
    }
}
