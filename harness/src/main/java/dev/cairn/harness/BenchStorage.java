package dev.cairn.harness;

import dev.cairn.storage.StorageUri;
import dev.cairn.testkit.EmbeddedStorage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where {@code cairn bench} writes: the root given by {@code --storage}, or a fresh temp directory
 * (for file) or an embedded MiniDFSCluster or S3Proxy in this JVM (for hdfs and s3), and the
 * removal of it all at the end.
 */
final class BenchStorage implements AutoCloseable {
    private final String backend;
    private final boolean keep;
    /** The temp directory this run made when no --storage was given; removed at the end. */
    private Path createdBase;
    /** The embedded server of --backend hdfs|s3 without --storage; stopped at the end. */
    private EmbeddedStorage embedded;
    private StorageUri root;

    BenchStorage(String backend, boolean keep) {
        this.backend = backend;
        this.keep = keep;
    }

    /** Opens the base (starting an embedded server if needed) and returns this run's {@code bench-<time>} root below it. */
    StorageUri open(String storage) throws IOException {
        root = child(baseUri(storage), "bench-" + System.currentTimeMillis());
        return root;
    }

    private StorageUri baseUri(String storage) throws IOException {
        if (storage == null) {
            createdBase = Files.createTempDirectory("cairn-bench-");
            if (!backend.equals("file")) {
                // the same servers as cairn demo --backend hdfs|s3, in this JVM, stopped at the end
                long t0 = System.nanoTime();
                embedded = EmbeddedStorage.start(backend, createdBase);
                BenchReport.progress("started %s in %.1f s", embedded.describe(), (System.nanoTime() - t0) / 1e9);
                return StorageUri.parse(embedded.uri("bench"));
            }
            return StorageUri.parse(createdBase.toString());
        }
        StorageUri uri = StorageUri.parse(storage);
        if (!uri.scheme().equals(backend)) {
            throw new IllegalArgumentException("--storage " + storage + " is not a " + backend + " URI (--backend " + backend + ")");
        }
        return uri;
    }

    /** The embedded server's description, or null when the bench runs on a given or local root. */
    String embeddedServer() {
        return embedded == null ? null : embedded.describe();
    }

    /** The URI of {@code name} below {@code parent}, with the parent's options. */
    static StorageUri child(StorageUri parent, String name) {
        String path = parent.path().isEmpty() ? name : parent.path().endsWith("/") ? parent.path() + name : parent.path() + "/" + name;
        return new StorageUri(parent.scheme(), parent.authority(), path, parent.options());
    }

    /** Removes the run's files unless {@code --keep}, and stops the embedded server. */
    @Override
    public void close() throws IOException {
        if (root == null) {
            return;
        }
        if (!keep && embedded == null) {
            deleteQuietly(root);
            if (createdBase != null) {
                Files.deleteIfExists(createdBase);
            }
        }
        if (embedded != null) {
            embedded.close(); // its data lives in createdBase
            if (!keep) {
                deleteQuietly(StorageUri.parse(createdBase.toString()));
            } else {
                BenchReport.progress("the embedded server's files are kept in %s", createdBase);
            }
        }
    }

    private static void deleteQuietly(StorageUri root) {
        try {
            StorageCleanup.deleteAll(root);
        } catch (IOException | RuntimeException e) {
            System.err.println("cairn bench: could not remove " + root + ": " + e);
        }
    }
}
