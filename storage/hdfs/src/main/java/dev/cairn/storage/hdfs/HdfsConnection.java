package dev.cairn.storage.hdfs;

import dev.cairn.storage.Keys;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.DistributedFileSystem;

/**
 * One store's HDFS client: its configuration (fail-fast and commit-latency defaults), the root
 * directory, the key-to-path mapping and the open/closed state. Shared by the store's writer,
 * committer and namespace.
 */
final class HdfsConnection {
    /** Fail fast on an unreachable NameNode; applied only where no site file sets the key. */
    private static final Map<String, String> FAST_FAIL_DEFAULTS = Map.of(
            "ipc.client.connect.max.retries", "3",
            "ipc.client.connect.retry.interval", "500",
            "ipc.client.connect.timeout", "5000",
            "ipc.client.connect.max.retries.on.timeouts", "2",
            "dfs.client.retry.policy.enabled", "false");

    /**
     * Closing a file asks the NameNode to complete it; until a DataNode has reported the last block
     * the answer is "not yet" and the client sleeps, by default 400 ms first (then doubling, 5
     * tries, 12.4 s in all). A manifest or a hint is a one-block file closed right after its hsync,
     * so that first sleep was the p90 of every commit (createIfAbsent on the embedded cluster: p50
     * 24-33 ms, p90 420-437 ms, p99 438-457 ms; with these values p90 44-47 ms, p99 56-60 ms). A
     * 20 ms first sleep and 10 tries wait up to 20.5 s in all, longer than the default. Applied only
     * where no site file sets the key.
     */
    private static final Map<String, String> COMPLETE_BACKOFF_DEFAULTS = Map.of(
            "dfs.client.block.write.locateFollowingBlock.initial.delay.ms", "20",
            "dfs.client.block.write.locateFollowingBlock.retries", "10");

    private static final int PROBE_RPC_TIMEOUT_MS = 5_000;

    private final StorageUri uri;
    private final FileSystem fs;
    private final String rootPath;
    private final URI fsUri;
    private volatile boolean closed;

    private HdfsConnection(StorageUri uri, FileSystem fs) {
        this.uri = uri;
        this.fs = fs;
        this.rootPath = uri.path().equals("/") ? "" : uri.path();
        this.fsUri = fs.getUri();
    }

    static HdfsConnection open(StorageUri uri, boolean create, String hadoopConfDir) throws IOException {
        Configuration conf = configuration(uri, hadoopConfDir);
        URI fsUri = URI.create("hdfs://" + uri.authority());
        probe(uri, fsUri, conf);
        FileSystem fs;
        try {
            fs = FileSystem.newInstance(fsUri, conf);
        } catch (IOException | RuntimeException e) {
            throw new StorageUnavailableException("cannot open HDFS client for " + uri + ": " + e, e);
        }
        HdfsConnection store = new HdfsConnection(uri, fs);
        try {
            store.checkRoot(create);
            return store;
        } catch (IOException | RuntimeException e) {
            try {
                fs.close();
            } catch (IOException closeFailure) {
                e.addSuppressed(closeFailure);
            }
            throw e;
        }
    }

    /**
     * Asks the NameNode for the root's status with a short RPC deadline, so that an address where
     * nothing (or something other than a NameNode) answers fails in seconds. The store's own client
     * keeps the configured timeouts, which must tolerate a NameNode that is busy for a while.
     */
    private static void probe(StorageUri uri, URI fsUri, Configuration conf) throws IOException {
        Configuration probeConf = new Configuration(conf);
        probeConf.setInt("ipc.client.rpc-timeout.ms", PROBE_RPC_TIMEOUT_MS);
        probeConf.setInt("ipc.client.connect.max.retries.on.timeouts", 1);
        try (FileSystem probe = FileSystem.newInstance(fsUri, probeConf)) {
            probe.getFileStatus(new Path(fsUri.getScheme(), fsUri.getAuthority(), uri.path()));
        } catch (FileNotFoundException | org.apache.hadoop.security.AccessControlException e) {
            // the NameNode answered; the root itself is checked next
        } catch (IOException | RuntimeException e) {
            throw new StorageUnavailableException("NameNode of " + uri + " does not answer: " + e, e);
        }
    }

    static Configuration configuration(StorageUri uri, String hadoopConfDir) {
        Configuration conf = new Configuration();
        if (hadoopConfDir != null && !hadoopConfDir.isBlank()) {
            for (String site : List.of("core-site.xml", "hdfs-site.xml")) {
                java.nio.file.Path file = java.nio.file.Path.of(hadoopConfDir, site);
                if (Files.isRegularFile(file)) {
                    conf.addResource(new Path(file.toUri()));
                }
            }
        }
        FAST_FAIL_DEFAULTS.forEach((key, value) -> {
            String[] sources = conf.getPropertySources(key);
            boolean onlyDefault = sources == null || (sources.length == 1 && sources[0].endsWith("-default.xml"));
            if (onlyDefault) {
                conf.set(key, value, "cairn fail-fast default");
            }
        });
        COMPLETE_BACKOFF_DEFAULTS.forEach((key, value) -> {
            String[] sources = conf.getPropertySources(key);
            boolean onlyDefault = sources == null || (sources.length == 1 && sources[0].endsWith("-default.xml"));
            if (onlyDefault) {
                conf.set(key, value, "cairn commit-latency default");
            }
        });
        uri.options().forEach((key, value) -> conf.set(key, value, "storage URI " + uri));
        // our own client instance: closing it must not close a cached one someone else shares
        conf.setBoolean("fs.hdfs.impl.disable.cache", true);
        return conf;
    }

    private void checkRoot(boolean create) throws IOException {
        Path root = rootDir();
        try {
            if (create) {
                fs.mkdirs(root);
            }
            FileStatus status = fs.getFileStatus(root);
            if (!status.isDirectory()) {
                throw new StorageUnavailableException("storage root is not a directory: " + uri);
            }
            fs.listStatusIterator(root).hasNext(); // read permission
        } catch (FileNotFoundException e) {
            throw new StorageUnavailableException("storage root does not exist: " + uri, e);
        } catch (StorageUnavailableException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new StorageUnavailableException("cannot use storage root " + uri + ": " + e, e);
        }
    }

    StorageUri uri() {
        return uri;
    }

    FileSystem fs() {
        return fs;
    }

    Path rootDir() {
        return new Path(fsUri.getScheme(), fsUri.getAuthority(), rootPath.isEmpty() ? "/" : rootPath);
    }

    /** The path of a key; the three-argument constructor does not parse ':' or '#' out of the key. */
    Path pathOf(String key) {
        Keys.check(key);
        if (key.indexOf(':') >= 0) {
            throw new IllegalArgumentException("HDFS does not allow ':' in names: '" + key + "' in " + uri);
        }
        return new Path(fsUri.getScheme(), fsUri.getAuthority(), rootPath + "/" + key);
    }

    void checkOpen() throws IOException {
        if (closed) {
            throw new StorageException("store " + uri + " is closed");
        }
    }

    DistributedFileSystem dfs() throws IOException {
        if (fs instanceof DistributedFileSystem dfs) {
            return dfs;
        }
        throw new StorageException("the client of " + uri + " is not an HDFS client (" + fs.getClass().getName()
                + "); rename with no-replace semantics is not available");
    }

    StorageException failure(String what, String key, IOException e) {
        return new StorageException(what + " " + uri.resolve(key) + " failed: " + e, e);
    }

    /** Closes the client. Idempotent. */
    void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        fs.close();
    }
}
