package dev.cairn.storage;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
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
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
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
        try {
            if (length >= MAP_THRESHOLD && length <= Integer.MAX_VALUE && offset + length <= channel.size()) {
                // large ranges are mapped: the reader copies straight from the page cache into its array,
                // where a channel read would first copy into a temporary direct buffer
                MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_ONLY, offset, length);
                channel.close();
                return new MappedRangeInputStream(mapped, uri.resolve(key));
            }
            channel.position(offset);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return new RangeInputStream(Channels.newInputStream(channel), length, uri.resolve(key));
    }

    /** Ranges at least this long are read through a memory mapping. */
    private static final long MAP_THRESHOLD = 1L << 20;

    /** A mapped range; unmapped on close so a deleted object's space is freed at once. */
    static final class MappedRangeInputStream extends InputStream {
        private final String name;
        private MappedByteBuffer buffer;

        MappedRangeInputStream(MappedByteBuffer buffer, String name) {
            this.buffer = buffer;
            this.name = name;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (buffer == null) {
                throw new IOException("stream of " + name + " is closed");
            }
            if (len == 0) {
                return 0;
            }
            if (!buffer.hasRemaining()) {
                return -1;
            }
            int n = Math.min(len, buffer.remaining());
            try {
                buffer.get(b, off, n);
            } catch (InternalError e) {
                // SIGBUS: the file was truncated under the mapping
                throw new EOFException(name + " was truncated while being read");
            }
            return n;
        }

        @Override
        public long skip(long n) {
            if (buffer == null || n <= 0) {
                return 0;
            }
            int k = (int) Math.min(n, buffer.remaining());
            buffer.position(buffer.position() + k);
            return k;
        }

        @Override
        public int available() {
            return buffer == null ? 0 : buffer.remaining();
        }

        @Override
        public void close() {
            MappedByteBuffer b = buffer;
            buffer = null;
            if (b != null) {
                Unmapper.unmap(b);
            }
        }
    }

    /** Unmaps through {@code sun.misc.Unsafe.invokeCleaner} when available; otherwise the GC does it later. */
    private static final class Unmapper {
        private static final java.lang.invoke.MethodHandle INVOKE_CLEANER = find();

        private static java.lang.invoke.MethodHandle find() {
            try {
                Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
                java.lang.reflect.Field f = unsafeClass.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                Object unsafe = f.get(null);
                return java.lang.invoke.MethodHandles.lookup()
                        .findVirtual(unsafeClass, "invokeCleaner", java.lang.invoke.MethodType.methodType(void.class, ByteBuffer.class))
                        .bindTo(unsafe);
            } catch (ReflectiveOperationException | RuntimeException e) {
                return null;
            }
        }

        static void unmap(ByteBuffer b) {
            if (INVOKE_CLEANER != null) {
                try {
                    INVOKE_CLEANER.invokeExact(b);
                } catch (Throwable e) {
                    // left to the GC
                }
            }
        }
    }
}
