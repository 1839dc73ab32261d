package dev.cairn.storage.hdfs;

import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A streaming write of one object to a temp file beside its key. {@code commit()} hsyncs and closes
 * it and renames it over the key with {@code Rename.OVERWRITE}; {@code close()} without commit
 * deletes the temp file. Memory is bounded by the DFS client's packet queue.
 */
final class HdfsObjectWriter extends ObjectWriter {
    private static final Logger LOG = LoggerFactory.getLogger(HdfsObjectWriter.class);
    private final HdfsConnection conn;
    private final StorageUri uri;
    private final FileSystem fs;
    private final Path target;
    private final Path temp;
    private final FSDataOutputStream out;

    HdfsObjectWriter(HdfsConnection conn, String key, Path target, Path temp, FSDataOutputStream out) {
        super(key);
        this.conn = conn;
        this.uri = conn.uri();
        this.fs = conn.fs();
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
            throw conn.failure("write to", key(), e);
        }
        counted(1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        checkWritable();
        try {
            out.write(b, off, len);
        } catch (IOException e) {
            throw conn.failure("write to", key(), e);
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
            conn.dfs().rename(temp, target, Options.Rename.OVERWRITE);
            markCommitted();
        } catch (IOException e) {
            throw conn.failure("commit of", key(), e);
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
