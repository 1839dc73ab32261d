package dev.cairn.storage;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.CRC32C;

/** An entry's bytes, whose CRC32C is checked when the last byte of the range has been read. */
final class CheckedEntryStream extends FilterInputStream {
private static final int CRC_SLICE = 256 << 10;
    private final CRC32C crc = new CRC32C();
    private final int expected;
    private final String what;
    private long remaining;

    CheckedEntryStream(InputStream in, int expected, long length, String what) {
        super(in);
        this.expected = expected;
        this.remaining = length;
        this.what = what;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (remaining == 0) {
            return -1;
        }
        // at most a slice at a time, so the CRC reads the bytes while they are still in the CPU cache
        int n = super.read(b, off, (int) Math.min(Math.min(len, remaining), CRC_SLICE));
        if (n < 0) {
            throw new CorruptObjectException(what + " is truncated: " + remaining + " bytes missing");
        }
        crc.update(b, off, n);
        remaining -= n;
        if (remaining == 0 && (int) crc.getValue() != expected) {
            throw new CorruptObjectException(what + " fails its checksum (expected crc32c " + ManifestCodec.hex(expected)
                    + ", read " + ManifestCodec.hex((int) crc.getValue()) + ")");
        }
        return n;
    }

    @Override
    public long skip(long n) {
        throw new UnsupportedOperationException("checked entry streams are read, not skipped");
    }
}
