package dev.cairn.storage.hdfs;

import dev.cairn.storage.PositionalInputStream;
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
        return new RangeInputStream(new PositionalInputStream(in::read, offset), length, name);
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
