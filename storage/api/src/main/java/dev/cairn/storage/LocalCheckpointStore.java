package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A store on a local or NFS-mounted file system.
 *
 * <ul>
 *   <li>{@link #create}: writes go to a hidden temp file ({@code .name.RANDOM.tmp}) beside the
 *       target; {@code commit()} fsyncs it, renames it over the key (atomic replace) and fsyncs the
 *       directory; {@code close()} without commit deletes the temp file. A crash leaves at most a
 *       temp file, never a partial object.
 *   <li>{@link #createIfAbsent}: writes and fsyncs a temp file, then {@code link(2)}s it to the key,
 *       which fails atomically when the key exists, and fsyncs the directory. A file system
 *       without hard links is an error naming the path: no non-atomic fallback.
 *   <li>{@link #read}: a missing key (or a directory) is {@link NoSuchObjectException} at open; a
 *       range past the end is {@link java.io.EOFException} when read. Ranges of 1 MiB or more are
 *       memory-mapped and never unmapped explicitly (the GC releases them), so closing a stream
 *       while another thread reads it is an {@link java.io.IOException} there, not a JVM crash.
 *   <li>{@link #stat}: a missing key or a directory is empty.
 *   <li>{@link #list}: a walk of the directory holding the prefix, without temp files; not a
 *       snapshot of concurrent changes. {@link #listAfter} stats only the entries after its cursor.
 *   <li>{@link #delete}: a missing key is not an error; removes directories that became empty, up
 *       to the root. {@link #deleteAll} checks every key before deleting any; each delete is atomic
 *       on its own, the batch is not.
 * </ul>
 */
final class LocalCheckpointStore implements CheckpointStore, SupportsAbandonedWrites, SupportsRangedReads {
    private final StorageUri uri;
    private final Path root;
    private final LocalReader reader;
    private final LocalCommitter committer;

    LocalCheckpointStore(StorageUri uri, Path root) {
        this.uri = uri;
        this.root = root;
        this.reader = new LocalReader(uri, root);
        this.committer = new LocalCommitter(uri, root);
    }

    @Override
    public StorageUri uri() {
        return uri;
    }

    private Path pathOf(String key) {
        return root.resolve(Keys.check(key));
    }

    @Override
    public ObjectWriter create(String key) throws IOException {
        Path target = pathOf(key);
        LocalFiles.createParents(uri, root, target);
        Path temp = LocalFiles.tempBeside(target);
        FileChannel channel;
        try {
            channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        } catch (NoSuchFileException e) {
            // a concurrent delete pruned the parent between createDirectories and open
            LocalFiles.createParents(uri, root, target);
            channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        }
        return new LocalObjectWriter(uri, key, target, temp, channel);
    }

    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        return committer.createIfAbsent(key, content);
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        return reader.read(key, offset, length);
    }

    /** One open file per object; ranges are read at positions (large ones mapped). */
    @Override
    public Ranges openRanges(String key) throws IOException {
        return reader.openRanges(key);
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
     * Reads the directories on the way by name and stats only the entries that can sort after
     * {@code startAfter} (and descends only into directories that can hold such keys). Reading a
     * directory is still linear in its entries (readdir; no file system offers a cursor by name),
     * but the per-file stat of {@link #list}, the bulk of its cost, is paid only for the keys after.
     */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        try {
            return KeyWalk.listAfter(this::children, prefix, startAfter);
        } catch (IOException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " after " + startAfter + " failed: " + e, e);
        }
    }

    @Override
    public List<ObjectInfo> listAbandonedWrites(String prefix) throws IOException {
        return walk(prefix, true);
    }

    private List<ObjectInfo> walk(String prefix, boolean temps) throws IOException {
        try {
            return KeyWalk.list(this::children, prefix, temps);
        } catch (IOException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " failed: " + e, e);
        }
    }

    /** The local directory listing: names by readdir, attributes by a stat per entry asked for. */
    private List<KeyWalk.Entry> children(String dirKey, byte[] fromName) throws IOException {
        Path dir = dirKey.isEmpty() ? root : root.resolve(dirKey);
        List<KeyWalk.Entry> entries = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            for (Path p : stream) {
                entries.add(new LocalEntry(p));
            }
        } catch (NoSuchFileException | NotDirectoryException e) {
            return List.of(); // missing, deleted meanwhile, or a file where the prefix's directory would be
        }
        return entries;
    }

    /** A symbolic link to a file is listed as that file; a link to a directory is not followed. */
    private record LocalEntry(Path path) implements KeyWalk.Entry {
        @Override
        public String name() {
            return path.getFileName().toString();
        }

        @Override
        public Optional<KeyWalk.Attributes> attributes() throws IOException {
            try {
                BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                if (attrs.isSymbolicLink()) {
                    attrs = Files.readAttributes(path, BasicFileAttributes.class);
                    if (attrs.isDirectory()) {
                        return Optional.of(new KeyWalk.Attributes(KeyWalk.Kind.OTHER, 0, attrs.lastModifiedTime().toInstant()));
                    }
                }
                KeyWalk.Kind kind = attrs.isDirectory() ? KeyWalk.Kind.DIRECTORY
                        : attrs.isRegularFile() ? KeyWalk.Kind.FILE : KeyWalk.Kind.OTHER;
                return Optional.of(new KeyWalk.Attributes(kind, attrs.size(), attrs.lastModifiedTime().toInstant()));
            } catch (NoSuchFileException e) {
                return Optional.empty();
            }
        }
    }

    @Override
    public void deleteAbandonedWrite(String path) throws IOException {
        Path p = root.resolve(path).normalize();
        if (!p.startsWith(root) || !KeyWalk.isTempName(p.getFileName().toString())) {
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
