package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Region reads of logical tensors ({@link CheckpointCatalog#readRegion}) against a real store: the
 * local subclass runs in the default build, the S3 one against S3Proxy (storage/s3).
 */
public abstract class RegionReadContractTest {
    private CountingStore store;
    private CheckpointCatalog catalog;
    private boolean direct;

    /** How many random regions the seeded test reads (a backend whose requests are slow asks for fewer). */
    protected int randomRegions() {
        return 300;
    }

    /** A store with an empty root, fresh for each test; this class closes it. */
    protected abstract CheckpointStore openStore() throws IOException;

    @BeforeEach
    void open() throws IOException {
        store = CountingStore.of(openStore());
        catalog = new CheckpointCatalog(store);
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    /** Commits the fixture's manifest and reads it back validated, as a restoring worker would. */
    private Manifest commit(TensorFixture f, long step) throws IOException {
        assertThat(catalog.commit(f.write(step))).isEqualTo(CheckpointCatalog.CommitOutcome.COMMITTED);
        return catalog.read(step);
    }

    /** Reads a region, checks it against the original element by element and checks the bytes-read bound. */
    private RegionRead check(Manifest m, TensorFixture.Whole whole, long[] offsets, long[] shape) throws IOException {
        byte[] expected = TensorFixture.region(whole, offsets, shape);
        // alternately a heap and a direct buffer (the sidecar reads into a mapped file)
        direct = !direct;
        ByteBuffer dest = (direct ? ByteBuffer.allocateDirect(expected.length + 7) : ByteBuffer.allocate(expected.length + 7)).position(3);
        store.reset();
        RegionRead read = catalog.readRegion(m, whole.name(), whole.dtype(), offsets, shape, dest);
        assertThat(dest.position()).isEqualTo(3 + expected.length);
        byte[] got = new byte[expected.length];
        dest.get(3, got);
        assertThat(got).as("region %s at %s of %s", List.of(shape), List.of(offsets), whole.name()).isEqualTo(expected);
        assertThat(read.bytesNeeded()).isEqualTo(expected.length);
        assertThat(read.bytesRead()).isEqualTo(store.bytes.get());
        assertThat(read.rangedReads()).isEqualTo(store.reads.get());
        assertThat((double) store.bytes.get()).isLessThanOrEqualTo(1.05 * expected.length);
        return read;
    }

    private static long[] l(long... v) {
        return v;
    }

    @Test
    void rowBlocksOfFourWorkersReadAsThreeAndAsSix() throws IOException {
        TensorFixture f = new TensorFixture(store, 4, 1);
        TensorFixture.Whole w = f.random("model/w", DType.INT32, 10, 6);
        f.blocks(w, 0, 3, 3, 2, 2);
        Manifest m = commit(f, 1);

        long[][] three = {{0, 4}, {4, 3}, {7, 3}};
        for (long[] rows : three) {
            RegionRead r = check(m, w, l(rows[0], 0), l(rows[1], 6));
            assertThat(r.bytesRead()).isEqualTo(r.bytesNeeded());
        }
        long[][] six = {{0, 2}, {2, 2}, {4, 2}, {6, 2}, {8, 1}, {9, 1}};
        for (long[] rows : six) {
            check(m, w, l(rows[0], 0), l(rows[1], 6));
        }
        // rows 0..4 lie in pieces 0 (whole, rows 0..3) and 1 (row 3): one ranged read each
        RegionRead r = check(m, w, l(0, 0), l(4, 6));
        assertThat(r.rangedReads()).isEqualTo(2);
        assertThat(r.piecesRead()).isEqualTo(2);
    }

    @Test
    void columnBlocksReadAsRowsAndAsOtherColumns() throws IOException {
        TensorFixture f = new TensorFixture(store, 4, 2);
        TensorFixture.Whole w = f.random("model/emb", DType.FLOAT64, 7, 10);
        f.blocks(w, 1, 3, 3, 2, 2);
        Manifest m = commit(f, 1);

        check(m, w, l(0, 0), l(7, 4));
        check(m, w, l(0, 4), l(7, 3));
        check(m, w, l(0, 7), l(7, 3));
        RegionRead rows = check(m, w, l(2, 0), l(3, 10));
        assertThat(rows.piecesRead()).isEqualTo(4);
        // every piece stores 3 whole rows of the region contiguously: one read per piece
        assertThat(rows.rangedReads()).isEqualTo(4);
        check(m, w, l(0, 0), l(7, 10));
    }

    @Test
    void oneDimensionalTensorSplitUnevenly() throws IOException {
        TensorFixture f = new TensorFixture(store, 4, 3);
        TensorFixture.Whole w = f.random("bias", DType.FLOAT32, 13);
        f.blocks(w, 0, 4, 4, 4, 1);
        Manifest m = commit(f, 1);

        check(m, w, l(0), l(5));
        check(m, w, l(5), l(4));
        check(m, w, l(9), l(4));
        check(m, w, l(12), l(1));
        check(m, w, l(13), l(0));
    }

    @Test
    void tensorSmallerThanTheWorldHasEmptyAndMissingPieces() throws IOException {
        TensorFixture f = new TensorFixture(store, 4, 4);
        TensorFixture.Whole w = f.random("tiny", DType.INT64, 2, 3);
        f.piece(w, 0, l(0, 0), l(1, 3)).piece(w, 1, l(1, 0), l(1, 3)).piece(w, 2, l(2, 0), l(0, 3)); // worker 3: none
        Manifest m = commit(f, 1);

        assertThat(catalog.tensors(m)).singleElement().satisfies(t -> {
            assertThat(t.kind()).isEqualTo(LogicalTensor.Kind.SHARDED);
            assertThat(t.globalShape()).containsExactly(2L, 3L);
            assertThat(t.pieces()).extracting(LogicalTensor.Piece::worker).containsExactly(0, 1, 2);
        });
        check(m, w, l(0, 0), l(2, 3));
        check(m, w, l(1, 1), l(1, 2));
        check(m, w, l(2, 0), l(0, 3));
    }

    @Test
    void randomRegionsOfAGridMatchTheOriginalElementByElement() throws IOException {
        TensorFixture f = new TensorFixture(store, 6, 5);
        TensorFixture.Whole w = f.random("grid", DType.BFLOAT16, 9, 8, 5);
        long[] rowCuts = {0, 4, 9};
        long[] colCuts = {0, 3, 5, 8};
        int worker = 0;
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                f.piece(w, worker++, l(rowCuts[i], colCuts[j], 0), l(rowCuts[i + 1] - rowCuts[i], colCuts[j + 1] - colCuts[j], 5));
            }
        }
        Manifest m = commit(f, 1);

        Random random = new Random(42);
        long needed = 0;
        long read = 0;
        for (int n = 0; n < randomRegions(); n++) {
            long[] offsets = new long[3];
            long[] shape = new long[3];
            for (int d = 0; d < 3; d++) {
                long a = random.nextInt((int) w.shape()[d] + 1);
                long b = random.nextInt((int) w.shape()[d] + 1);
                offsets[d] = Math.min(a, b);
                shape[d] = Math.abs(a - b);
            }
            RegionRead r = check(m, w, offsets, shape);
            needed += r.bytesNeeded();
            read += r.bytesRead();
        }
        assertThat(needed).isPositive();
        assertThat((double) read).isLessThanOrEqualTo(1.05 * needed);
    }

    @Test
    void smallGapsAreCoalescedWithinFivePercentLargeGapsAreNot() throws IOException {
        TensorFixture f = new TensorFixture(store, 1, 6);
        TensorFixture.Whole w = f.random("m", DType.UINT8, 100, 21);
        f.blocks(w, 0, 100);
        Manifest m = commit(f, 1);

        // 20 of 21 columns: a 1-byte gap per 20 bytes is exactly the 5% budget: one ranged read
        RegionRead narrow = check(m, w, l(0, 0), l(100, 20));
        assertThat(narrow.rangedReads()).isEqualTo(1);
        assertThat(narrow.bytesRead()).isEqualTo(99 * 21 + 20);
        // 10 of 21 columns: 11-byte gaps; the 50-byte budget (5% of 1000) merges the first 4, then one read per row
        RegionRead wide = check(m, w, l(0, 0), l(100, 10));
        assertThat(wide.rangedReads()).isEqualTo(96);
        assertThat(wide.bytesRead()).isEqualTo(1000 + 4 * 11);
        if (store instanceof CountingStore.Ranged ranged) {
            assertThat(ranged.opens.get()).as("one open of the object for all 96 ranges").isEqualTo(2); // narrow, wide
        }
    }

    @Test
    void replicatedAndUnshardedEntriesAreReadAsWholeTensors() throws IOException {
        TensorFixture f = new TensorFixture(store, 3, 7);
        TensorFixture.Whole mirrored = f.random("mirrored", DType.FLOAT32, 5, 7);
        TensorFixture.Whole own = f.random("step", DType.INT64);
        TensorFixture.Whole rng0 = f.random("rng", DType.UINT8, 16);
        f.replicated(mirrored, 3).unsharded(own, 1).unsharded(rng0, 0);
        TensorFixture.Whole rng2 = f.random("rng", DType.UINT8, 16);
        f.unsharded(rng2, 2);
        Manifest m = commit(f, 1);

        check(m, mirrored, l(0, 0), l(5, 7));
        // a region across the byte pieces: one ranged read per byte piece it touches at most
        check(m, mirrored, l(1, 2), l(3, 4));
        check(m, own, l(), l());
        assertThat(catalog.tensors(m)).extracting(LogicalTensor::name, LogicalTensor::kind).containsExactly(
                org.assertj.core.groups.Tuple.tuple("mirrored", LogicalTensor.Kind.REPLICATED),
                org.assertj.core.groups.Tuple.tuple("rng", LogicalTensor.Kind.UNSHARDED),
                org.assertj.core.groups.Tuple.tuple("rng", LogicalTensor.Kind.UNSHARDED),
                org.assertj.core.groups.Tuple.tuple("step", LogicalTensor.Kind.UNSHARDED));
        assertThatThrownBy(() -> catalog.readRegion(m, "rng", l(0), l(16), ByteBuffer.allocate(16)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'rng'").hasMessageContaining("workers [0, 2]");
        ByteBuffer dest = ByteBuffer.allocate(16);
        catalog.readRegion(m, LogicalTensors.find(m, "rng", 2), DType.UINT8, l(0), l(16), dest);
        assertThat(dest.array()).isEqualTo(rng2.data());
    }

    @Test
    void aWholePieceReadIsChecksummed() throws IOException {
        TensorFixture f = new TensorFixture(store, 2, 8);
        TensorFixture.Whole w = f.random("w", DType.INT16, 4, 4);
        f.blocks(w, 0, 2, 2);
        Manifest m = commit(f, 1);
        byte[] b = store.readAll(m.shard(1).objectKey());
        b[b.length - 1] ^= 1;
        store.write(m.shard(1).objectKey(), b);

        assertThatThrownBy(() -> catalog.readRegion(m, "w", l(0, 0), l(4, 4), ByteBuffer.allocateDirect(32)))
                .isInstanceOf(CorruptObjectException.class).hasMessageContaining("entry 'w'").hasMessageContaining("worker 1")
                .hasMessageContaining("checksum");
        // a partial read of the damaged piece cannot be checked (one CRC per entry): a documented limit
        ByteBuffer dest = ByteBuffer.allocate(4);
        catalog.readRegion(m, "w", l(3, 2), l(1, 2), dest);
        assertThat(dest.array()).isNotEqualTo(TensorFixture.region(w, l(3, 2), l(1, 2)));
    }

    @Test
    void aMissingShardObjectIsNoSuchObject() throws IOException {
        TensorFixture f = new TensorFixture(store, 2, 12);
        TensorFixture.Whole w = f.random("w", DType.INT16, 4, 4);
        f.blocks(w, 0, 2, 2);
        Manifest m = commit(f, 1);
        store.delete(m.shard(1).objectKey());

        assertThatThrownBy(() -> catalog.readRegion(m, "w", l(1, 0), l(2, 4), ByteBuffer.allocate(16)))
                .isInstanceOf(NoSuchObjectException.class).hasMessageContaining(m.shard(1).objectKey());
        check(m, w, l(0, 0), l(2, 4)); // worker 0's piece still reads
    }

    @Test
    void badRequestsAreOneLineErrorsNamingTheEntryAndReadNothing() throws IOException {
        TensorFixture f = new TensorFixture(store, 2, 9);
        TensorFixture.Whole w = f.random("model/w", DType.FLOAT32, 6, 4);
        f.piece(w, 0, l(0, 0), l(3, 4)).piece(w, 1, l(4, 0), l(2, 4)); // row 3 is stored by no piece
        Manifest m = commit(f, 1);
        store.reset();

        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(0, 0), l(7, 4), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("entry 'model/w': region [7, 4] at [0, 0] lies outside the global shape [6, 4] (dimension 0)");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(Long.MAX_VALUE, 0), l(Long.MAX_VALUE, 1), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("lies outside the global shape");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(1, 1), l(1, Long.MAX_VALUE), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("lies outside the global shape [6, 4] (dimension 1)");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(0), l(6), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not have the tensor's rank 2");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(0, 0), l(2, 4), ByteBuffer.allocate(31)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("entry 'model/w': region [2, 4] at [0, 0] of float32 needs 32 bytes, dest has 31");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", DType.FLOAT64, l(0, 0), l(2, 4), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("entry 'model/w' is float32, not the requested float64");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/w", l(2, 0), l(3, 4), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("entry 'model/w': 4 of the 12 elements of region [3, 4] at [2, 0] are stored by no piece (global shape [6, 4], 2 pieces)");
        assertThatThrownBy(() -> catalog.readRegion(m, "model/v", l(0), l(1), ByteBuffer.allocate(1024)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("no entry 'model/v' in the checkpoint of step 1");
        assertThat(store.reads.get()).isZero();
        check(m, w, l(4, 1), l(2, 3)); // what is stored still reads
    }

    @Test
    void overlappingPiecesAreAHostileManifest() throws IOException {
        TensorFixture f = new TensorFixture(store, 3, 10);
        TensorFixture.Whole w = f.random("w", DType.INT8, 6, 6);
        f.piece(w, 0, l(0, 0), l(3, 6)).piece(w, 1, l(3, 0), l(3, 3)).piece(w, 2, l(2, 2), l(2, 2));
        Manifest m = commit(f, 1); // the codec checks each entry alone: this manifest decodes

        assertThatThrownBy(() -> catalog.tensors(m)).isInstanceOf(ManifestException.class)
                .hasMessage("manifest of step 1: pieces of entry 'w' overlap: worker 0 stores [3, 6] at [0, 0], worker 2 stores [2, 2] at [2, 2]");
        assertThatThrownBy(() -> catalog.readRegion(m, "w", l(4, 4), l(1, 1), ByteBuffer.allocate(1)))
                .isInstanceOf(ManifestException.class).hasMessageContaining("overlap");
    }

    @Test
    void piecesThatDisagreeOrMixKindsAreAHostileManifest() throws IOException {
        TensorFixture f = new TensorFixture(store, 2, 11);
        TensorFixture.Whole a = f.random("a", DType.INT8, 4);
        TensorFixture.Whole a2 = new TensorFixture.Whole("a", DType.UINT8, l(4), a.data());
        f.piece(a, 0, l(0), l(2)).piece(a2, 1, l(2), l(2));
        TensorFixture.Whole b = f.random("b", DType.INT8, 4);
        f.piece(b, 0, l(0), l(2)).unsharded(new TensorFixture.Whole("b", DType.INT8, l(2), new byte[2]), 1);
        Manifest m = commit(f, 1);

        assertThatThrownBy(() -> LogicalTensors.find(m, "a", -1)).isInstanceOf(ManifestException.class)
                .hasMessage("manifest of step 1: pieces of entry 'a' disagree: worker 0 has int8 of global shape [4], worker 1 has uint8 of global shape [4]");
        assertThatThrownBy(() -> LogicalTensors.find(m, "b", -1)).isInstanceOf(ManifestException.class)
                .hasMessage("manifest of step 1: entry 'b' is a piece of a global tensor on worker 0 but unsharded on worker 1");
    }
}
