package dev.cairn.storage;

import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * The stream of a ranged read: yields exactly {@code length} bytes of the underlying stream and
 * throws {@link EOFException} when the underlying stream ends before the range does, so a read of a
 * range past the end of an object fails on every backend alike. For backend implementations.
 */
public final class RangeInputStream extends FilterInputStream {
    private long remaining;
    private final String name;

    /**
     * @param in the object's bytes from the start of the range
     * @param length bytes in the range
     * @param name the object's URI, for the EOF message
     */
    public RangeInputStream(InputStream in, long length, String name) {
        super(in);
        this.remaining = length;
        this.name = name;
    }

    /** A stream of a range that starts at or past the end of the object: EOF on the first read. */
    public static InputStream pastEnd(long length, String name) {
        return new RangeInputStream(InputStream.nullInputStream(), length, name);
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (remaining == 0) {
            return -1;
        }
        if (len == 0) {
            return 0;
        }
        int n = super.read(b, off, (int) Math.min(len, remaining));
        if (n < 0) {
            throw new EOFException("range extends past the end of " + name + " (" + remaining + " bytes missing)");
        }
        remaining -= n;
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long skipped = super.skip(Math.min(n, remaining));
        remaining -= skipped;
        return skipped;
    }

    @Override
    public int available() throws IOException {
        return (int) Math.min(super.available(), remaining);
    }

    @Override
    public boolean markSupported() {
        return false;
    }
}
