package dev.cairn.storage.hdfs;

import dev.cairn.storage.RangeInputStream;
import dev.cairn.storage.SupportsRangedReads;
import java.io.IOException;
import java.io.InputStream;
import org.apache.hadoop.fs.FSDataInputStream;

/**
 * One HDFS file opened for many ranged reads: one {@code open} (one NameNode call for the block
 * locations), then positional reads ({@code pread}) that leave the stream's own position alone.
 */
final class HdfsRanges implements SupportsRangedReads.Ranges {
    private final FSDataInputStream in;
    private final String name;

    HdfsRanges(FSDataInputStream in, String name) {
        this.in = in;
        this.name = name;
    }

    @Override
    public InputStream read(long offset, long length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + name);
        }
        return new RangeInputStream(new InputStream() {
            private long position = offset;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                int n = read(one, 0, 1);
                return n < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (len == 0) {
                    return 0;
                }
                int n = in.read(position, b, off, len);
                if (n > 0) {
                    position += n;
                }
                return n;
            }
        }, length, name);
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
