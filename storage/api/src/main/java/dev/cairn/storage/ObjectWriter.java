package dev.cairn.storage;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * A streaming write of one object. Nothing is visible at the key until {@link #commit()} returns;
 * {@link #close()} without a commit discards what was written (deletes the temp file, aborts the
 * multipart upload). Memory use is bounded by the backend's buffer or part size, never by the
 * object's size.
 */
public abstract class ObjectWriter extends OutputStream {
    private final String key;
    private long written;
    private boolean committed;
    private boolean closed;

    /** @param key the key this writer writes */
    protected ObjectWriter(String key) {
        this.key = key;
    }

    /**
     * Makes the object durable and visible at its key. When this returns, the bytes survive a crash
     * of this process (fsync, hsync, or a completed multipart upload). Replaces an existing object
     * at the key.
     */
    public abstract void commit() throws IOException;

    /**
     * Writes the buffer's remaining bytes and advances its position to its limit. Backends that can
     * take a (direct) buffer without copying it into an array override this; the default copies.
     */
    public void write(ByteBuffer src) throws IOException {
        if (src.hasArray()) {
            write(src.array(), src.arrayOffset() + src.position(), src.remaining());
            src.position(src.limit());
            return;
        }
        byte[] buf = new byte[Math.min(src.remaining(), 1 << 16)];
        while (src.hasRemaining()) {
            int n = Math.min(buf.length, src.remaining());
            src.get(buf, 0, n);
            write(buf, 0, n);
        }
    }

    /** Bytes written so far. */
    public final long bytesWritten() {
        return written;
    }

    /** The key this writer writes. */
    public final String key() {
        return key;
    }

    /** Discards the object unless {@link #commit()} succeeded. Idempotent. */
    @Override
    public final void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        release(committed);
    }

    /** Subclasses: {@code n} more bytes were accepted. */
    protected final void counted(long n) {
        written += n;
    }

    /** Subclasses: the commit succeeded, so {@link #close()} keeps the object. */
    protected final void markCommitted() {
        committed = true;
    }

    protected final boolean isClosed() {
        return closed;
    }

    /**
     * Called once, by the first {@link #close()}: frees the writer's resources and, unless
     * {@code committed}, discards what was written.
     */
    protected abstract void release(boolean committed) throws IOException;
}
