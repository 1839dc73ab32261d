package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

class CheckpointCatalogTest {
    @TempDir
    Path root;

    private CheckpointStore store;
    private CheckpointCatalog catalog;

    @BeforeEach
    void open() throws IOException {
        store = CheckpointStores.open(StorageUri.parse(root.toString()), false);
        catalog = new CheckpointCatalog(store);
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    private Manifest committed(long step) throws IOException {
        Manifest m = ManifestFixtures.writeShards(store, step, 2);
        assertThat(catalog.commit(m)).isEqualTo(CheckpointCatalog.CommitOutcome.COMMITTED);
        return m;
    }

    private Path file(String key) {
        return root.resolve(key);
    }

    private static void flipByte(Path file, int at) throws IOException {
        byte[] b = Files.readAllBytes(file);
        b[at] ^= 0x20;
        Files.write(file, b);
    }

    @Test
    void commitCreatesTheManifestOnceThenReportsAlreadyExists() throws IOException {
        Manifest first = committed(100);
        Manifest rival = ManifestFixtures.writeShards(store, 100, 2);

        assertThat(catalog.commit(rival)).isEqualTo(CheckpointCatalog.CommitOutcome.ALREADY_EXISTS);

        assertThat(catalog.read(100)).isEqualTo(first);
        assertThat(catalog.steps()).containsExactly(100L);
        assertThat(Files.readString(file(Layout.LATEST))).isEqualTo("100");
    }

    @Test
    void emptyStoreHasNoLatest() throws IOException {
        assertThat(catalog.latest()).isEmpty();
        assertThat(catalog.latestStep()).isEmpty();
        assertThat(catalog.latestValid(e -> { })).isEmpty();
    }

    @Test
    void latestFollowsTheHint() throws IOException {
        committed(10);
        committed(20);
        Manifest newest = committed(30);

        assertThat(catalog.latest()).contains(newest);
    }

    @Test
    void latestFindsManifestsWrittenAfterAStaleHint() throws IOException {
        committed(10);
        catalog.updateHint(10);
        // a coordinator that died between the manifest write and the hint update
        Manifest newer = ManifestFixtures.writeShards(store, 20, 2);
        assertThat(store.createIfAbsent(Layout.manifestKey(20), ManifestCodec.encode(newer))).isTrue();
        assertThat(Files.readString(file(Layout.LATEST))).isEqualTo("10");

        assertThat(catalog.latest()).contains(newer);
    }

    @Test
    void latestWithoutHintOrWithABadHintListsManifests() throws IOException {
        committed(10);
        Manifest newest = committed(20);

        Files.delete(file(Layout.LATEST));
        assertThat(catalog.latest()).contains(newest);

        Files.writeString(file(Layout.LATEST), "garbage");
        assertThat(catalog.latest()).contains(newest);

        Files.writeString(file(Layout.LATEST), "999"); // a manifest retention deleted
        assertThat(catalog.latest()).contains(newest);
    }

    @Test
    void latestSkipsNewerManifestsThatDoNotValidateAndNamesThem() throws IOException {
        Manifest older = committed(10);
        committed(20);
        committed(30);
        flipByte(file(Layout.manifestKey(20)), 40);
        flipByte(file(Layout.manifestKey(30)), 40);

        List<ManifestException> reported = new ArrayList<>();
        assertThat(catalog.latest(reported::add)).contains(older);
        assertThat(reported).hasSize(2);
        assertThat(reported.get(0)).hasMessageContaining(Layout.manifestKey(30)).hasMessageContaining("checksum");
        assertThat(reported.get(1)).hasMessageContaining(Layout.manifestKey(20));
        assertThat(catalog.latest()).contains(older);

        reported.clear();
        assertThat(catalog.latestValid(reported::add)).contains(older);
        assertThat(reported).hasSize(2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"-5", "-9223372036854775808", "99999999999999999999999", "12abc", "", "\0\n\t", "1e3"})
    void anyHintContentIsIgnored(String hint) throws IOException {
        committed(10);
        Manifest newest = committed(20);
        Files.writeString(file(Layout.LATEST), hint);

        assertThat(catalog.latest()).contains(newest);
        assertThat(catalog.latestStep()).contains(20L);
    }

    @Test
    void aHugeHintOrADirectoryNamedLatestIsIgnored() throws IOException {
        committed(10);
        Manifest newest = committed(20);
        Files.write(file(Layout.LATEST), new byte[8 << 20]);
        assertThat(catalog.latest()).contains(newest);

        Files.delete(file(Layout.LATEST));
        Files.createDirectories(file(Layout.LATEST).resolve("x"));
        assertThat(catalog.latest()).contains(newest);
    }

    @Test
    void verifyPassesAnIntactCheckpoint() throws IOException {
        Manifest m = committed(10);

        assertThat(catalog.verify(m)).isEmpty();
    }

    @Test
    void verifyFindsAFlippedByteNamingTheObject() throws IOException {
        Manifest m = committed(10);
        String key = m.shard(1).objectKey();
        flipByte(file(key), 3);

        List<String> problems = catalog.verify(m);

        assertThat(problems).isNotEmpty().allSatisfy(p -> assertThat(p).contains(store.uri().resolve(key)));
        assertThat(problems).anySatisfy(p -> assertThat(p).contains("fails its checksum").startsWith("object"));
        assertThat(problems).anySatisfy(p -> assertThat(p).startsWith("entry 'a'"));
    }

    @Test
    void verifyFindsATruncatedObject() throws IOException {
        Manifest m = committed(10);
        String key = m.shard(0).objectKey();
        byte[] b = Files.readAllBytes(file(key));
        Files.write(file(key), java.util.Arrays.copyOf(b, b.length - 5));

        assertThat(catalog.verify(m)).singleElement().satisfies(p -> assertThat(p)
                .contains(store.uri().resolve(key))
                .contains((b.length - 5) + " bytes, manifest says " + b.length));
    }

    @Test
    void verifyFindsAMissingObject() throws IOException {
        Manifest m = committed(10);
        String key = m.shard(1).objectKey();
        Files.delete(file(key));

        assertThat(catalog.verify(m)).singleElement().satisfies(p -> assertThat(p)
                .startsWith("missing object " + store.uri().resolve(key))
                .contains("worker 1"));
    }

    @Test
    void readEntryReturnsTheSavedBytes() throws IOException {
        Manifest m = committed(10);
        Manifest.EntryRef e = m.entry(1, "b/c").orElseThrow();

        assertThat(new String(catalog.readEntry(m, e), StandardCharsets.UTF_8)).startsWith("b/c@1#10-");
        assertThat(m.entry(1, "shared")).get().extracting(Manifest.EntryRef::worker).isEqualTo(0);
    }

    @Test
    void openEntryDetectsACorruptEntry() throws IOException {
        Manifest m = committed(10);
        Manifest.EntryRef e = m.entry(0, "b/c").orElseThrow();
        flipByte(file(m.shard(0).objectKey()), (int) e.offset() + 1);

        assertThatThrownBy(() -> {
            try (InputStream in = catalog.openEntry(m, e)) {
                in.readAllBytes();
            }
        }).isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("entry 'b/c' of worker 0")
                .hasMessageContaining(store.uri().resolve(m.shard(0).objectKey()))
                .hasMessageContaining("fails its checksum");
        // neighbouring entries are unaffected
        assertThat(catalog.readEntry(m, m.entry(0, "a").orElseThrow())).isNotEmpty();
    }

    @Test
    void deleteRemovesTheManifestAndTheAttempt() throws IOException {
        Manifest old = committed(10);
        Manifest kept = committed(20);

        catalog.delete(old);

        assertThat(catalog.steps()).containsExactly(20L);
        assertThat(catalog.attemptIds()).containsExactly(kept.saveId());
        assertThat(catalog.verify(kept)).isEmpty();
    }

    @org.junit.jupiter.api.Test
    void sweepOfAbandonedCommitWritesRemovesTempFilesOutsideDataOnly(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(dir.toString()), true)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            // a coordinator killed while writing the LATEST hint and a manifest; a worker killed mid-shard
            java.nio.file.Files.writeString(dir.resolve(".LATEST.0123456789abcdef.tmp"), "4");
            java.nio.file.Files.createDirectories(dir.resolve("manifests"));
            java.nio.file.Files.writeString(dir.resolve("manifests/.00000000000000000004.json.0123456789abcdef.tmp"), "{");
            java.nio.file.Files.createDirectories(dir.resolve("data/4-0000abcd"));
            java.nio.file.Files.writeString(dir.resolve("data/4-0000abcd/.shard-00000.bin.0123456789abcdef.tmp"), "x");

            int swept = catalog.sweepAbandonedCommitWrites(java.time.Instant.now().plusSeconds(1));

            org.assertj.core.api.Assertions.assertThat(swept).isEqualTo(2);
            org.assertj.core.api.Assertions.assertThat(dir.resolve(".LATEST.0123456789abcdef.tmp")).doesNotExist();
            org.assertj.core.api.Assertions.assertThat(dir.resolve("manifests/.00000000000000000004.json.0123456789abcdef.tmp")).doesNotExist();
            // a data leftover belongs to its attempt's sweep, not to this one
            org.assertj.core.api.Assertions.assertThat(dir.resolve("data/4-0000abcd/.shard-00000.bin.0123456789abcdef.tmp")).exists();
            org.assertj.core.api.Assertions.assertThat(catalog.sweepAbandonedCommitWrites(java.time.Instant.EPOCH)).isZero();
        }
    }
}
