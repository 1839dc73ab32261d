package dev.cairn.storage;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/** File-system steps shared by the local store's writer and committer. */
final class LocalFiles {
    private LocalFiles() {}

    /** A fresh hidden temp path beside {@code target} ({@link KeyWalk#tempName}). */
    static Path tempBeside(Path target) {
        return target.resolveSibling(KeyWalk.tempName(target.getFileName().toString(), ThreadLocalRandom.current().nextLong()));
    }

    static void createParents(StorageUri uri, Path root, Path target) throws IOException {
        try {
            Files.createDirectories(target.getParent());
        } catch (IOException e) {
            throw new StorageException("cannot create directory for " + uri.resolve(root.relativize(target).toString()) + ": " + e, e);
        }
    }

    /**
     * Renames {@code from} over {@code to} atomically. A file system that cannot is an error naming
     * both paths, never a plain move (which could leave a partial object under the key).
     */
    static void moveReplacing(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new StorageException("cannot rename " + from + " to " + to + " atomically on this file system", e);
        }
    }

    static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (AccessDeniedException e) {
            // some file systems cannot open directories; the rename itself is still atomic there
        }
    }
}
