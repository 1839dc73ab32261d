package dev.cairn.storage;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * A store on a local or NFS-mounted file system.
 *
 * <ul>
 *   <li>{@link #create}: writes go to a hidden temp file ({@code .name.RANDOM.tmp}) beside the
 *       target; {@code commit()} fsyncs it, renames it over the key (atomic replace) and fsyncs the
 *       directory; {@code close()} without commit deletes the temp file. A crash leaves at most a
 *       temp file, never a partial object.
 *   <li>{@link #createIfAbsent}: writes and fsyncs a temp file, then {@code link(2)}s it to the key,
 *       which fails atomically when the key exists, and fsyncs the directory. On file systems
 *       without hard links, a move without replace (atomic on POSIX local file systems; on NFS only
 *       as atomic as the server's rename).
 *   <li>{@link #read}: a missing key (or a directory) is {@link NoSuchObjectException} at open; a
 *       range past the end is {@link java.io.EOFException} when read.
 *   <li>{@link #stat}: a missing key or a directory is empty.
 *   <li>{@link #list}: a walk of the directory holding the prefix, without temp files; not a
 *       snapshot of concurrent changes. {@link #listAfter} stats only the entries after its cursor.
 *   <li>{@link #delete}: a missing key is not an error; removes directories that became empty, up
 *       to the root. {@link #deleteAll} checks every key before deleting any; each delete is atomic
 *       on its own, the batch is not.
 * </ul>
 */
final class LocalCheckpointStore implements CheckpointStore, SupportsAbandonedWrites {
    private static final String TMP_SUFFIX = ".tmp";
    /**
     * Write-behind: every this many bytes a writer asks the kernel (on another thread) to start
     * writing its dirty pages back, so the disk works while the writer still fills the page cache
     * and the commit's fsync has little left to do.
     */
    private static final long WRITE_BEHIND_BYTES = 16L << 20;
    private static final ExecutorService FLUSHER = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "cairn-local-write-behind");
        t.setDaemon(true);
        return t;
    });

    private final StorageUri uri;
    private final Path root;

    LocalCheckpointStore(StorageUri uri, Path root) {
        this.uri = uri;
        this.root = root;
    }

    @Override
    public StorageUri uri() {
        return uri;
    }

    private Path pathOf(String key) {
        return root.resolve(Keys.check(key));
    }

    private static Path tempBeside(Path target) {
        String name = "." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + TMP_SUFFIX;
        return target.resolveSibling(name);
    }

    private static boolean isTemp(Path p) {
        String name = p.getFileName().toString();
        return name.startsWith(".") && name.endsWith(TMP_SUFFIX);
    }

    private void createParents(Path target) throws IOException {
        try {
            Files.createDirectories(target.getParent());
        } catch (IOException e) {
            throw new StorageException("cannot create directory for " + uri.resolve(root.relativize(target).toString()) + ": " + e, e);
        }
    }

    @Override
    public ObjectWriter create(String key) throws IOException {
        Path target = pathOf(key);
        createParents(target);
        Path temp = tempBeside(target);
        FileChannel channel;
        try {
            channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        } catch (NoSuchFileException e) {
            // a concurrent delete pruned the parent between createDirectories and open
            createParents(target);
            channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        }
        return new LocalWriter(key, target, temp, channel);
    }

    private final class LocalWriter extends ObjectWriter {
        private final Path target;
        private final Path temp;
        private final FileChannel channel;
        private long sinceFlush;
        private Future<?> flushing;

        LocalWriter(String key, Path target, Path temp, FileChannel channel) {
            super(key);
            this.target = target;
            this.temp = temp;
            this.channel = channel;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (isClosed()) {
                throw new IOException("writer of " + uri.resolve(key()) + " is closed");
            }
            ByteBuffer buf = ByteBuffer.wrap(b, off, len);
            try {
                while (buf.hasRemaining()) {
                    channel.write(buf);
                }
            } catch (IOException e) {
                throw new StorageException("write to " + uri.resolve(key()) + " failed: " + e, e);
            }
            counted(len);
            writeBehind(len);
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            if (isClosed()) {
                throw new IOException("writer of " + uri.resolve(key()) + " is closed");
            }
            int len = src.remaining();
            try {
                while (src.hasRemaining()) {
                    channel.write(src);
                }
            } catch (IOException e) {
                throw new StorageException("write to " + uri.resolve(key()) + " failed: " + e, e);
            }
            counted(len);
            writeBehind(len);
        }

        private void writeBehind(long len) throws IOException {
            sinceFlush += len;
            if (sinceFlush >= WRITE_BEHIND_BYTES && (flushing == null || flushing.isDone())) {
                awaitFlush();
                sinceFlush = 0;
                flushing = FLUSHER.submit(() -> {
                    channel.force(false);
                    return null;
                });
            }
        }

        /** Waits for the write-behind flush in flight and reports its failure. */
        private void awaitFlush() throws IOException {
            if (flushing == null) {
                return;
            }
            try {
                flushing.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while flushing " + uri.resolve(key()));
            } catch (ExecutionException e) {
                throw new StorageException("write-behind flush of " + uri.resolve(key()) + " failed: " + e.getCause(), e.getCause());
            } finally {
                flushing = null;
            }
        }

        @Override
        public void commit() throws IOException {
            if (isClosed()) {
                throw new IOException("writer of " + uri.resolve(key()) + " is closed");
            }
            try {
                awaitFlush();
                channel.force(true);
                channel.close();
                moveReplacing(temp, target);
                fsyncDirectory(target.getParent());
                markCommitted();
            } catch (IOException e) {
                throw new StorageException("commit of " + uri.resolve(key()) + " failed: " + e, e);
            } finally {
                close();
            }
        }

        @Override
        protected void release(boolean committed) throws IOException {
            channel.close();
            if (!committed) {
                Files.deleteIfExists(temp);
            }
        }
    }

    private static void moveReplacing(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // some file systems cannot open directories; the rename itself is still atomic there
            if (!(e instanceof java.nio.file.AccessDeniedException)) {
                throw e;
            }
        }
    }

    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        Path target = pathOf(key);
        createParents(target);
        if (Files.exists(target)) {
            return false;
        }
        Path temp = tempBeside(target);
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(content);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                // link(2) fails with EEXIST when the target exists: the atomic, no-replace step
                Files.createLink(target, temp);
            } catch (FileAlreadyExistsException e) {
                return false;
            } catch (UnsupportedOperationException e) {
                // no hard links here; a move without REPLACE_EXISTING is the best this file system offers
                try {
                    Files.move(temp, target);
                } catch (FileAlreadyExistsException e2) {
                    return false;
                }
            }
            fsyncDirectory(target.getParent());
            return true;
        } catch (IOException e) {
            throw new StorageException("atomic create of " + uri.resolve(key) + " failed: " + e, e);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
        Path path = pathOf(key);
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


    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        Path p = pathOf(key);
        try {
            BasicFileAttributes attrs = Files.readAttributes(p, BasicFileAttributes.class);
            if (!attrs.isRegularFile()) {
                return Optional.empty();
            }
            return Optional.of(new ObjectInfo(key, attrs.size(), attrs.lastModifiedTime().toInstant()));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        return walk(prefix, false);
    }

    /**
     * Reads the directories on the way by name and stats only the entries that sort after
     * {@code startAfter} (and descends only into directories that can hold such keys). Reading a
     * directory is still linear in its entries (readdir; no file system offers a cursor by name),
     * but the per-file stat of {@link #list}, the bulk of its cost, is paid only for the keys after.
     */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        Keys.checkPrefix(prefix);
        java.util.Objects.requireNonNull(startAfter, "startAfter is null");
        int slash = prefix.lastIndexOf('/');
        String dirKey = slash < 0 ? "" : prefix.substring(0, slash + 1);
        List<ObjectInfo> result = new ArrayList<>();
        try {
            collectAfter(dirKey.isEmpty() ? root : root.resolve(dirKey), dirKey, prefix, startAfter, result);
        } catch (IOException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " after " + startAfter + " failed: " + e, e);
        }
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    private void collectAfter(Path dir, String dirKey, String prefix, String startAfter, List<ObjectInfo> into) throws IOException {
        List<Path> subdirs = new ArrayList<>();
        try (java.nio.file.DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                String key = dirKey + p.getFileName();
                if (!Keys.mayHoldKeysAfter(key, startAfter) || !(key.startsWith(prefix) || prefix.startsWith(key + "/"))) {
                    continue; // by name alone: no stat
                }
                BasicFileAttributes attrs;
                try {
                    attrs = Files.readAttributes(p, BasicFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                    if (attrs.isSymbolicLink()) {
                        attrs = Files.readAttributes(p, BasicFileAttributes.class); // as list(): a link to a file is listed
                    }
                } catch (NoSuchFileException e) {
                    continue; // committed or deleted while listing
                }
                if (attrs.isDirectory()) {
                    if (!Files.isSymbolicLink(p)) {
                        subdirs.add(p);
                    }
                } else if (attrs.isRegularFile() && !isTemp(p) && key.startsWith(prefix) && key.compareTo(startAfter) > 0) {
                    into.add(new ObjectInfo(key, attrs.size(), attrs.lastModifiedTime().toInstant()));
                }
            }
        } catch (NoSuchFileException | java.nio.file.NotDirectoryException e) {
            return; // missing, deleted meanwhile, or a file where the prefix's directory would be
        }
        for (Path sub : subdirs) {
            collectAfter(sub, dirKey + sub.getFileName() + "/", prefix, startAfter, into);
        }
    }

    @Override
    public List<ObjectInfo> listAbandonedWrites(String prefix) throws IOException {
        return walk(prefix, true);
    }

    /** Regular files below {@code prefix}, sorted: the temp files of writes when {@code temps}, else the objects. */
    private List<ObjectInfo> walk(String prefix, boolean temps) throws IOException {
        Keys.checkPrefix(prefix);
        int slash = prefix.lastIndexOf('/');
        Path dir = slash < 0 ? root : root.resolve(prefix.substring(0, slash));
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<ObjectInfo> result = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                String key = root.relativize(p).toString().replace('\\', '/');
                if (isTemp(p) != temps || !key.startsWith(prefix)) {
                    continue;
                }
                try {
                    BasicFileAttributes attrs = Files.readAttributes(p, BasicFileAttributes.class);
                    if (attrs.isRegularFile()) {
                        result.add(new ObjectInfo(key, attrs.size(), attrs.lastModifiedTime().toInstant()));
                    }
                } catch (NoSuchFileException e) {
                    // committed or deleted while listing
                }
            }
        } catch (java.io.UncheckedIOException e) {
            if (!(e.getCause() instanceof NoSuchFileException)) {
                throw new StorageException("listing " + uri.resolve(prefix) + " failed: " + e.getCause(), e.getCause());
            }
        }
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    @Override
    public void deleteAbandonedWrite(String path) throws IOException {
        Path p = root.resolve(path).normalize();
        if (!p.startsWith(root) || !isTemp(p)) {
            throw new IllegalArgumentException("'" + path + "' is not a leftover of an uncommitted write in " + uri);
        }
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new StorageException("delete of " + uri.resolve(root.relativize(p).toString().replace('\\', '/')) + " failed: " + e, e);
        }
        pruneEmptyParents(p.getParent());
    }

    @Override
    public void delete(String key) throws IOException {
        Path p = pathOf(key);
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new StorageException("delete of " + uri.resolve(key) + " failed: " + e, e);
        }
        pruneEmptyParents(p.getParent());
    }

    @Override
    public void deleteAll(java.util.Collection<String> keys) throws IOException {
        for (String key : keys) {
            Keys.check(key);
        }
        CheckpointStore.super.deleteAll(keys);
    }

    private void pruneEmptyParents(Path dir) {
        while (dir != null && !dir.equals(root) && dir.startsWith(root)) {
            try {
                Files.deleteIfExists(dir);
            } catch (DirectoryNotEmptyException e) {
                return;
            } catch (IOException e) {
                return;
            }
            dir = dir.getParent();
        }
    }

    @Override
    public void close() {}

    @Override
    public String toString() {
        return "LocalCheckpointStore[" + uri + "]";
    }
}
