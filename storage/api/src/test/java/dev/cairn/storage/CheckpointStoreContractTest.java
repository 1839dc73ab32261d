package dev.cairn.storage;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The behaviour every {@link CheckpointStore} must have. A backend's test extends this class and
 * returns, from {@link #store()}, a store whose root is empty and fresh for each test; it runs the
 * suite against a real server (a directory, a MiniDFSCluster, an S3 server), never a mock.
 *
 * <p>Hooks a subclass may override: {@link #largeObjectSize()} to keep a slow backend fast,
 * {@link #manyKeysCount()}, and {@link #rawObjects()} to expose what the backend really holds
 * below the root (temp files, multipart uploads) so "nothing left behind" can be checked beyond
 * what {@link CheckpointStore#list} is willing to show.
 */
public abstract class CheckpointStoreContractTest {

    private static final int MIB = 1 << 20;

    /** A store with an empty root, fresh for each test (the subclass opens and closes it). */
    protected abstract CheckpointStore store();

    /** Bytes of the large streamed object; 256 MiB unless a backend needs less to stay fast. */
    protected long largeObjectSize() {
        return 256L * MIB;
    }

    /** Keys of the listing-at-scale test; more than one S3 listing page (1000) and delete batch. */
    protected int manyKeysCount() {
        return 2_000;
    }

    /**
     * Everything the backend holds below the store root, as names relative to it, including
     * temp files and unfinished uploads. The default only sees what {@code list("")} shows.
     */
    protected Collection<String> rawObjects() throws IOException {
        return keys(store().list(""));
    }

    /**
     * Opens another, independent client of the same root: its own connections and caches, as another
     * process would have. The default opens {@code store().uri()} again through the providers.
     */
    protected CheckpointStore openAnotherClient() throws IOException {
        return CheckpointStores.open(store().uri(), false);
    }

    // ---------------------------------------------------------------- write, commit, visibility

    @Test
    void writeCommitReadRoundTrip() throws IOException {
        byte[] content = randomBytes(1, 100_003);
        try (ObjectWriter writer = store().create("save-1/shard-0.bin")) {
            assertThat(writer.key()).isEqualTo("save-1/shard-0.bin");
            writer.write(content, 0, 10);
            writer.write(content[10]);
            writer.write(content, 11, content.length - 11);
            assertThat(writer.bytesWritten()).isEqualTo(content.length);
            writer.commit();
        }
        assertThat(store().readAll("save-1/shard-0.bin")).isEqualTo(content);
        assertThat(store().stat("save-1/shard-0.bin")).get()
                .satisfies(info -> {
                    assertThat(info.key()).isEqualTo("save-1/shard-0.bin");
                    assertThat(info.length()).isEqualTo(content.length);
                });
        assertThat(keys(store().list(""))).containsExactly("save-1/shard-0.bin");
    }

    @Test
    void nothingIsVisibleBeforeCommit() throws IOException {
        try (ObjectWriter writer = store().create("save-1/shard-0.bin")) {
            writer.write(randomBytes(2, 4096));
            writer.flush();
            assertThat(store().stat("save-1/shard-0.bin")).isEmpty();
            assertThat(store().list("")).isEmpty();
            assertThatThrownBy(() -> store().read("save-1/shard-0.bin", 0, 1)).isInstanceOf(NoSuchObjectException.class);
            writer.commit();
        }
        assertThat(store().stat("save-1/shard-0.bin")).get().extracting(ObjectInfo::length).isEqualTo(4096L);
    }

    @Test
    void closeWithoutCommitLeavesNothing() throws IOException {
        ObjectWriter writer = store().create("save-1/abandoned.bin");
        writer.write(randomBytes(3, 3 * MIB + 17));
        writer.close();
        writer.close(); // idempotent
        assertThatThrownBy(() -> writer.write(1)).isInstanceOf(IOException.class);
        assertThat(store().stat("save-1/abandoned.bin")).isEmpty();
        assertThat(store().list("")).isEmpty();
        assertThat(rawObjects()).isEmpty();
    }

    @Test
    void commitReplacesAnExistingObject() throws IOException {
        store().write("hint", "first, longer content".getBytes(UTF_8));
        store().write("hint", "second".getBytes(UTF_8));
        assertThat(new String(store().readAll("hint"), UTF_8)).isEqualTo("second");
        assertThat(keys(store().list(""))).containsExactly("hint");
    }

    @Test
    void writeAndReadAllHelpers() throws IOException {
        store().write("a/small", "hello".getBytes(UTF_8));
        store().write("a/empty", new byte[0]);
        assertThat(store().readAll("a/small")).asString(UTF_8).isEqualTo("hello");
        assertThat(store().readAll("a/empty")).isEmpty();
        assertThat(store().stat("a/empty")).get().extracting(ObjectInfo::length).isEqualTo(0L);
        assertThatThrownBy(() -> store().readAll("a/missing"))
                .isInstanceOf(NoSuchObjectException.class)
                .hasMessageContaining(store().uri().resolve("a/missing"));
    }

    @Test
    void keysWithSpacesAndNonAsciiCharacters() throws IOException {
        List<String> keys = List.of("dir with space/file name+plus=eq%25.bin", "dir with space/ünïcødé-ß.bin", "dir with space/a&b,c;d@e~f!g'h(i).bin");
        for (String key : keys) {
            store().write(key, key.getBytes(UTF_8));
        }
        for (String key : keys) {
            assertThat(store().readAll(key)).asString(UTF_8).isEqualTo(key);
            assertThat(store().stat(key)).isPresent();
        }
        assertThat(keys(store().list("dir with space/"))).containsExactlyInAnyOrderElementsOf(keys);
    }

    // ---------------------------------------------------------------- ranged reads

    @Test
    void rangedReadsAtObjectEdges() throws IOException {
        byte[] content = randomBytes(4, 10_000);
        store().write("obj", content);
        int n = content.length;

        assertThat(readRange("obj", 0, n)).isEqualTo(content);
        assertThat(readRange("obj", 0, 1)).containsExactly(content[0]);
        assertThat(readRange("obj", n - 1, 1)).containsExactly(content[n - 1]);
        assertThat(readRange("obj", 1234, 4321)).isEqualTo(Arrays.copyOfRange(content, 1234, 1234 + 4321));
        assertThat(readRange("obj", n - 100, 100)).isEqualTo(Arrays.copyOfRange(content, n - 100, n));
        assertThat(readRange("obj", 0, 0)).isEmpty();
        assertThat(readRange("obj", 500, 0)).isEmpty();
        assertThat(readRange("obj", n, 0)).isEmpty();
    }

    @Test
    void rangePastTheEndFailsWithEofOnRead() throws IOException {
        store().write("obj", randomBytes(5, 1000));
        assertThatThrownBy(() -> readRange("obj", 990, 11)).isInstanceOf(EOFException.class);
        assertThatThrownBy(() -> readRange("obj", 0, 1001)).isInstanceOf(EOFException.class);
        assertThatThrownBy(() -> readRange("obj", 1000, 1)).isInstanceOf(EOFException.class);
        assertThatThrownBy(() -> readRange("obj", 5000, 10)).isInstanceOf(EOFException.class);
    }

    @Test
    void readOfMissingKeyFails() throws IOException {
        assertThatThrownBy(() -> store().read("missing", 0, 10))
                .isInstanceOf(NoSuchObjectException.class)
                .hasMessageContaining(store().uri().resolve("missing"));
        assertThatThrownBy(() -> store().read("missing", 0, 0)).isInstanceOf(NoSuchObjectException.class);
        // a "directory": a prefix of an existing key is not an object
        store().write("dir/obj", new byte[] {1});
        assertThatThrownBy(() -> store().read("dir", 0, 1)).isInstanceOf(NoSuchObjectException.class);
    }

    @Test
    void negativeRangeIsRejected() throws IOException {
        store().write("obj", new byte[] {1, 2, 3});
        assertThatThrownBy(() -> store().read("obj", -1, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store().read("obj", 0, -1)).isInstanceOf(IllegalArgumentException.class);
    }

    // ---------------------------------------------------------------- stat and list

    @Test
    void statOfMissingKeyIsEmpty() throws IOException {
        assertThat(store().stat("missing")).isEmpty();
        store().write("dir/obj", new byte[] {1});
        assertThat(store().stat("dir")).isEmpty();
        assertThat(store().stat("dir/ob")).isEmpty();
    }

    @Test
    void listIsRecursivePrefixFilteredAndSorted() throws IOException {
        List<String> written = List.of("b", "a/x", "ab", "a/b/d", "a/b/c2", "a/b/c", "c/d/e/f/g");
        for (String key : written) {
            store().write(key, key.getBytes(UTF_8));
        }
        assertThat(keys(store().list(""))).containsExactly("a/b/c", "a/b/c2", "a/b/d", "a/x", "ab", "b", "c/d/e/f/g");
        assertThat(keys(store().list("a/"))).containsExactly("a/b/c", "a/b/c2", "a/b/d", "a/x");
        assertThat(keys(store().list("a"))).containsExactly("a/b/c", "a/b/c2", "a/b/d", "a/x", "ab");
        assertThat(keys(store().list("a/b/c"))).containsExactly("a/b/c", "a/b/c2");
        assertThat(keys(store().list("c/"))).containsExactly("c/d/e/f/g");
        assertThat(store().list("zzz")).isEmpty();
        assertThat(store().list("missing/dir/")).isEmpty();
        for (ObjectInfo info : store().list("")) {
            assertThat(info.length()).as(info.key()).isEqualTo(info.key().getBytes(UTF_8).length);
        }
    }

    @Test
    void listDoesNotShowWritesInProgress() throws IOException {
        store().write("save/done", new byte[] {1});
        try (ObjectWriter pending = store().create("save/pending")) {
            pending.write(randomBytes(6, 2 * MIB));
            pending.flush();
            assertThat(keys(store().list(""))).containsExactly("save/done");
            assertThat(keys(store().list("save/"))).containsExactly("save/done");
            assertThat(keys(store().listAfter("", "save/done"))).isEmpty();
        }
        assertThat(keys(store().list(""))).containsExactly("save/done");
    }

    @Test
    void listAfter() throws IOException {
        for (int i = 0; i < 10; i++) {
            store().write(String.format("k/%02d", i), new byte[] {(byte) i});
        }
        store().write("other", new byte[] {1});
        assertThat(keys(store().listAfter("k/", "k/04"))).containsExactly("k/05", "k/06", "k/07", "k/08", "k/09");
        assertThat(keys(store().listAfter("k/", "k/045"))).containsExactly("k/05", "k/06", "k/07", "k/08", "k/09");
        assertThat(keys(store().listAfter("k/", "k/09"))).isEmpty();
        assertThat(keys(store().listAfter("k/", "a"))).hasSize(10);
        assertThat(keys(store().listAfter("", "k/08"))).containsExactly("k/09", "other");
    }

    @Test
    void listAfterACursorInsideNestedKeys() throws IOException {
        for (String key : List.of("a/1", "a/2/x", "a/2/y", "a/3", "a/20", "b")) {
            store().write(key, new byte[] {1});
        }
        assertThat(keys(store().listAfter("", "a/2"))).containsExactly("a/2/x", "a/2/y", "a/20", "a/3", "b");
        assertThat(keys(store().listAfter("a/", "a/2/x"))).containsExactly("a/2/y", "a/20", "a/3");
        assertThat(keys(store().listAfter("", "a"))).containsExactly("a/1", "a/2/x", "a/2/y", "a/20", "a/3", "b");
        assertThat(keys(store().listAfter("a/2", "a/1"))).containsExactly("a/2/x", "a/2/y", "a/20");
        assertThat(keys(store().listAfter("a/2/", "a/2/x"))).containsExactly("a/2/y");
        assertThat(keys(store().listAfter("a/", "a/3"))).isEmpty();
        assertThat(keys(store().listAfter("c/", ""))).isEmpty();
        assertThat(keys(store().listAfter("a/1/", ""))).as("a file where the prefix's directory would be").isEmpty();
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void listingAndDeletingThousandsOfKeys() throws Exception {
        int count = manyKeysCount();
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            keys.add(String.format("many/d%02d/k%05d", i % 16, i));
        }
        // empty objects: this test is about listing and deleting, and on HDFS an empty file needs
        // no DataNode pipeline, which keeps thousands of writes fast on a 2-core machine
        runInParallel(8, keys.size(), i -> store().write(keys.get(i), new byte[0]));

        List<String> sorted = keys.stream().sorted().toList();
        List<ObjectInfo> listed = store().list("many/");
        assertThat(keys(listed)).containsExactlyElementsOf(sorted);
        assertThat(listed).allSatisfy(info -> assertThat(info.length()).isZero());
        String middle = sorted.get(count * 3 / 4);
        assertThat(keys(store().listAfter("many/", middle))).containsExactlyElementsOf(sorted.subList(count * 3 / 4 + 1, count));
        assertThat(keys(store().list("many/d03/"))).hasSize((int) keys.stream().filter(k -> k.startsWith("many/d03/")).count());

        store().deleteAll(keys);
        assertThat(store().list("")).isEmpty();
    }

    // ---------------------------------------------------------------- delete

    @Test
    void deletePresentAndMissingKeys() throws IOException {
        store().write("a/1", new byte[] {1});
        store().write("a/2", new byte[] {2});
        store().delete("a/1");
        assertThat(store().stat("a/1")).isEmpty();
        assertThat(keys(store().list(""))).containsExactly("a/2");
        store().delete("a/1");
        store().delete("never/there");
        assertThat(store().readAll("a/2")).containsExactly(2);
    }

    @Test
    void deleteAllOfPresentAndMissingKeys() throws IOException {
        store().write("x/1", new byte[] {1});
        store().write("x/2", new byte[] {2});
        store().write("y/3", new byte[] {3});
        store().deleteAll(List.of("x/1", "missing", "x/2", "x/1"));
        assertThat(keys(store().list(""))).containsExactly("y/3");
        store().deleteAll(List.of());
        assertThat(keys(store().list(""))).containsExactly("y/3");
    }

    @Test
    void deleteAllWithAnInvalidKeyDeletesNothing() throws IOException {
        store().write("keep/1", new byte[] {1});
        store().write("keep/2", new byte[] {2});
        assertThatThrownBy(() -> store().deleteAll(List.of("keep/1", "../escape", "keep/2")))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(keys(store().list(""))).containsExactly("keep/1", "keep/2");
    }

    @Test
    void writeAfterDeleteOfSameKey() throws IOException {
        store().write("d/k", new byte[] {1});
        store().delete("d/k");
        store().write("d/k", new byte[] {2});
        assertThat(store().readAll("d/k")).containsExactly(2);
        assertThat(store().createIfAbsent("d/k", new byte[] {3})).isFalse();
    }

    // ---------------------------------------------------------------- create-if-absent

    @Test
    void createIfAbsentCreatesOnceAndNeverReplaces() throws IOException {
        assertThat(store().createIfAbsent("manifests/000001.json", "winner".getBytes(UTF_8))).isTrue();
        assertThat(store().createIfAbsent("manifests/000001.json", "loser, longer".getBytes(UTF_8))).isFalse();
        assertThat(store().readAll("manifests/000001.json")).asString(UTF_8).isEqualTo("winner");
        assertThat(store().stat("manifests/000001.json")).get().extracting(ObjectInfo::length).isEqualTo(6L);
        assertThat(keys(store().list(""))).containsExactly("manifests/000001.json");
        assertThat(rawObjects()).containsExactly("manifests/000001.json");
    }

    @Test
    void createIfAbsentOverAnObjectWrittenByCreate() throws IOException {
        store().write("m", "committed".getBytes(UTF_8));
        assertThat(store().createIfAbsent("m", "other".getBytes(UTF_8))).isFalse();
        assertThat(store().readAll("m")).asString(UTF_8).isEqualTo("committed");
    }

    @Test
    void createIfAbsentOfEmptyContent() throws IOException {
        assertThat(store().createIfAbsent("empty", new byte[0])).isTrue();
        assertThat(store().stat("empty")).get().extracting(ObjectInfo::length).isEqualTo(0L);
        assertThat(store().createIfAbsent("empty", new byte[] {1})).isFalse();
        assertThat(store().readAll("empty")).isEmpty();
    }

    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void createIfAbsentRaceHasExactlyOneWinner() throws Exception {
        int threads = 16;
        for (int round = 0; round < 3; round++) {
            String key = "race/manifest-" + round;
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                CountDownLatch ready = new CountDownLatch(threads);
                CountDownLatch go = new CountDownLatch(1);
                List<Future<Boolean>> results = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    byte[] content = ("writer " + t + " of round " + round).getBytes(UTF_8);
                    results.add(pool.submit(() -> {
                        ready.countDown();
                        go.await();
                        return store().createIfAbsent(key, content);
                    }));
                }
                ready.await();
                go.countDown();
                List<Integer> winners = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    if (results.get(t).get(1, TimeUnit.MINUTES)) {
                        winners.add(t);
                    }
                }
                assertThat(winners).as("winners of round %d", round).hasSize(1);
                assertThat(store().readAll(key)).asString(UTF_8).isEqualTo("writer " + winners.get(0) + " of round " + round);
            } finally {
                pool.shutdownNow();
            }
        }
        assertThat(keys(store().list(""))).containsExactly("race/manifest-0", "race/manifest-1", "race/manifest-2");
        assertThat(rawObjects()).containsExactlyInAnyOrder("race/manifest-0", "race/manifest-1", "race/manifest-2");
    }

    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void createIfAbsentRaceAcrossClientsHasExactlyOneWinner() throws Exception {
        int clientsCount = 4;
        int threads = 12;
        List<CheckpointStore> clients = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            clients.add(store());
            for (int c = 1; c < clientsCount; c++) {
                clients.add(openAnotherClient());
            }
            CountDownLatch ready = new CountDownLatch(threads);
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                CheckpointStore client = clients.get(t % clientsCount);
                byte[] content = ("client " + (t % clientsCount) + " thread " + t).getBytes(UTF_8);
                results.add(pool.submit(() -> {
                    ready.countDown();
                    go.await();
                    return client.createIfAbsent("commit/manifest", content);
                }));
            }
            ready.await();
            go.countDown();
            List<Integer> winners = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                if (results.get(t).get(1, TimeUnit.MINUTES)) {
                    winners.add(t);
                }
            }
            assertThat(winners).hasSize(1);
            int winner = winners.get(0);
            String expected = "client " + (winner % clientsCount) + " thread " + winner;
            for (CheckpointStore client : clients) {
                assertThat(client.readAll("commit/manifest")).asString(UTF_8).isEqualTo(expected);
            }
        } finally {
            pool.shutdownNow();
            for (CheckpointStore client : clients.subList(Math.min(1, clients.size()), clients.size())) {
                client.close();
            }
        }
    }

    // ---------------------------------------------------------------- concurrency and size

    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void concurrentWritersToDifferentKeys() throws Exception {
        int writers = 8;
        int perWriter = 4;
        runInParallel(writers, writers * perWriter, i -> {
            try (ObjectWriter w = store().create("shards/" + i)) {
                byte[] chunk = randomBytes(100 + i, 64 * 1024 + i);
                for (int c = 0; c < 4; c++) {
                    w.write(chunk);
                }
                w.commit();
            }
        });
        List<ObjectInfo> listed = store().list("shards/");
        assertThat(listed).hasSize(writers * perWriter);
        for (int i = 0; i < writers * perWriter; i++) {
            byte[] chunk = randomBytes(100 + i, 64 * 1024 + i);
            byte[] all = store().readAll("shards/" + i);
            assertThat(all).hasSize(chunk.length * 4);
            for (int c = 0; c < 4; c++) {
                assertThat(Arrays.copyOfRange(all, c * chunk.length, (c + 1) * chunk.length)).as("shard %d chunk %d", i, c).isEqualTo(chunk);
            }
        }
    }

    /**
     * Streams {@link #largeObjectSize()} bytes in 1 MiB writes from generated content and reads it
     * back in a stream, comparing CRC32C. Three quarters into the write, the heap in use after a full
     * GC may have grown by less than 96 MiB (S3: parallelism + 1 part buffers); with the test JVM at
     * -Xmx512m a backend or reader that holds the whole object also fails with OutOfMemoryError.
     */
    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void largeObjectStreamsWithBoundedMemory() throws IOException {
        long size = largeObjectSize();
        int chunks = (int) (size / MIB);
        byte[] buf = new byte[MIB];
        CRC32C written = new CRC32C();
        long heapBefore = heapUsedAfterGc();
        try (ObjectWriter writer = store().create("large/object.bin")) {
            for (int i = 0; i < chunks; i++) {
                fillChunk(i, buf);
                written.update(buf);
                writer.write(buf);
                if (i == chunks * 3 / 4) {
                    // whatever the writer keeps must not grow with the bytes written so far
                    long growth = heapUsedAfterGc() - heapBefore;
                    assertThat(growth).as("heap growth after writing %d MiB", i + 1).isLessThan(Math.min(96L * MIB, (i + 1L) * MIB / 2));
                }
            }
            writer.commit();
            assertThat(writer.bytesWritten()).isEqualTo(size);
        }
        assertThat(store().stat("large/object.bin")).get().extracting(ObjectInfo::length).isEqualTo(size);

        CRC32C read = new CRC32C();
        long total = 0;
        try (InputStream in = store().read("large/object.bin", 0, size)) {
            int n;
            boolean checked = false;
            while ((n = in.read(buf)) > 0) {
                read.update(buf, 0, n);
                total += n;
                if (!checked && total >= size * 3 / 4) {
                    checked = true;
                    assertThat(heapUsedAfterGc() - heapBefore).as("heap growth after reading %d bytes", total)
                            .isLessThan(Math.min(96L * MIB, total / 2));
                }
            }
        }
        assertThat(total).isEqualTo(size);
        assertThat(read.getValue()).isEqualTo(written.getValue());

        // a range across a 1 MiB (and, for part sizes that are whole MiB, an upload part) boundary
        long boundary = Math.min(5, chunks - 1) * (long) MIB;
        byte[] expected = new byte[200];
        fillChunk((int) (boundary / MIB) - 1, buf);
        System.arraycopy(buf, MIB - 100, expected, 0, 100);
        fillChunk((int) (boundary / MIB), buf);
        System.arraycopy(buf, 0, expected, 100, 100);
        assertThat(readRange("large/object.bin", boundary - 100, 200)).isEqualTo(expected);
    }

    /** Heap in use after a full collection ({@code System.gc()} is a full GC on HotSpot's collectors). */
    private static long heapUsedAfterGc() {
        System.gc();
        return java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    // ---------------------------------------------------------------- invalid keys

    @ParameterizedTest
    @ValueSource(strings = {"", "/absolute", "a/../b", "..", ".", "a//b", "a/./b", "trailing/", "nul\0byte", "back\\slash"})
    void invalidKeysAreRejectedAndNothingIsWritten(String key) throws IOException {
        CheckpointStore store = store();
        assertThatThrownBy(() -> store.create(key)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.createIfAbsent(key, new byte[] {1})).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.write(key, new byte[] {1})).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.read(key, 0, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.stat(key)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.delete(key)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.deleteAll(List.of(key))).isInstanceOf(IllegalArgumentException.class);
        assertThat(store.list("")).isEmpty();
        assertThat(rawObjects()).isEmpty();
    }

    @Test
    void invalidPrefixIsRejected() {
        assertThatThrownBy(() -> store().list("/abs")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store().list("../up")).isInstanceOf(IllegalArgumentException.class);
    }

    // ---------------------------------------------------------------- helpers

    protected static List<String> keys(List<ObjectInfo> infos) {
        return infos.stream().map(ObjectInfo::key).toList();
    }

    protected static byte[] randomBytes(long seed, int length) {
        byte[] b = new byte[length];
        new SplittableRandom(seed).nextBytes(b);
        return b;
    }

    private static void fillChunk(int index, byte[] buf) {
        new SplittableRandom(0x5eed_0000L + index).nextBytes(buf);
    }

    protected byte[] readRange(String key, long offset, long length) throws IOException {
        try (InputStream in = store().read(key, offset, length)) {
            return in.readAllBytes();
        }
    }

    @FunctionalInterface
    protected interface IndexedTask {
        void run(int index) throws Exception;
    }

    /** Runs {@code task(0..count-1)} on {@code threads} threads and rethrows the first failure. */
    protected static void runInParallel(int threads, int count, IndexedTask task) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Void>> futures = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                int index = i;
                Callable<Void> call = () -> {
                    task.run(index);
                    return null;
                };
                futures.add(pool.submit(call));
            }
            for (Future<Void> f : futures) {
                f.get(5, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
