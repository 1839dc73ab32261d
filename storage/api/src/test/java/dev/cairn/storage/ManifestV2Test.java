package dev.cairn.storage;

import static dev.cairn.storage.ManifestFixtures.reseal;
import static dev.cairn.storage.ManifestFixtures.tree;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Format version 2: typed entries (dtype, shape, global layout); version 1 still read. */
class ManifestV2Test {
    private static final String SOURCE = "file:///ckpt/manifests/00000000000000000100.json";
    private static final String SAVE_ID = "100-0badc0de";

    private static Manifest typed(Manifest.Tensor... tensors) {
        List<Manifest.EntryRef> entries = new java.util.ArrayList<>();
        long offset = 0;
        for (int i = 0; i < tensors.length; i++) {
            Manifest.Tensor t = tensors[i];
            long length;
            try {
                length = t.dtype().byteLength(t.shapeArray());
            } catch (RuntimeException e) {
                length = 8;
            }
            entries.add(new Manifest.EntryRef("e" + i, 0, offset, length, i, false, t));
            offset += length;
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", 100, SAVE_ID, Instant.parse("2024-05-06T07:08:09Z"), 1,
                List.of(new Manifest.ShardRef(0, Layout.shardKey(SAVE_ID, 0), Math.max(offset, 1_000_000), 7)), entries, Map.of());
    }

    private static void assertRejected(Manifest m, String reason) {
        assertThatThrownBy(() -> ManifestCodec.encodeForCommit(m, SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining(SOURCE).hasMessageContaining(reason);
    }

    private static Manifest withLength(Manifest.Tensor t, long length) {
        Manifest m = typed();
        return new Manifest(m.formatVersion(), m.runId(), m.step(), m.saveId(), m.createdAt(), 1, m.shards(),
                List.of(new Manifest.EntryRef("w", 0, 0, length, 0, false, t)), Map.of());
    }

    @Test
    void writesVersion2() {
        assertThat(ManifestCodec.FORMAT_VERSION).isEqualTo(2);
    }

    @Test
    void typedEntriesRoundTrip() throws Exception {
        Manifest m = typed(Manifest.Tensor.of(DType.FLOAT32, 4, 3),
                Manifest.Tensor.of(DType.BFLOAT16, 2, 5).withGlobal(new long[] {4, 10}, new long[] {2, 5}),
                Manifest.Tensor.of(DType.INT64),
                Manifest.Tensor.bytes(9),
                Manifest.Tensor.of(DType.JSON, 3),
                Manifest.Tensor.of(DType.COMPLEX128, 0, 7));

        byte[] encoded = ManifestCodec.encodeForCommit(m, SOURCE);
        Manifest decoded = ManifestCodec.decode(encoded, SOURCE);

        assertThat(decoded).isEqualTo(m);
        assertThat(decoded.entries().get(0).tensor().shape()).containsExactly(4L, 3L);
        assertThat(decoded.entries().get(1).tensor().globalShape()).containsExactly(4L, 10L);
        assertThat(decoded.entries().get(1).tensor().globalOffsets()).containsExactly(2L, 5L);
        assertThat(decoded.entries().get(2).tensor().shape()).isEmpty();
        assertThat(decoded.entries().get(2).length()).isEqualTo(8);
        assertThat(new String(encoded, StandardCharsets.UTF_8)).contains("\"dtype\" : \"bfloat16\"").contains("\"formatVersion\" : 2");
    }

    @Test
    void anUntypedEntryIsBytesOfItsLength() {
        Manifest.EntryRef e = new Manifest.EntryRef("x", 0, 0, 12, 0, false);
        assertThat(e.tensor()).isEqualTo(Manifest.Tensor.bytes(12));
        assertThat(e.tensor().dtype()).isEqualTo(DType.BYTES);
    }

    @Test
    void aVersion1ManifestIsStillReadAsUntypedEntries() throws Exception {
        byte[] v1;
        try (InputStream in = ManifestV2Test.class.getResourceAsStream("/manifest-v1.json")) {
            v1 = in.readAllBytes(); // written by the format-1 encoder, before typed entries existed
        }

        Manifest m = ManifestCodec.decode(v1, SOURCE);

        assertThat(m.formatVersion()).isEqualTo(1);
        assertThat(m.entries()).hasSize(3);
        assertThat(m.entries()).allSatisfy(e -> assertThat(e.tensor()).isEqualTo(Manifest.Tensor.bytes(e.length())));
        assertThat(m.metadata()).containsEntry("note", "written by format v1");
        // re-encoded as version 1 it is the same document, byte for byte
        assertThat(ManifestCodec.encode(m)).isEqualTo(v1);
    }

    @Test
    void lengthNotItemsizeTimesShapeIsRejected() {
        assertRejected(withLength(Manifest.Tensor.of(DType.FLOAT32, 4, 3), 47), "length 47 is not float32[4, 3] = 48 bytes");
        assertRejected(withLength(Manifest.Tensor.bytes(5), 6), "length 6 is not bytes[5] = 5 bytes");
    }

    @Test
    void negativeDimensionIsRejected() {
        assertRejected(withLength(Manifest.Tensor.of(DType.INT8, 4, -1), 0), "negative dimension -1");
    }

    @Test
    void shapeWhoseProductOverflowsIsRejected() {
        assertRejected(withLength(Manifest.Tensor.of(DType.FLOAT64, 1L << 31, 1L << 31, 4), 8), "exceeds 2^63 bytes");
    }

    @Test
    void rankAbove32IsRejected() {
        assertRejected(withLength(Manifest.Tensor.of(DType.UINT8, new long[33]), 0), "'shape' has 33 dimensions, more than 32");
        assertThatThrownBy(() -> Manifest.Tensor.of(DType.UINT8, new long[33]).check(0)).hasMessage("rank 33 exceeds 32");
        Manifest.Tensor.of(DType.UINT8, new long[32]).check(0); // 32 is fine
    }

    @Test
    void aPieceOutsideItsGlobalShapeIsRejected() {
        Manifest.Tensor t = Manifest.Tensor.of(DType.FLOAT32, 2, 5);
        assertRejected(withLength(t.withGlobal(new long[] {4, 10}, new long[] {3, 0}), 40), "does not lie inside globalShape [4, 10] (dimension 0)");
        assertRejected(withLength(t.withGlobal(new long[] {4, 10}, new long[] {0, Long.MAX_VALUE}), 40), "(dimension 1)");
        assertRejected(withLength(t.withGlobal(new long[] {4, 10}, new long[] {-1, 0}), 40), "(dimension 0)");
    }

    @Test
    void globalShapeWithoutOffsetsOrOfAnotherRankIsRejected() {
        Manifest.Tensor t = Manifest.Tensor.of(DType.FLOAT32, 2, 5);
        assertRejected(withLength(t.withGlobal(new long[] {4, 10}, null), 40), "globalShape and globalOffsets go together");
        assertRejected(withLength(t.withGlobal(null, new long[] {0, 0}), 40), "globalShape and globalOffsets go together");
        assertRejected(withLength(t.withGlobal(new long[] {40}, new long[] {0}), 40), "one value per dimension");
    }

    @Test
    void unknownDtypeOrBadShapeInTheDocumentIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(typed(Manifest.Tensor.of(DType.FLOAT32, 2))));
        ((ObjectNode) root.get("entries").get(0)).put("dtype", "float8");
        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining("inconsistent").hasMessageContaining("unknown dtype 'float8'");

        ObjectNode noShape = tree(ManifestCodec.encode(typed(Manifest.Tensor.of(DType.FLOAT32, 2))));
        ((ObjectNode) noShape.get("entries").get(0)).remove("shape");
        assertThatThrownBy(() -> ManifestCodec.decode(reseal(noShape), SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining("missing array 'shape'");

        ObjectNode fractional = tree(ManifestCodec.encode(typed(Manifest.Tensor.of(DType.FLOAT32, 2))));
        ((ObjectNode) fractional.get("entries").get(0)).putArray("shape").add(2.5);
        assertThatThrownBy(() -> ManifestCodec.decode(reseal(fractional), SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining("not a 64-bit integer");
    }
}
