package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.StorageUri;
import dev.cairn.testkit.ClusterProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A restore killed with SIGKILL in a child JVM leaves nothing under the target name, and a rerun succeeds. */
class RestoreInterruptedTest {
    private static final int ENTRIES = 4000;
    private static final int ENTRY_BYTES = 16 << 10;

    @TempDir
    Path tmp;

    private static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    /** One worker, many small entries: a restore that takes long enough to be killed midway. */
    private static void writeCheckpoint(Path root) throws Exception {
        byte[] object = new byte[ENTRIES * ENTRY_BYTES];
        new Random(7).nextBytes(object);
        String saveId = Layout.newSaveId(5);
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int i = 0; i < ENTRIES; i++) {
            entries.add(new Manifest.EntryRef("layer" + (i / 100) + "/p" + i, 0, (long) i * ENTRY_BYTES, ENTRY_BYTES,
                    crc(object, i * ENTRY_BYTES, ENTRY_BYTES), false));
        }
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            store.write(Layout.shardKey(saveId, 0), object);
            new CheckpointCatalog(store).commit(new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", 5, saveId, Instant.now(), 1,
                    List.of(new Manifest.ShardRef(0, Layout.shardKey(saveId, 0), object.length, crc(object, 0, object.length))),
                    entries, Map.of()));
        }
    }

    private static Optional<Path> tempDirOf(Path target) throws Exception {
        try (Stream<Path> s = Files.list(target.getParent())) {
            return s.filter(p -> p.getFileName().toString().startsWith("." + target.getFileName() + dev.cairn.storage.export.DirectoryRestore.TEMP_MARK)).findFirst();
        }
    }

    private static long files(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).count();
        } catch (java.io.UncheckedIOException | java.nio.file.NoSuchFileException e) {
            return 0;
        }
    }

    @Test
    void aKilledRestoreLeavesNothingAtTheTargetAndARerunRemovesItsLeftovers() throws Exception {
        Path root = tmp.resolve("ckpt");
        writeCheckpoint(root);
        Path target = tmp.resolve("out").resolve("restored");

        Path temp;
        try (ClusterProcess restore = ClusterProcess.start("restore", tmp.resolve("restore.log"), "128m",
                List.of("restore", "--storage", root.toString(), "--to", target.toString()))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            Optional<Path> seen = Optional.empty();
            while (System.nanoTime() < deadline && (seen.isEmpty() || files(seen.get()) < 50)) {
                assertThat(restore.isAlive()).as("restore finished before it could be killed; see %s", tmp.resolve("restore.log")).isTrue();
                seen = Files.isDirectory(target.getParent()) ? tempDirOf(target) : Optional.empty();
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
            }
            assertThat(seen).as("temporary directory of the restore").isPresent();
            temp = seen.get();
            restore.kill();
            restore.waitFor(Duration.ofSeconds(30));
        }

        assertThat(target).doesNotExist();
        assertThat(files(temp)).isBetween(50L, (long) ENTRIES - 1);

        ByteArrayCapture out = ByteArrayCapture.run("restore", "--storage", root.toString(), "--to", target.toString());
        assertThat(out.exit()).as(out.err()).isZero();
        assertThat(out.err()).contains("removing " + temp).contains("interrupted restore");
        assertThat(temp).doesNotExist();
        assertThat(files(target)).isEqualTo(ENTRIES + 2); // and manifest.json, index.json
        assertThat(target.resolve("manifest.json")).exists();
        assertThat(tempDirOf(target)).isEmpty();
    }

    /** Runs {@code cairn} in this JVM, capturing stdout and stderr. */
    record ByteArrayCapture(int exit, String out, String err) {
        static ByteArrayCapture run(String... args) {
            java.io.PrintStream oldOut = System.out;
            java.io.PrintStream oldErr = System.err;
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
            int exit;
            try {
                System.setOut(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
                System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
                exit = Main.execute(args);
            } finally {
                System.setOut(oldOut);
                System.setErr(oldErr);
            }
            return new ByteArrayCapture(exit, out.toString(java.nio.charset.StandardCharsets.UTF_8), err.toString(java.nio.charset.StandardCharsets.UTF_8));
        }
    }
}
