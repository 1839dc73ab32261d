package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Collection;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The contract suite on a local directory, plus what only a file system can get wrong. */
class LocalCheckpointStoreTest extends CheckpointStoreContractTest {

    @TempDir
    Path tmp;

    private Path root;
    private CheckpointStore store;

    @BeforeEach
    void openStore() throws IOException {
        root = tmp.resolve("store");
        store = CheckpointStores.open(StorageUri.parse(root.toUri().toString()), true);
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Override
    protected CheckpointStore store() {
        return store;
    }

    /** Every regular file below the root, temp files included. */
    @Override
    protected Collection<String> rawObjects() throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(Files::isRegularFile).map(p -> root.relativize(p).toString()).sorted().toList();
        }
    }

    @Test
    void opensThroughServiceLoaderAsLocalStore() {
        assertThat(store.uri().scheme()).isEqualTo("file");
        assertThat(store.uri().path()).isEqualTo(root.toString());
    }

    @Test
    void missingRootWithoutCreateIsUnavailableAndNamesTheUri() {
        Path missing = tmp.resolve("does-not-exist");
        String uri = "file://" + missing;
        assertThatThrownBy(() -> CheckpointStores.open(uri))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining(uri);
        assertThat(missing).doesNotExist();
    }

    @Test
    void rootThatIsAFileIsUnavailable() throws IOException {
        Path file = Files.writeString(tmp.resolve("plain-file"), "x");
        assertThatThrownBy(() -> CheckpointStores.open("file://" + file))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining("file://" + file);
    }

    @Test
    void unreadableRootIsUnavailable() throws IOException {
        Path locked = Files.createDirectory(tmp.resolve("locked"));
        Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("---------"));
        try {
            // root (uid 0) reads any directory whatever its mode: nothing to test then
            assumeTrue(!Files.isReadable(locked), "running with permission checks bypassed (root); cannot make a directory unreadable");
            assertThatThrownBy(() -> CheckpointStores.open("file://" + locked))
                    .isInstanceOf(StorageUnavailableException.class)
                    .hasMessageContaining("file://" + locked);
        } finally {
            Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("rwx------"));
        }
    }

    @Test
    void createIfAbsentLeavesNoTempFiles() throws IOException {
        assertThat(store.createIfAbsent("m/1", new byte[] {1})).isTrue();
        assertThat(store.createIfAbsent("m/1", new byte[] {2})).isFalse();
        try (Stream<Path> files = Files.list(root.resolve("m"))) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("1");
        }
    }

    @Test
    void abandonedWriteLeavesNoTempFile() throws IOException {
        try (ObjectWriter w = store.create("s/shard")) {
            w.write(new byte[1000]);
            try (Stream<Path> files = Files.list(root.resolve("s"))) {
                // the temp file exists while writing, hidden from list()
                assertThat(files.map(p -> p.getFileName().toString()).toList()).singleElement().asString().startsWith(".shard.").endsWith(".tmp");
            }
            assertThat(store.list("")).isEmpty();
        }
        assertThat(rawObjects()).isEmpty();
    }

    @Test
    void deletePrunesEmptyDirectoriesButNotTheRoot() throws IOException {
        store.write("a/b/c/obj", new byte[] {1});
        store.delete("a/b/c/obj");
        assertThat(root).isDirectory();
        assertThat(root.resolve("a")).doesNotExist();
        assertThat(store.list("")).isEqualTo(List.of());
    }

    /**
     * A mapped read racing with close on another thread gets valid bytes or an IOException naming
     * the closed stream: never a crash (unmapped memory) and never another exception.
     */
    @Test
    void closingAMappedReadWhileAnotherThreadReadsIsSafe() throws Exception {
        byte[] content = new byte[4 << 20];
        new java.util.Random(3).nextBytes(content);
        store.write("big", content);
        for (int round = 0; round < 200; round++) {
            java.io.InputStream in = store.read("big", 0, content.length);
            java.util.concurrent.CountDownLatch reading = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CompletableFuture<Throwable> reader = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                byte[] buf = new byte[64 << 10];
                int pos = 0;
                try {
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        if (!java.util.Arrays.equals(buf, 0, n, content, pos, pos + n)) {
                            return new AssertionError("wrong bytes at " + pos);
                        }
                        pos += n;
                        reading.countDown();
                    }
                    return null;
                } catch (Throwable t) {
                    return t;
                } finally {
                    reading.countDown();
                }
            });
            reading.await();
            in.close();
            Throwable outcome = reader.get(30, java.util.concurrent.TimeUnit.SECONDS);
            if (outcome != null) {
                assertThat(outcome).isExactlyInstanceOf(IOException.class).hasMessageContaining("is closed");
            }
        }
    }

    @Test
    void aReadAfterCloseIsAnIOException() throws Exception {
        store.write("big", new byte[2 << 20]);
        java.io.InputStream in = store.read("big", 0, 2 << 20);
        in.close();
        assertThatThrownBy(() -> in.read(new byte[10])).isInstanceOf(IOException.class).hasMessageContaining("closed");
    }
}
