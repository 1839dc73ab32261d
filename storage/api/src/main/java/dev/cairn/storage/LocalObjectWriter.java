package dev.cairn.storage;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A streaming write of one object of the local store into a hidden temp file beside its key.
 * {@code commit()} fsyncs it, renames it over the key (atomic replace) and fsyncs the directory;
 * {@code close()} without commit deletes the temp file.
 */
final class LocalObjectWriter extends ObjectWriter {
    /**
     * Write-behind: every this many bytes a writer asks the kernel (on another thread) to start
     * writing its dirty pages back, so the disk works while the writer still fills the page cache
     * and the commit's fsync has little left to do.
     */
    private static final long WRITE_BEHIND_BYTES = 16L << 20;
    private static final ExecutorService FLUSHER = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "cairn-local-write-behind");
        t.setDaemon(true);
        return t;
    });

    private final StorageUri uri;
    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private long sinceFlush;
    private Future<?> flushing;

    LocalObjectWriter(StorageUri uri, String key, Path target, Path temp, FileChannel channel) {
        super(key);
        this.uri = uri;
        this.target = target;
        this.temp = temp;
        this.channel = channel;
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        if (isClosed()) {
            throw new IOException("writer of " + uri.resolve(key()) + " is closed");
        }
        ByteBuffer buf = ByteBuffer.wrap(b, off, len);
        try {
            while (buf.hasRemaining()) {
                channel.write(buf);
            }
        } catch (IOException e) {
            throw new StorageException("write to " + uri.resolve(key()) + " failed: " + e, e);
        }
        counted(len);
        writeBehind(len);
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        if (isClosed()) {
            throw new IOException("writer of " + uri.resolve(key()) + " is closed");
        }
        int len = src.remaining();
        try {
            while (src.hasRemaining()) {
                channel.write(src);
            }
        } catch (IOException e) {
            throw new StorageException("write to " + uri.resolve(key()) + " failed: " + e, e);
        }
        counted(len);
        writeBehind(len);
    }

    private void writeBehind(long len) throws IOException {
        sinceFlush += len;
        if (sinceFlush >= WRITE_BEHIND_BYTES && (flushing == null || flushing.isDone())) {
            awaitFlush();
            sinceFlush = 0;
            flushing = FLUSHER.submit(() -> {
                channel.force(false);
                return null;
            });
        }
    }

    /** Waits for the write-behind flush in flight and reports its failure. */
    private void awaitFlush() throws IOException {
        if (flushing == null) {
            return;
        }
        try {
            flushing.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while flushing " + uri.resolve(key()));
        } catch (ExecutionException e) {
            throw new StorageException("write-behind flush of " + uri.resolve(key()) + " failed: " + e.getCause(), e.getCause());
        } finally {
            flushing = null;
        }
    }

    @Override
    public void commit() throws IOException {
        if (isClosed()) {
            throw new IOException("writer of " + uri.resolve(key()) + " is closed");
        }
        try {
            awaitFlush();
            channel.force(true);
            channel.close();
            LocalFiles.moveReplacing(temp, target);
            LocalFiles.fsyncDirectory(target.getParent());
            markCommitted();
        } catch (IOException e) {
            throw new StorageException("commit of " + uri.resolve(key()) + " failed: " + e, e);
        } finally {
            close();
        }
    }

    @Override
    protected void release(boolean committed) throws IOException {
        channel.close();
        if (!committed) {
            Files.deleteIfExists(temp);
        }
    }
}
