package dev.cairn.agent.sidecar;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The shared staging file (in {@code /dev/shm}), mapped once, and a first-fit allocator of
 * contiguous 64-byte-aligned regions in it. {@link #allocate} waits while no gap is large enough.
 * The file holds at most 2 GiB - 1 (one mapping).
 *
 * <p>A sidecar that is SIGKILLed cannot delete its file, and tmpfs pages live until someone does:
 * every sidecar holds an exclusive {@code fcntl} lock on its file for as long as it runs (the kernel
 * drops it when the process dies, however it dies), and {@link #sweepStale} deletes the files of
 * the shared directory whose lock nobody holds.
 */
final class SharedStaging implements AutoCloseable {
    static final int ALIGN = 64;
    /** The names {@link Sidecar#start} gives: {@code cairn-<run>-<rank>-<pid>}. */
    static final Pattern NAME = Pattern.compile("cairn-.+-\\d+-\\d+");
    private static final Logger LOG = LoggerFactory.getLogger(SharedStaging.class);

    private final Path path;
    private final FileChannel channel;
    private final MappedByteBuffer map;
    private final long capacity;
    /** offset → length of every region in use. */
    private final TreeMap<Long, Long> used = new TreeMap<>();

    private SharedStaging(Path path, FileChannel channel, MappedByteBuffer map, long capacity) {
        this.path = path;
        this.channel = channel;
        this.map = map;
        this.capacity = capacity;
    }

    /**
     * Creates {@code path} (mode 0600, must not exist) of {@code bytes}, locked by this process,
     * maps and pre-faults it. The file is created and locked under a hidden name and renamed into
     * place, so that {@link #sweepStale} never sees it unlocked.
     */
    static SharedStaging create(Path path, long bytes) throws IOException {
        if (bytes < ALIGN || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("staging size " + bytes + " bytes is outside " + ALIGN + ".." + Integer.MAX_VALUE);
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            throw new java.nio.file.FileAlreadyExistsException(path.toString());
        }
        Path hidden = path.resolveSibling("." + path.getFileName() + ".new");
        Files.createFile(hidden, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        FileChannel ch = null;
        boolean placed = false;
        try {
            ch = FileChannel.open(hidden, StandardOpenOption.READ, StandardOpenOption.WRITE);
            if (ch.tryLock() == null) {
                throw new IOException("cannot lock the new shared staging file " + hidden);
            }
            ch.truncate(bytes);
            ch.write(ByteBuffer.allocate(1), bytes - 1);
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes);
            for (int p = 0; p < bytes; p += 4096) {
                map.put(p, (byte) 0); // pre-fault: the trainer's first copy does not pay for page faults
            }
            Files.move(hidden, path, StandardCopyOption.ATOMIC_MOVE);
            placed = true;
            return new SharedStaging(path, ch, map, bytes);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(placed ? path : hidden);
            if (ch != null) {
                ch.close();
            }
            throw e;
        }
    }

    /**
     * Deletes the shared staging files in {@code dir} that no running sidecar holds (left by a
     * sidecar that was killed). Files of other names, links and locked files are left alone; a file
     * that cannot be examined is skipped.
     *
     * @return the number of bytes freed
     */
    static long sweepStale(Path dir) {
        long freed = 0;
        if (!Files.isDirectory(dir)) {
            return 0; // creating the file there reports the problem
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "cairn-*")) {
            for (Path f : files) {
                if (NAME.matcher(f.getFileName().toString()).matches() && Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
                    freed += deleteIfUnlocked(f);
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not look for stale shared staging files in {}: {}", dir, e.toString());
        }
        return freed;
    }

    private static long deleteIfUnlocked(Path f) {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException inThisProcess) {
                return 0;
            }
            if (lock == null) {
                return 0; // a running sidecar holds it
            }
            long size = ch.size();
            Files.delete(f); // still locked by us: no sidecar can be using it
            LOG.info("deleted the stale shared staging file {} ({} bytes) of a sidecar that is gone", f, size);
            return size;
        } catch (java.nio.file.AccessDeniedException e) {
            LOG.debug("shared staging file {} is another user's: {}", f, e.toString());
            return 0;
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not check the shared staging file {}: {}", f, e.toString());
            return 0;
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
        try {
            Files.deleteIfExists(path);
        } finally {
            channel.close(); // releases the lock; the mapping stays valid until it is collected
        }
    }
}
