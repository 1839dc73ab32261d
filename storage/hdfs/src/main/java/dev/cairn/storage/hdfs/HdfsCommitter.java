package dev.cairn.storage.hdfs;

import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The HDFS store's atomic create-if-absent: a temp file renamed with {@code Rename.NONE}, the commit point. */
final class HdfsCommitter {
    private static final Logger LOG = LoggerFactory.getLogger(HdfsCommitter.class);
    private final HdfsConnection conn;
    private final StorageUri uri;
    private final FileSystem fs;
    /** Runs between the temp file's close and the rename (tests: another process acting in that window). */
    private final java.util.function.Consumer<Path> beforeRename;

    HdfsCommitter(HdfsConnection conn) {
        this(conn, temp -> { });
    }

    HdfsCommitter(HdfsConnection conn, java.util.function.Consumer<Path> beforeRename) {
        this.conn = conn;
        this.uri = conn.uri();
        this.fs = conn.fs();
        this.beforeRename = beforeRename;
    }

    /**
     * Creates {@code key} atomically if it does not exist: the temp file is written, hsynced and
     * closed, then renamed with {@code Rename.NONE}. Exactly one of any number of concurrent callers
     * gets {@code true}; the content is durable (on every DataNode of the pipeline) when it returns.
     */
    boolean createIfAbsent(String key, byte[] content) throws IOException {
        Path target = conn.pathOf(key);
        conn.checkOpen();
        try {
            if (fs.exists(target)) {
                return false;
            }
        } catch (IOException e) {
            throw conn.failure("atomic create of", key, e);
        }
        Path temp = HdfsCheckpointStore.tempBeside(target);
        boolean renamed = false;
        try {
            try (FSDataOutputStream out = fs.create(temp, false)) {
                out.write(content);
                out.hsync();
            }
            beforeRename.accept(temp);
            try {
                conn.dfs().rename(temp, target, Options.Rename.NONE);
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
                    // renamed by us, or swept by someone else: only the target's content tells
                    renamed = true;
                    return readBack(key, target, content, e);
                }
                throw e;
            }
        } catch (CommitStateUnknownException e) {
            renamed = true; // never delete what may be the committed object's source
            throw e;
        } catch (IOException e) {
            throw conn.failure("atomic create of", key, e);
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

    /**
     * After a failed rename whose temp file is gone: the object at the key decides. Our bytes there
     * mean the rename happened; other bytes mean another writer won; no object means the temp file
     * was deleted (e.g. swept by another process) and nothing was created.
     */
    private boolean readBack(String key, Path target, byte[] content, IOException cause) throws IOException {
        byte[] found;
        try (org.apache.hadoop.fs.FSDataInputStream in = fs.open(target)) {
            found = in.readAllBytes();
        } catch (java.io.FileNotFoundException missing) {
            throw conn.failure("atomic create of", key, new IOException(
                    "rename failed and its temp file vanished without creating the object (deleted by another process?)", cause));
        } catch (IOException recheck) {
            cause.addSuppressed(recheck);
            throw new CommitStateUnknownException("atomic create of " + uri.resolve(key)
                    + " may or may not have happened (rename failed: " + cause + ")", cause);
        }
        return java.util.Arrays.equals(found, content);
    }
}
