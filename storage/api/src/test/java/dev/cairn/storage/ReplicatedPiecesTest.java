package dev.cairn.storage;

import static dev.cairn.storage.ManifestFixtures.crc;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A replicated entry split into pieces across workers: the validator's tiling rule and reassembly on read. */
class ReplicatedPiecesTest {
    private static final String SOURCE = "manifests/step-0000000100.json";
    private static final String SAVE = "100-0badc0de";
    private static final Manifest.Tensor T10 = Manifest.Tensor.of(DType.UINT8, 10);

    /** A manifest of 3 workers with shards of 10 bytes each and the given entries. */
    private static Manifest manifest(int version, Manifest.EntryRef... entries) {
        List<Manifest.ShardRef> shards = new ArrayList<>();
        for (int w = 0; w < 3; w++) {
            shards.add(new Manifest.ShardRef(w, Layout.shardKey(SAVE, w), 10, 0));
        }
        return new Manifest(version, "run-1", 100, SAVE, Instant.parse("2024-05-06T07:08:09Z"), 3, shards, List.of(entries), Map.of());
    }

    private static Manifest.EntryRef piece(int worker, long entryOffset, long length, Manifest.Tensor t) {
        return new Manifest.EntryRef("opt/m", worker, 0, length, 0, true, t, entryOffset);
    }

    private static void assertRejected(Manifest m, String... reason) {
        assertThatThrownBy(() -> ManifestCodec.encodeForCommit(m, SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining(SOURCE).hasMessageContaining("replicated entry 'opt/m'")
                .hasMessageContainingAll(reason);
    }

    @Test
    void piecesThatTileTheEntryRoundTrip() throws Exception {
        Manifest m = manifest(2, piece(2, 7, 3, T10), piece(0, 0, 4, T10), piece(1, 4, 3, T10));
        Manifest back = ManifestCodec.decode(ManifestCodec.encodeForCommit(m, SOURCE), SOURCE);
        assertThat(back).isEqualTo(m);
        assertThat(back.entriesFor(1)).singleElement().satisfies(e -> assertThat(e.entryOffset()).isZero());
        assertThat(back.pieces(back.entriesFor(1).get(0))).extracting(Manifest.EntryRef::worker).containsExactly(0, 1, 2);
        assertThat(back.logicalLength(back.entriesFor(2).get(0))).isEqualTo(10);
    }

    @Test
    void aGapIsRejected() {
        assertRejected(manifest(2, piece(0, 0, 4, T10), piece(2, 7, 3, T10)), "bytes [4, 7) are stored by no piece");
        assertRejected(manifest(2, piece(0, 0, 4, T10), piece(1, 4, 3, T10)), "bytes [7, 10) are stored by no piece");
    }

    @Test
    void anOverlapIsRejected() {
        assertRejected(manifest(2, piece(0, 0, 5, T10), piece(1, 4, 6, T10)), "piece of worker 1 at 4 overlaps", "ends at 5");
    }

    @Test
    void bytesStoredTwiceAreRejected() {
        assertRejected(manifest(2, piece(0, 0, 10, T10), piece(1, 0, 10, T10)), "bytes from 0 are stored twice (workers 0 and 1)");
    }

    @Test
    void aPieceEndingPastTheEntryIsRejected() {
        assertRejected(manifest(2, piece(0, 0, 4, T10), piece(1, 4, 8, T10)), "ends past the entry's 10 bytes");
    }

    @Test
    void piecesOfInconsistentTypesAreRejected() {
        assertRejected(manifest(2, piece(0, 0, 4, T10), piece(1, 4, 6, Manifest.Tensor.of(DType.INT8, 10))),
                "piece of worker 1 has type int8[10]", "piece of worker 0 has uint8[10]");
        assertRejected(manifest(2, piece(0, 0, 4, T10), piece(1, 4, 6, Manifest.Tensor.of(DType.UINT8, 2, 5))), "uint8[2, 5]");
    }

    @Test
    void anEntryOffsetOnAShardedEntryIsRejected() {
        Manifest m = manifest(2, new Manifest.EntryRef("w", 0, 0, 4, 0, false, Manifest.Tensor.bytes(4), 2));
        assertThatThrownBy(() -> ManifestCodec.encodeForCommit(m, SOURCE)).isInstanceOf(ManifestException.class)
                .hasMessageContaining("entry 'w' of worker 0 is not replicated but has entryOffset 2");
    }

    @Test
    void aVersion1ReplicatedEntryStoredOnceIsValid() throws Exception {
        Manifest m = manifest(1, new Manifest.EntryRef("opt/m", 1, 0, 10, 0, true));
        assertThat(ManifestCodec.decode(ManifestCodec.encodeForCommit(m, SOURCE), SOURCE)).isEqualTo(m);
    }

    @Test
    void aVersion1CheckpointWithAReplicatedEntryStoredOnceRestoresOnEveryWorker(@TempDir Path dir) throws Exception {
        CheckpointStore store = CheckpointStores.open(dir.toUri().toString());
        Manifest v2 = ManifestFixtures.writeShards(store, 100, 3);
        Manifest v1 = new Manifest(1, v2.runId(), v2.step(), v2.saveId(), v2.createdAt(), v2.worldSize(), v2.shards(),
                v2.entries().stream().map(e -> new Manifest.EntryRef(e.name(), e.worker(), e.offset(), e.length(), e.crc32c(), e.replicated()))
                        .toList(), v2.metadata());
        Manifest m = ManifestCodec.decode(ManifestCodec.encodeForCommit(v1, SOURCE), SOURCE);
        CheckpointCatalog catalog = new CheckpointCatalog(store);
        Manifest.EntryRef shared = v1.entries().stream().filter(Manifest.EntryRef::replicated).findFirst().orElseThrow();
        byte[] expected = Arrays.copyOfRange(store.readAll(m.shard(0).objectKey()), (int) shared.offset(), (int) (shared.offset() + shared.length()));

        assertThat(m.formatVersion()).isEqualTo(1);
        for (int w = 0; w < 3; w++) {
            assertThat(m.entriesFor(w)).filteredOn(Manifest.EntryRef::replicated).singleElement()
                    .satisfies(e -> assertThat(e.entryOffset()).isZero());
            assertThat(catalog.readEntry(m, m.entry(w, "shared").orElseThrow())).isEqualTo(expected);
        }
        assertThat(catalog.verify(m)).isEmpty();
    }

    @Test
    void aSplitEntryIsReassembledFromRangedReadsAndEachPieceIsChecked(@TempDir Path dir) throws Exception {
        CheckpointStore store = CheckpointStores.open(dir.toUri().toString());
        byte[] whole = new byte[1000];
        new Random(11).nextBytes(whole);
        long[] cuts = {0, 333, 666, 1000};
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        Manifest.Tensor t = Manifest.Tensor.of(DType.FLOAT32, 250);
        for (int w = 0; w < 3; w++) {
            byte[] pad = ("pad-" + w).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] piece = Arrays.copyOfRange(whole, (int) cuts[w], (int) cuts[w + 1]);
            byte[] object = new byte[pad.length + piece.length];
            System.arraycopy(pad, 0, object, 0, pad.length);
            System.arraycopy(piece, 0, object, pad.length, piece.length);
            store.write(Layout.shardKey(SAVE, w), object);
            shards.add(new Manifest.ShardRef(w, Layout.shardKey(SAVE, w), object.length, crc(object)));
            entries.add(new Manifest.EntryRef("opt/m", w, pad.length, piece.length, crc(piece), true, t, cuts[w]));
        }
        Manifest m = ManifestCodec.decode(ManifestCodec.encodeForCommit(new Manifest(2, "run-1", 100, SAVE, Instant.parse("2024-05-06T07:08:09Z"),
                3, shards, entries, Map.of()), SOURCE), SOURCE);
        CheckpointCatalog catalog = new CheckpointCatalog(store);

        for (int w = 0; w < 3; w++) {
            assertThat(catalog.readEntry(m, m.entry(w, "opt/m").orElseThrow())).isEqualTo(whole);
        }
        assertThat(catalog.verify(m)).isEmpty();

        // a piece whose bytes no longer match its CRC32C fails the read and the verification
        byte[] object = store.readAll(Layout.shardKey(SAVE, 1));
        object[object.length - 1] ^= 1;
        store.delete(Layout.shardKey(SAVE, 1));
        store.write(Layout.shardKey(SAVE, 1), object);
        assertThatThrownBy(() -> {
            try (InputStream in = catalog.openEntry(m, m.entry(0, "opt/m").orElseThrow())) {
                in.readAllBytes();
            }
        }).isInstanceOf(CorruptObjectException.class).hasMessageContaining("entry 'opt/m' (piece at 333) of worker 1");
        assertThat(catalog.verify(m)).anySatisfy(p -> assertThat(p).contains("opt/m"));
    }

    @Test
    void aMissingPieceIsTheStoresOwnErrorWhenReadAndNothingIsOpenedEarly(@TempDir Path dir) throws Exception {
        // a checkpoint deleted by retention while it is read: the caller sees NoSuchObjectException
        // (not an unchecked wrapper), and opening or closing the stream opens no piece
        CheckpointStore store = CheckpointStores.open(dir.toUri().toString());
        byte[] piece = new byte[5];
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int w = 0; w < 2; w++) {
            shards.add(new Manifest.ShardRef(w, Layout.shardKey(SAVE, w), piece.length, crc(piece)));
            entries.add(new Manifest.EntryRef("opt/m", w, 0, piece.length, crc(piece), true, T10, w * 5L));
        }
        store.write(Layout.shardKey(SAVE, 1), piece);
        Manifest m = new Manifest(2, "run-1", 100, SAVE, Instant.parse("2024-05-06T07:08:09Z"), 2, shards, entries, Map.of());
        CheckpointCatalog catalog = new CheckpointCatalog(store);

        InputStream in = catalog.openEntry(m, m.entry(1, "opt/m").orElseThrow());
        in.close();
        assertThatThrownBy(() -> {
            try (InputStream again = catalog.openEntry(m, m.entry(1, "opt/m").orElseThrow())) {
                again.readAllBytes();
            }
        }).isInstanceOf(NoSuchObjectException.class).hasMessageContaining("shard-00000");
        assertThatThrownBy(() -> catalog.readEntry(m, m.entry(0, "opt/m").orElseThrow())).isInstanceOf(NoSuchObjectException.class);
    }
}
