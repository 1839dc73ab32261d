package dev.cairn.storage.hdfs;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.KeyWalk;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.RangeInputStream;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import dev.cairn.storage.SupportsRangedReads;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.ParentNotDirectoryException;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.fs.PathIsNotEmptyDirectoryException;

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
final class HdfsCheckpointStore implements CheckpointStore, dev.cairn.storage.SupportsAbandonedWrites, SupportsRangedReads {
    private final HdfsConnection conn;
    private final StorageUri uri;
    private final FileSystem fs;
    private final HdfsCommitter committer;

    private HdfsCheckpointStore(HdfsConnection conn) {
        this.conn = conn;
        this.uri = conn.uri();
        this.fs = conn.fs();
        this.committer = new HdfsCommitter(conn);
    }

    static HdfsCheckpointStore open(StorageUri uri, boolean create, String hadoopConfDir) throws IOException {
        return new HdfsCheckpointStore(HdfsConnection.open(uri, create, hadoopConfDir));
    }

    static Configuration configuration(StorageUri uri, String hadoopConfDir) {
        return HdfsConnection.configuration(uri, hadoopConfDir);
    }

    @Override
    public StorageUri uri() {
        return uri;
    }

    static Path tempBeside(Path target) {
        return new Path(target.getParent(), KeyWalk.tempName(target.getName(), ThreadLocalRandom.current().nextLong()));
    }

    /**
     * Opens a streaming write to a temp file beside the key. Nothing is visible at the key until
     * {@code commit()}, which atomically replaces any object there; {@code close()} without commit
     * deletes the temp file. Memory is bounded by the DFS client's packet queue.
     */
    @Override
    public ObjectWriter create(String key) throws IOException {
        Path target = conn.pathOf(key);
        conn.checkOpen();
        FileSystem fs = conn.fs();
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
            throw conn.failure("cannot start write of", key, e);
        }
        return new HdfsObjectWriter(conn, key, target, temp, out);
    }

    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        return committer.createIfAbsent(key, content);
    }

    /**
     * Opens a ranged read. A missing key, or a key that names a directory, is
     * {@link NoSuchObjectException} here; a range past the end is {@link EOFException} when read.
     */
    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        Path path = conn.pathOf(key);
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
        conn.checkOpen();
        FSDataInputStream in;
        try {
            in = fs.open(path);
        } catch (FileNotFoundException e) {
            throw new NoSuchObjectException(uri, key);
        } catch (IOException e) {
            throw conn.failure("cannot open for reading", key, e);
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
            throw conn.failure("seek in", key, e);
        }
        return new RangeInputStream(in, length, uri.resolve(key));
    }

    /** One {@code open} of the file (its block locations), then positional reads of each range. */
    @Override
    public SupportsRangedReads.Ranges openRanges(String key) throws IOException {
        Path path = conn.pathOf(key);
        conn.checkOpen();
        try {
            return new HdfsRanges(fs.open(path), uri.resolve(key));
        } catch (FileNotFoundException e) {
            throw new NoSuchObjectException(uri, key);
        } catch (IOException e) {
            throw conn.failure("cannot open for reading", key, e);
        }
    }

    /** The file's length and modification time; empty for a missing key or a directory. */
    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        Path path = conn.pathOf(key);
        conn.checkOpen();
        try {
            FileStatus status = fs.getFileStatus(path);
            if (!status.isFile()) {
                return Optional.empty();
            }
            return Optional.of(info(key, status));
        } catch (FileNotFoundException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw conn.failure("stat of", key, e);
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

    private List<ObjectInfo> listSorted(String prefix, boolean temps) throws IOException {
        conn.checkOpen();
        try {
            return KeyWalk.list(this::children, prefix, temps);
        } catch (IOException e) {
            throw new StorageException("listing " + (temps ? "abandoned writes below " : "") + uri.resolve(prefix) + " failed: " + e, e);
        }
    }

    /**
     * Lists from {@code startAfter} on the NameNode: in each directory on the way, the listing
     * starts at {@code startAfter}'s name there ({@code getListing} with a start name, a binary
     * search in the directory's sorted children), so the cost does not grow with the keys before.
     */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        conn.checkOpen();
        try {
            return KeyWalk.listAfter(this::children, prefix, startAfter);
        } catch (IOException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " after " + startAfter + " failed: " + e, e);
        }
    }

    /** One directory's children from the NameNode, page by page, with their attributes. */
    private List<KeyWalk.Entry> children(String dirKey, byte[] fromName) throws IOException {
        Path dir = dirKey.isEmpty() ? conn.rootDir() : conn.pathOf(dirKey.substring(0, dirKey.length() - 1));
        org.apache.hadoop.hdfs.DFSClient client = conn.dfs().getClient();
        String src = dir.toUri().getPath();
        List<KeyWalk.Entry> entries = new ArrayList<>();
        byte[] cursor = fromName;
        org.apache.hadoop.hdfs.protocol.DirectoryListing page;
        do {
            try {
                page = client.listPaths(src, cursor);
            } catch (FileNotFoundException | ParentNotDirectoryException e) {
                return List.of(); // missing, deleted meanwhile, or a file where the prefix's directory would be
            }
            if (page == null) {
                return entries;
            }
            for (org.apache.hadoop.hdfs.protocol.HdfsFileStatus status : page.getPartialListing()) {
                String name = status.getLocalName();
                if (name.isEmpty()) {
                    return List.of(); // src is a file: the NameNode lists the file itself
                }
                KeyWalk.Kind kind = status.isDirectory() ? KeyWalk.Kind.DIRECTORY
                        : KeyWalk.Kind.FILE;
                KeyWalk.Attributes attrs = new KeyWalk.Attributes(kind, status.getLen(), Instant.ofEpochMilli(status.getModificationTime()));
                entries.add(new ListedEntry(name, attrs));
            }
            cursor = page.getLastName();
        } while (page.hasMore());
        return entries;
    }

    /** A NameNode listing carries each child's attributes: no further request. */
    private record ListedEntry(String name, KeyWalk.Attributes known) implements KeyWalk.Entry {
        @Override
        public Optional<KeyWalk.Attributes> attributes() {
            return Optional.of(known);
        }
    }

    @Override
    public void deleteAbandonedWrite(String path) throws IOException {
        conn.checkOpen();
        String name = path.substring(path.lastIndexOf('/') + 1);
        if (!KeyWalk.isTempName(name) || path.startsWith("/") || path.contains("..") || path.contains(":")) {
            throw new IllegalArgumentException("'" + path + "' is not a leftover of an uncommitted write in " + uri);
        }
        Path p = new Path(conn.rootDir(), path);
        try {
            fs.delete(p, false);
        } catch (FileNotFoundException e) {
            // committed, aborted or deleted meanwhile
        } catch (IOException e) {
            throw conn.failure("delete of", path, e);
        }
    }

    // ------------------------------------------------------------------ deletes

    /**
     * Deletes the file at {@code key} in one NameNode operation; a missing key is not an error.
     * A key that names a directory (a prefix of other keys) is left alone.
     */
    @Override
    public void delete(String key) throws IOException {
        Path path = conn.pathOf(key);
        conn.checkOpen();
        try {
            fs.delete(path, false);
        } catch (PathIsNotEmptyDirectoryException e) {
            // a prefix of other keys, not an object
        } catch (FileNotFoundException e) {
            // deleted concurrently
        } catch (IOException e) {
            throw conn.failure("delete of", key, e);
        }
    }

    @Override
    public void deleteAll(java.util.Collection<String> keys) throws IOException {
        for (String key : keys) {
            conn.pathOf(key); // validate every key before deleting any
        }
        CheckpointStore.super.deleteAll(keys);
    }

    @Override
    public void close() throws IOException {
        conn.close();
    }

    @Override
    public String toString() {
        return "HdfsCheckpointStore[" + uri + "]";
    }
}
