package dev.cairn.cli;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "restore", description = "Write a checkpoint's entries as files under DIR: worker-<i>/<name> for each "
        + "worker's own entries, replicated/<name> for replicated ones, plus manifest.json. Every entry's checksum is checked.")
final class RestoreCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--to", required = true, paramLabel = "DIR", description = "Directory to write to; must be empty or absent.")
    Path to;

    @Option(names = "--worker", paramLabel = "I", description = "Restore only what worker I needs (its entries and the replicated ones).")
    Integer worker;

    @Override
    public Integer call() throws Exception {
        Path dir = to.toAbsolutePath().normalize();
        boolean existed = Files.exists(dir);
        if (existed && (!Files.isDirectory(dir) || !isEmpty(dir))) {
            throw new UserError("restore target " + dir + " exists and is not an empty directory");
        }
        try {
            return restore(dir);
        } catch (Exception e) {
            // all or nothing: a restore that fails leaves the target as it found it
            removeContents(dir, existed);
            throw e;
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (var entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    private static void removeContents(Path dir, boolean keepDir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                if (!keepDir || !p.equals(dir)) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private Integer restore(Path dir) throws Exception {
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            if (worker != null && (worker < 0 || worker >= m.worldSize())) {
                throw new UserError("--worker " + worker + " is outside the checkpoint's world size " + m.worldSize());
            }
            Files.createDirectories(dir);
            long bytes = 0;
            int files = 0;
            for (Manifest.EntryRef e : worker == null ? m.entries() : m.entriesFor(worker)) {
                Path target = dir.resolve(EntryNames.restorePath(e)).normalize();
                if (!target.startsWith(dir)) {
                    throw new UserError("entry '" + e.name() + "' would be written outside " + dir);
                }
                Files.createDirectories(target.getParent());
                try (InputStream in = catalog.openEntry(m, e);
                     OutputStream out = Files.newOutputStream(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                    bytes += in.transferTo(out);
                }
                files++;
            }
            Files.write(dir.resolve("manifest.json"), dev.cairn.storage.ManifestCodec.encode(m), StandardOpenOption.CREATE_NEW);
            System.out.printf("restored step %d (save %s): %d entries, %d bytes to %s%n", m.step(), m.saveId(), files, bytes, dir);
            return 0;
        }
    }
}
