package dev.cairn.agent.sidecar;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * The shared staging file (in {@code /dev/shm}), mapped once, and a first-fit allocator of
 * contiguous 64-byte-aligned regions in it. {@link #allocate} waits while no gap is large enough.
 * The file holds at most 2 GiB - 1 (one mapping).
 */
final class SharedStaging implements AutoCloseable {
    static final int ALIGN = 64;

    private final Path path;
    private final MappedByteBuffer map;
    private final long capacity;
    /** offset → length of every region in use. */
    private final TreeMap<Long, Long> used = new TreeMap<>();

    private SharedStaging(Path path, MappedByteBuffer map, long capacity) {
        this.path = path;
        this.map = map;
        this.capacity = capacity;
    }

    /** Creates {@code path} (mode 0600, must not exist) of {@code bytes}, maps and pre-faults it. */
    static SharedStaging create(Path path, long bytes) throws IOException {
        if (bytes < ALIGN || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("staging size " + bytes + " bytes is outside " + ALIGN + ".." + Integer.MAX_VALUE);
        }
        Files.createFile(path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(bytes);
            ch.write(ByteBuffer.allocate(1), bytes - 1);
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes);
            for (int p = 0; p < bytes; p += 4096) {
                map.put(p, (byte) 0); // pre-fault: the trainer's first copy does not pay for page faults
            }
            return new SharedStaging(path, map, bytes);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(path);
            throw e;
        }
    }

    Path path() {
        return path;
    }

    long capacity() {
        return capacity;
    }

    /**
     * Reserves {@code bytes} (rounded up to 64), waiting up to {@code timeoutMillis} for space.
     *
     * @return the region's offset, or -1 when the wait timed out
     * @throws RequestException (BadRequest) when the region could never fit
     */
    synchronized long allocate(long bytes, long timeoutMillis) throws RequestException, InterruptedException {
        long size = Math.max(ALIGN, (bytes + ALIGN - 1) / ALIGN * ALIGN);
        if (bytes < 0 || size > capacity) {
            throw RequestException.badRequest("a region of " + bytes + " bytes does not fit the shared staging file of " + capacity + " bytes");
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            long start = 0;
            for (Map.Entry<Long, Long> e : used.entrySet()) {
                if (e.getKey() - start >= size) {
                    break;
                }
                start = e.getKey() + e.getValue();
            }
            if (capacity - start >= size) {
                used.put(start, size);
                return start;
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                return -1;
            }
            wait(left);
        }
    }

    /** Frees the region at {@code offset} (no-op when none is there). */
    synchronized void free(long offset) {
        if (used.remove(offset) != null) {
            notifyAll();
        }
    }

    /** The length reserved at {@code offset}, or -1. */
    synchronized long regionLength(long offset) {
        Long l = used.get(offset);
        return l == null ? -1 : l;
    }

    /** A view of bytes [offset, offset + length) of the file. */
    ByteBuffer slice(long offset, long length) {
        return map.duplicate().limit((int) (offset + length)).position((int) offset).slice();
    }

    @Override
    public void close() throws IOException {
        Files.deleteIfExists(path);
    }
}
