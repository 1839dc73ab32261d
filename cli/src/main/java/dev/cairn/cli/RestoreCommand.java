package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "restore", description = "Write a checkpoint's entries as files under DIR: worker-<i>/<name> for each "
        + "worker's own entries, replicated/<name> for replicated ones, plus manifest.json. Every entry's checksum is checked. "
        + "Files are written to a hidden directory beside DIR and renamed to DIR at the end: an interrupted restore leaves "
        + "nothing at DIR, and a rerun removes what it left.")
final class RestoreCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--to", required = true, paramLabel = "DIR", description = "Directory to write to; must be empty or absent.")
    Path to;

    @Option(names = "--worker", paramLabel = "I", description = "Restore only what worker I needs (its entries and the replicated ones).")
    Integer worker;

    @Option(names = "--json", description = "Print one JSON object: {storage, step, saveId, to, worker, entries, bytes}.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.")
    boolean quiet;

    /** Marks a restore's temporary directory: {@code .<target name>.cairn-restore-<random>} beside the target. */
    static final String TEMP_MARK = ".cairn-restore-";

    @Override
    public Integer call() throws Exception {
        Path dir = to.toAbsolutePath().normalize();
        if (dir.getParent() == null) {
            throw new UserError("restore target must not be the root directory");
        }
        if (Files.exists(dir) && (!Files.isDirectory(dir) || !isEmpty(dir))) {
            throw new UserError("restore target " + dir + " exists and is not an empty directory");
        }
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            if (worker != null && (worker < 0 || worker >= m.worldSize())) {
                throw new UserError("--worker " + worker + " is outside the checkpoint's world size " + m.worldSize());
            }
            Files.createDirectories(dir.getParent());
            removeLeftovers(dir);
            // all or nothing: entries and the manifest copy go to a temporary directory beside the target,
            // renamed into place at the end, so an interrupted restore leaves nothing under the target name
            Path temp = Files.createDirectory(dir.resolveSibling("." + dir.getFileName() + TEMP_MARK
                    + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 1)));
            try {
                long[] bytesAndFiles = restore(catalog, m, temp);
                Files.write(temp.resolve("manifest.json"), ManifestCodec.encode(m), StandardOpenOption.CREATE_NEW);
                // rename(2) replaces an empty directory and is atomic on one file system
                Files.move(temp, dir, StandardCopyOption.ATOMIC_MOVE);
                if (json) {
                    ObjectNode n = JsonOutput.object().put("storage", store.uri().toString()).put("step", m.step())
                            .put("saveId", m.saveId()).put("to", dir.toString());
                    if (worker == null) {
                        n.putNull("worker");
                    } else {
                        n.put("worker", worker.intValue());
                    }
                    JsonOutput.print(n.put("entries", bytesAndFiles[1]).put("bytes", bytesAndFiles[0]));
                } else {
                    System.out.printf("restored step %d (save %s): %d entries, %d bytes to %s%n", m.step(), m.saveId(),
                            bytesAndFiles[1], bytesAndFiles[0], dir);
                }
                return 0;
            } catch (Exception e) {
                try {
                    deleteTree(temp);
                } catch (IOException cleanup) {
                    e.addSuppressed(cleanup);
                }
                throw e;
            }
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (var entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    /**
     * Removes what interrupted restores to the same target left beside it. A restore running
     * concurrently to the same target would then fail, which is all it could do anyway.
     */
    private static void removeLeftovers(Path dir) throws IOException {
        String prefix = "." + dir.getFileName() + TEMP_MARK;
        try (var siblings = Files.list(dir.getParent())) {
            for (Path p : siblings.filter(p -> p.getFileName().toString().startsWith(prefix)).toList()) {
                System.err.println("cairn: removing " + p + ", left by an interrupted restore");
                deleteTree(p);
            }
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (var walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Writes the entries below {@code dir}; returns {bytes, files}. */
    private long[] restore(CheckpointCatalog catalog, Manifest m, Path dir) throws IOException {
        long bytes = 0;
        int files = 0;
        List<Manifest.EntryRef> entries = worker == null ? m.logicalEntries() : m.entriesFor(worker);
        long total = entries.stream().mapToLong(m::logicalLength).sum();
        try (Progress progress = Progress.start("restore step " + m.step(), total, quiet)) {
            for (Manifest.EntryRef e : entries) {
                Path target = dir.resolve(EntryNames.restorePath(e)).normalize();
                if (!target.startsWith(dir)) {
                    throw new UserError("entry '" + e.name() + "' would be written outside " + dir);
                }
                Files.createDirectories(target.getParent());
                try (InputStream in = catalog.openEntry(m, e);
                     OutputStream out = Files.newOutputStream(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                    bytes += copy(in, out, progress);
                }
                files++;
            }
        }
        return new long[] {bytes, files};
    }

    private static long copy(InputStream in, OutputStream out, Progress progress) throws IOException {
        byte[] buf = new byte[1 << 20];
        long n = 0;
        int r;
        while ((r = in.read(buf)) > 0) {
            out.write(buf, 0, r);
            progress.add(r);
            n += r;
        }
        return n;
    }
}
