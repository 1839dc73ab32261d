package dev.cairn.storage.hdfs;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Keys;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.RangeInputStream;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.ParentNotDirectoryException;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.fs.PathIsNotEmptyDirectoryException;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A store on HDFS, through the shaded Hadoop client.
 *
 * <p>Objects are files below the root directory; a key's '/' separated segments are directories.
 * HDFS does not allow ':' in a name, so keys containing ':' are rejected. Directories are never
 * removed (empty directories are invisible to {@link #list}).
 *
 * <ul>
 *   <li>{@link #create}: writes a hidden temp file ({@code .name.RANDOM.tmp}) beside the key;
 *       it is created with {@code SYNC_BLOCK}, so DataNodes fsync every block as they close it;
 *       {@code commit()} hsyncs (the last block) and closes it, then renames it over the key with
 *       {@code Rename.OVERWRITE} (one atomic NameNode operation). {@code close()} without commit
 *       deletes the temp file. A crashed writer leaves its temp file behind, never a partial object.
 *   <li>{@link #createIfAbsent}: writes, hsyncs and closes a temp file, then renames it with
 *       {@code Rename.NONE}, which fails atomically if the key exists: the commit point. If the
 *       rename call itself fails, the temp file tells whether it happened (it is gone only if it
 *       was renamed); when even that cannot be checked, {@link CommitStateUnknownException}.
 *   <li>{@link #read}: missing key (or a directory) is {@link NoSuchObjectException} at open; a
 *       range past the end is {@link EOFException} when read.
 *   <li>{@link #stat}: missing key or directory is empty.
 *   <li>{@link #list}: a recursive walk of the directory that holds the prefix, without temp files;
 *       not a snapshot (objects created or deleted during the walk may or may not be seen).
 *       {@link #listAfter} starts each directory's listing at the cursor on the NameNode.
 *   <li>{@link #delete}: a missing key is not an error; one NameNode operation per key.
 * </ul>
 *
 * <p>Unless {@code HADOOP_CONF_DIR} or the URI options say otherwise, the IPC client gives up on a
 * NameNode that does not answer after a few seconds (instead of Hadoop's default of minutes), so a
 * wrong address fails {@link HdfsStoreProvider#open} quickly with {@link StorageUnavailableException}.
 */
final class HdfsCheckpointStore implements CheckpointStore, dev.cairn.storage.SupportsAbandonedWrites {
    private static final Logger LOG = LoggerFactory.getLogger(HdfsCheckpointStore.class);
    private static final String TMP_SUFFIX = ".tmp";

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

    private HdfsCheckpointStore(StorageUri uri, FileSystem fs) {
        this.uri = uri;
        this.fs = fs;
        this.rootPath = uri.path().equals("/") ? "" : uri.path();
        this.fsUri = fs.getUri();
    }

    static HdfsCheckpointStore open(StorageUri uri, boolean create, String hadoopConfDir) throws IOException {
        Configuration conf = configuration(uri, hadoopConfDir);
        URI fsUri = URI.create("hdfs://" + uri.authority());
        probe(uri, fsUri, conf);
        FileSystem fs;
        try {
            fs = FileSystem.newInstance(fsUri, conf);
        } catch (IOException | RuntimeException e) {
            throw new StorageUnavailableException("cannot open HDFS client for " + uri + ": " + e, e);
        }
        HdfsCheckpointStore store = new HdfsCheckpointStore(uri, fs);
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

    @Override
    public StorageUri uri() {
        return uri;
    }

    private Path rootDir() {
        return new Path(fsUri.getScheme(), fsUri.getAuthority(), rootPath.isEmpty() ? "/" : rootPath);
    }

    /** The path of a key; the three-argument constructor does not parse ':' or '#' out of the key. */
    private Path pathOf(String key) {
        Keys.check(key);
        if (key.indexOf(':') >= 0) {
            throw new IllegalArgumentException("HDFS does not allow ':' in names: '" + key + "' in " + uri);
        }
        return new Path(fsUri.getScheme(), fsUri.getAuthority(), rootPath + "/" + key);
    }

    private static Path tempBeside(Path target) {
        String name = "." + target.getName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + TMP_SUFFIX;
        return new Path(target.getParent(), name);
    }

    private static boolean isTemp(String name) {
        return name.startsWith(".") && name.endsWith(TMP_SUFFIX);
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new StorageException("store " + uri + " is closed");
        }
    }

    // ------------------------------------------------------------------ writes

    /**
     * Opens a streaming write to a temp file beside the key. Nothing is visible at the key until
     * {@code commit()}, which atomically replaces any object there; {@code close()} without commit
     * deletes the temp file. Memory is bounded by the DFS client's packet queue.
     */
    @Override
    public ObjectWriter create(String key) throws IOException {
        Path target = pathOf(key);
        checkOpen();
        Path temp = tempBeside(target);
        FSDataOutputStream out;
        try {
            // SYNC_BLOCK: each DataNode fsyncs every block as it closes it. hsync() at commit only syncs
            // the last block; without this flag the others of a multi-block shard sat in the DataNodes'
            // page cache after the commit (lost if every replica's node lost power), and the next fsync
            // on those disks - the manifest's - paid for flushing all of them (1.7-2.1 s after 1 GiB).
            out = fs.create(temp, FsPermission.getFileDefault().applyUMask(FsPermission.getUMask(fs.getConf())),
                    EnumSet.of(CreateFlag.CREATE, CreateFlag.SYNC_BLOCK), fs.getConf().getInt("io.file.buffer.size", 4096),
                    fs.getDefaultReplication(temp), fs.getDefaultBlockSize(temp), null);
        } catch (IOException e) {
            throw failure("cannot start write of", key, e);
        }
        return new HdfsWriter(key, target, temp, out);
    }

    private final class HdfsWriter extends ObjectWriter {
        private final Path target;
        private final Path temp;
        private final FSDataOutputStream out;

        HdfsWriter(String key, Path target, Path temp, FSDataOutputStream out) {
            super(key);
            this.target = target;
            this.temp = temp;
            this.out = out;
        }

        private void checkWritable() throws IOException {
            if (isClosed()) {
                throw new StorageException("writer of " + uri.resolve(key()) + " is closed");
            }
        }

        @Override
        public void write(int b) throws IOException {
            checkWritable();
            try {
                out.write(b);
            } catch (IOException e) {
                throw failure("write to", key(), e);
            }
            counted(1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            checkWritable();
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                throw failure("write to", key(), e);
            }
            counted(len);
        }

        @Override
        public void flush() throws IOException {
            checkWritable();
            out.hflush();
        }

        @Override
        public void commit() throws IOException {
            checkWritable();
            try {
                out.hsync();
                out.close();
                dfs().rename(temp, target, Options.Rename.OVERWRITE);
                markCommitted();
            } catch (IOException e) {
                throw failure("commit of", key(), e);
            } finally {
                close();
            }
        }

        @Override
        protected void release(boolean committed) {
            if (committed) {
                return;
            }
            IOException failure = null;
            try {
                out.close();
            } catch (IOException e) {
                failure = e;
            }
            try {
                fs.delete(temp, false);
            } catch (IOException e) {
                LOG.warn("could not delete temp file {} of abandoned write of {}", temp, uri.resolve(key()), e);
            }
            if (failure != null) {
                LOG.debug("closing abandoned write of {} failed", uri.resolve(key()), failure);
            }
        }
    }

    /**
     * Creates {@code key} atomically if it does not exist: the temp file is written, hsynced and
     * closed, then renamed with {@code Rename.NONE}. Exactly one of any number of concurrent callers
     * gets {@code true}; the content is durable (on every DataNode of the pipeline) when it returns.
     */
    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        Path target = pathOf(key);
        checkOpen();
        try {
            if (fs.exists(target)) {
                return false;
            }
        } catch (IOException e) {
            throw failure("atomic create of", key, e);
        }
        Path temp = tempBeside(target);
        boolean renamed = false;
        try {
            try (FSDataOutputStream out = fs.create(temp, false)) {
                out.write(content);
                out.hsync();
            }
            try {
                dfs().rename(temp, target, Options.Rename.NONE);
                renamed = true;
                return true;
            } catch (FileAlreadyExistsException e) {
                return false;
            } catch (IOException e) {
                // the call failed, but the NameNode may have renamed: our temp file is gone only then
                boolean tempExists;
                try {
                    tempExists = fs.exists(temp);
                } catch (IOException recheck) {
                    e.addSuppressed(recheck);
                    throw new CommitStateUnknownException("atomic create of " + uri.resolve(key)
                            + " may or may not have happened (rename failed: " + e + ")", e);
                }
                if (!tempExists) {
                    renamed = true;
                    return true;
                }
                throw e;
            }
        } catch (CommitStateUnknownException e) {
            renamed = true; // never delete what may be the committed object's source
            throw e;
        } catch (IOException e) {
            throw failure("atomic create of", key, e);
        } finally {
            if (!renamed) {
                try {
                    fs.delete(temp, false);
                } catch (IOException e) {
                    LOG.warn("could not delete temp file {} of atomic create of {}", temp, uri.resolve(key), e);
                }
            }
        }
    }

    private DistributedFileSystem dfs() throws IOException {
        if (fs instanceof DistributedFileSystem dfs) {
            return dfs;
        }
        throw new StorageException("the client of " + uri + " is not an HDFS client (" + fs.getClass().getName()
                + "); rename with no-replace semantics is not available");
    }

    // ------------------------------------------------------------------ reads

    /**
     * Opens a ranged read. A missing key, or a key that names a directory, is
     * {@link NoSuchObjectException} here; a range past the end is {@link EOFException} when read.
     */
    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        Path path = pathOf(key);
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
        checkOpen();
        FSDataInputStream in;
        try {
            in = fs.open(path);
        } catch (FileNotFoundException e) {
            throw new NoSuchObjectException(uri, key);
        } catch (IOException e) {
            throw failure("cannot open for reading", key, e);
        }
        try {
            if (offset > 0) {
                in.seek(offset);
            }
        } catch (EOFException e) {
            in.close();
            return RangeInputStream.pastEnd(length, uri.resolve(key));
        } catch (IOException e) {
            in.close();
            throw failure("seek in", key, e);
        }
        return new RangeInputStream(in, length, uri.resolve(key));
    }

    /** The file's length and modification time; empty for a missing key or a directory. */
    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        Path path = pathOf(key);
        checkOpen();
        try {
            FileStatus status = fs.getFileStatus(path);
            if (!status.isFile()) {
                return Optional.empty();
            }
            return Optional.of(info(key, status));
        } catch (FileNotFoundException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw failure("stat of", key, e);
        }
    }

    private static ObjectInfo info(String key, FileStatus status) {
        return new ObjectInfo(key, status.getLen(), Instant.ofEpochMilli(status.getModificationTime()));
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        return listSorted(prefix, false);
    }

    /**
     * The temp files below {@code prefix}: a writer killed before commit or abort leaves its temp
     * file (and its HDFS lease, which the NameNode recovers after the lease's hard limit) behind.
     */
    @Override
    public List<ObjectInfo> listAbandonedWrites(String prefix) throws IOException {
        return listSorted(prefix, true);
    }

    /** The key of the directory holding every key that starts with {@code prefix}: "" or "a/b/". */
    private static String dirKeyOf(String prefix) {
        int slash = prefix.lastIndexOf('/');
        return slash < 0 ? "" : prefix.substring(0, slash + 1);
    }

    private Path dirOf(String dirKey) {
        return dirKey.isEmpty() ? rootDir() : pathOf(dirKey.substring(0, dirKey.length() - 1));
    }

    /** Files below {@code prefix}, sorted by key: temp files of writes when {@code temps}, else objects. */
    private List<ObjectInfo> listSorted(String prefix, boolean temps) throws IOException {
        Keys.checkPrefix(prefix);
        checkOpen();
        String dirKey = dirKeyOf(prefix);
        List<ObjectInfo> result = new ArrayList<>();
        try {
            walk(dirOf(dirKey), dirKey, prefix, result, temps);
        } catch (IOException e) {
            throw new StorageException("listing " + (temps ? "abandoned writes below " : "") + uri.resolve(prefix) + " failed: " + e, e);
        }
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    /**
     * Lists from {@code startAfter} on the NameNode: in each directory on the way, the listing
     * starts at {@code startAfter}'s name there ({@code getListing} with a start name, a binary
     * search in the directory's sorted children), so the cost does not grow with the keys before.
     */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        Keys.checkPrefix(prefix);
        java.util.Objects.requireNonNull(startAfter, "startAfter is null");
        checkOpen();
        String dirKey = dirKeyOf(prefix);
        List<ObjectInfo> result = new ArrayList<>();
        try {
            walkAfter(dirOf(dirKey), dirKey, prefix, startAfter, result);
        } catch (IOException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " after " + startAfter + " failed: " + e, e);
        }
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    private void walkAfter(Path dir, String dirKey, String prefix, String startAfter, List<ObjectInfo> into) throws IOException {
        if (!Keys.mayHoldKeysAfter(dirKey, startAfter)) {
            return;
        }
        byte[] cursor = new byte[0];
        if (startAfter.startsWith(dirKey) && startAfter.length() > dirKey.length()) {
            String rest = startAfter.substring(dirKey.length());
            int s = rest.indexOf('/');
            byte[] name = (s < 0 ? rest : rest.substring(0, s)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            // start just before `name` (its bytes but the last: the listing's names are compared as bytes), so that a
            // directory of that name, which holds keys after startAfter, is listed too; the key filter below drops the rest
            cursor = java.util.Arrays.copyOf(name, name.length - 1);
        }
        org.apache.hadoop.hdfs.DFSClient client = dfs().getClient();
        String src = dir.toUri().getPath();
        List<Path> subdirs = new ArrayList<>();
        List<String> subdirKeys = new ArrayList<>();
        org.apache.hadoop.hdfs.protocol.DirectoryListing page;
        do {
            try {
                page = client.listPaths(src, cursor);
            } catch (FileNotFoundException | ParentNotDirectoryException e) {
                return; // missing, deleted meanwhile, or a file where the prefix's directory would be
            }
            if (page == null) {
                return;
            }
            for (org.apache.hadoop.hdfs.protocol.HdfsFileStatus status : page.getPartialListing()) {
                String name = status.getLocalName();
                if (name.isEmpty()) {
                    return; // src is a file: the NameNode lists the file itself
                }
                String key = dirKey + name;
                if (status.isDirectory()) {
                    String sub = key + "/";
                    if ((sub.startsWith(prefix) || prefix.startsWith(sub)) && Keys.mayHoldKeysAfter(sub, startAfter)) {
                        subdirs.add(new Path(dir, name));
                        subdirKeys.add(sub);
                    }
                } else if (!isTemp(name) && key.startsWith(prefix) && key.compareTo(startAfter) > 0) {
                    into.add(new ObjectInfo(key, status.getLen(), Instant.ofEpochMilli(status.getModificationTime())));
                }
            }
            cursor = page.getLastName();
        } while (page.hasMore());
        for (int i = 0; i < subdirs.size(); i++) {
            walkAfter(subdirs.get(i), subdirKeys.get(i), prefix, startAfter, into);
        }
    }

    @Override
    public void deleteAbandonedWrite(String path) throws IOException {
        checkOpen();
        String name = path.substring(path.lastIndexOf('/') + 1);
        if (!isTemp(name) || path.startsWith("/") || path.contains("..") || path.contains(":")) {
            throw new IllegalArgumentException("'" + path + "' is not a leftover of an uncommitted write in " + uri);
        }
        Path p = new Path(rootDir(), path);
        try {
            fs.delete(p, false);
        } catch (FileNotFoundException e) {
            // committed, aborted or deleted meanwhile
        } catch (IOException e) {
            throw failure("delete of", path, e);
        }
    }

    private void walk(Path dir, String dirKey, String prefix, List<ObjectInfo> into, boolean temps) throws IOException {
        RemoteIterator<FileStatus> entries;
        try {
            entries = fs.listStatusIterator(dir);
        } catch (FileNotFoundException | ParentNotDirectoryException e) {
            return; // missing, deleted meanwhile, or a file where the prefix's directory would be
        }
        List<FileStatus> subdirs = new ArrayList<>();
        try {
            while (entries.hasNext()) {
                FileStatus status = entries.next();
                String name = status.getPath().getName();
                String key = dirKey + name;
                if (status.isDirectory()) {
                    // descend only where keys can still match the prefix
                    String sub = key + "/";
                    if (sub.startsWith(prefix) || prefix.startsWith(sub)) {
                        subdirs.add(status);
                    }
                } else if (isTemp(name) == temps && key.startsWith(prefix)) {
                    into.add(info(key, status));
                }
            }
        } catch (FileNotFoundException e) {
            return; // deleted while listing
        }
        for (FileStatus sub : subdirs) {
            walk(sub.getPath(), dirKey + sub.getPath().getName() + "/", prefix, into, temps);
        }
    }

    // ------------------------------------------------------------------ deletes

    /**
     * Deletes the file at {@code key} in one NameNode operation; a missing key is not an error.
     * A key that names a directory (a prefix of other keys) is left alone.
     */
    @Override
    public void delete(String key) throws IOException {
        Path path = pathOf(key);
        checkOpen();
        try {
            fs.delete(path, false);
        } catch (PathIsNotEmptyDirectoryException e) {
            // a prefix of other keys, not an object
        } catch (FileNotFoundException e) {
            // deleted concurrently
        } catch (IOException e) {
            throw failure("delete of", key, e);
        }
    }

    @Override
    public void deleteAll(java.util.Collection<String> keys) throws IOException {
        for (String key : keys) {
            pathOf(key); // validate every key before deleting any
        }
        CheckpointStore.super.deleteAll(keys);
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        fs.close();
    }

    private StorageException failure(String what, String key, IOException e) {
        return new StorageException(what + " " + uri.resolve(key) + " failed: " + e, e);
    }

    @Override
    public String toString() {
        return "HdfsCheckpointStore[" + uri + "]";
    }
}
