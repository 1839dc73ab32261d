package dev.cairn.storage.export;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * All-or-nothing output: work goes to a hidden temporary sibling of the target,
 * {@code .<name><mark><random>}, renamed onto the target at the end ({@code rename(2)}: atomic on
 * one file system). An interrupted run leaves only the temporary sibling, which the next run to the
 * same target removes.
 */
final class TargetFile {
    private TargetFile() {}

    /** {@code target} made absolute; refuses the root and a target whose directory does not exist. */
    static Path check(Path target, String what) {
        Path p = target.toAbsolutePath().normalize();
        if (p.getParent() == null) {
            throw new IllegalArgumentException(what + " must not be the root directory");
        }
        if (!Files.isDirectory(p.getParent())) {
            throw new IllegalArgumentException(what + " " + p + ": directory " + p.getParent() + " does not exist");
        }
        if (!Files.isWritable(p.getParent())) {
            throw new IllegalArgumentException(what + " " + p + ": directory " + p.getParent() + " is not writable");
        }
        return p;
    }

    /** A fresh temporary sibling's path (not created). */
    static Path tempSibling(Path target, String mark) {
        return target.resolveSibling("." + target.getFileName() + mark + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 1));
    }

    /**
     * Removes what interrupted runs to the same target left beside it, telling {@code onRemoved}
     * each one. A run going on concurrently to the same target then fails, which is all it could do.
     */
    static void removeLeftovers(Path target, String mark, Consumer<Path> onRemoved) throws IOException {
        String prefix = "." + target.getFileName() + mark;
        try (var siblings = Files.list(target.getParent())) {
            for (Path p : siblings.filter(p -> p.getFileName().toString().startsWith(prefix)).toList()) {
                onRemoved.accept(p);
                deleteTree(p);
            }
        }
    }

    /** Renames {@code temp} onto {@code target}, atomically, replacing it when {@code replace}. */
    static void moveIntoPlace(Path temp, Path target, boolean replace) throws IOException {
        if (replace) {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } else {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    /** Deletes {@code failed}'s leftover, attaching a failure to delete to {@code e}. */
    static void discard(Path temp, Exception e) {
        try {
            deleteTree(temp);
        } catch (IOException cleanup) {
            e.addSuppressed(cleanup);
        }
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (var walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
