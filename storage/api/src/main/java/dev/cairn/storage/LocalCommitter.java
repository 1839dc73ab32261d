package dev.cairn.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** The local store's atomic create-if-absent: the commit point of a checkpoint on a file system. */
final class LocalCommitter {
    private final StorageUri uri;
    private final Path root;

    LocalCommitter(StorageUri uri, Path root) {
        this.uri = uri;
        this.root = root;
    }

    boolean createIfAbsent(String key, byte[] content) throws IOException {
        Path target = root.resolve(Keys.check(key));
        LocalFiles.createParents(uri, root, target);
        if (Files.exists(target)) {
            return false;
        }
        Path temp = LocalFiles.tempBeside(target);
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
                // a move without replace checks, then renames: two callers could both "win". No commit then.
                throw new StorageException("atomic create of " + uri.resolve(key) + " is not possible: the file system of "
                        + target.getParent() + " has no hard links (link(2)), the only no-replace atomic step used here", e);
            }
            LocalFiles.fsyncDirectory(target.getParent());
            return true;
        } catch (IOException e) {
            throw new StorageException("atomic create of " + uri.resolve(key) + " failed: " + e, e);
        } finally {
            Files.deleteIfExists(temp);
        }
    }
}
