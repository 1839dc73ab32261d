package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;

/**
 * A stream of an object from a position on, made of positional reads ({@code pread}) that leave
 * the underlying file's own position alone, so many such streams can share one open file. For
 * backends' {@link SupportsRangedReads.Ranges}; wrap it in a {@link RangeInputStream} to bound it.
 */
public final class PositionalInputStream extends InputStream {
    /** One positional read: up to {@code len} bytes at {@code position} into {@code b[off..]}; -1 at the end. */
    @FunctionalInterface
    public interface Source {
        int read(long position, byte[] b, int off, int len) throws IOException;
    }

    private final Source source;
    private long position;

    public PositionalInputStream(Source source, long position) {
        this.source = source;
        this.position = position;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n;
        do {
            n = read(one, 0, 1);
        } while (n == 0);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        int n = source.read(position, b, off, len);
        if (n > 0) {
            position += n;
        }
        return n;
    }
}
