package dev.cairn.storage;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.MappedByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Ranged reads of the local store: large ranges through a memory mapping, small ones through a channel. */
final class LocalReader {
    private final StorageUri uri;
    private final Path root;

    LocalReader(StorageUri uri, Path root) {
        this.uri = uri;
        this.root = root;
    }

    InputStream read(String key, long offset, long length) throws IOException {
        checkRange(key, offset, length);
        FileChannel channel = open(key);
        try {
            InputStream mapped = mapped(channel, key, offset, length);
            if (mapped != null) {
                channel.close();
                return mapped;
            }
            channel.position(offset);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return new RangeInputStream(Channels.newInputStream(channel), length, uri.resolve(key));
    }

    /** {@link SupportsRangedReads#openRanges}: one open channel, positional reads (or mappings for large ranges). */
    SupportsRangedReads.Ranges openRanges(String key) throws IOException {
        FileChannel channel = open(key);
        return new SupportsRangedReads.Ranges() {
            @Override
            public InputStream read(long offset, long length) throws IOException {
                checkRange(key, offset, length);
                InputStream mapped = mapped(channel, key, offset, length);
                if (mapped != null) {
                    return mapped;
                }
                PositionalInputStream.Source pread = (pos, b, off, len) -> channel.read(java.nio.ByteBuffer.wrap(b, off, len), pos);
                return new RangeInputStream(new PositionalInputStream(pread, offset), length, uri.resolve(key));
            }

            @Override
            public void close() throws IOException {
                channel.close();
            }
        };
    }

    private void checkRange(String key, long offset, long length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
    }

    private FileChannel open(String key) throws IOException {
        Path path = root.resolve(Keys.check(key));
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NoSuchObjectException(uri, key);
        } catch (IOException e) {
            throw new StorageException("cannot open " + uri.resolve(key) + " for reading: " + e, e);
        }
        if (Files.isDirectory(path)) {
            // Linux opens directories for reading; a "directory" is a key prefix, not an object
            channel.close();
            throw new NoSuchObjectException(uri, key);
        }
        return channel;
    }

    /**
     * Large ranges are mapped: the reader copies straight from the page cache into its array, where
     * a channel read would first copy into a temporary direct buffer. Null for a range read otherwise.
     */
    private InputStream mapped(FileChannel channel, String key, long offset, long length) throws IOException {
        if (length >= MAP_THRESHOLD && length <= Integer.MAX_VALUE && offset + length <= channel.size()) {
            MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_ONLY, offset, length);
            return new MappedRangeInputStream(mapped, uri.resolve(key));
        }
        return null;
    }

    /** Ranges at least this long are read through a memory mapping. */
    private static final long MAP_THRESHOLD = 1L << 20;

    /**
     * A mapped range. Closing drops the reference and never unmaps explicitly: unmapping (through
     * {@code Unsafe.invokeCleaner}) while another thread is still inside {@link #read} crashes the
     * JVM, so the mapping is released by the garbage collector once no stream holds it. A read after
     * close (also one racing with it) gets an {@link IOException}, or finishes reading valid bytes.
     */
    static final class MappedRangeInputStream extends InputStream {
        private final String name;
        private volatile MappedByteBuffer buffer;

        MappedRangeInputStream(MappedByteBuffer buffer, String name) {
            this.buffer = buffer;
            this.name = name;
        }

        private MappedByteBuffer open() throws IOException {
            MappedByteBuffer b = buffer;
            if (b == null) {
                throw new IOException("stream of " + name + " is closed");
            }
            return b;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            MappedByteBuffer buf = open();
            if (len == 0) {
                return 0;
            }
            synchronized (buf) {
                if (!buf.hasRemaining()) {
                    return -1;
                }
                int n = Math.min(len, buf.remaining());
                try {
                    buf.get(b, off, n);
                } catch (InternalError e) {
                    // SIGBUS: the file was truncated under the mapping
                    throw new EOFException(name + " was truncated while being read");
                }
                return n;
            }
        }

        @Override
        public long skip(long n) throws IOException {
            MappedByteBuffer buf = open();
            if (n <= 0) {
                return 0;
            }
            synchronized (buf) {
                int k = (int) Math.min(n, buf.remaining());
                buf.position(buf.position() + k);
                return k;
            }
        }

        @Override
        public int available() {
            MappedByteBuffer buf = buffer;
            return buf == null ? 0 : buf.remaining();
        }

        @Override
        public void close() {
            buffer = null;
        }
    }
}
