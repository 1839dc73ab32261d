package dev.cairn.storage;

import static dev.cairn.storage.ManifestFixtures.reseal;
import static dev.cairn.storage.ManifestFixtures.sample;
import static dev.cairn.storage.ManifestFixtures.tree;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ManifestCodecTest {
    private static final String SOURCE = "file:///ckpt/manifests/00000000000000000100.json";

    @Test
    void roundTripKeepsEveryField() throws Exception {
        Manifest m = sample(100);

        Manifest decoded = ManifestCodec.decode(ManifestCodec.encode(m), SOURCE);

        assertThat(decoded).isEqualTo(m);
        assertThat(decoded.metadata()).containsExactly(
                java.util.Map.entry("epoch", 7L), java.util.Map.entry("loss", 0.125),
                java.util.Map.entry("note", "warm restart"), java.util.Map.entry("final", true));
        assertThat(decoded.entries()).filteredOn(Manifest.EntryRef::replicated).extracting(Manifest.EntryRef::name)
                .containsExactly("optimizer/step");
        assertThat(decoded.shard(2).objectKey()).isNull();
        assertThat(decoded.shard(2).length()).isZero();
        // crc values with the high bit set survive the hex form
        assertThat(decoded.shard(0).crc32c()).isEqualTo(0xdeadbeef);
    }

    @Test
    void aFlippedByteFailsTheChecksum() throws Exception {
        byte[] encoded = ManifestCodec.encode(sample(100));
        String text = new String(encoded, StandardCharsets.UTF_8);
        int at = text.indexOf("warm restart");
        encoded[at] ^= 0x01; // 'w' -> 'v': still valid JSON, different content

        assertThatThrownBy(() -> ManifestCodec.decode(encoded, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining(SOURCE)
                .hasMessageContaining("checksum");
    }

    @Test
    void anEditedFieldFailsTheChecksum() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("shards").get(1)).put("length", 11);
        byte[] edited = ManifestFixtures.MAPPER.writeValueAsBytes(root);

        assertThatThrownBy(() -> ManifestCodec.decode(edited, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("fails its checksum");
    }

    @ParameterizedTest
    @ValueSource(strings = {"deadbee", "deadbeef0", "DEADBEEF", "deadbeeg", "-eadbeef", " deadbee"})
    void aCrcThatIsNotEightLowerCaseHexDigitsIsRejected(String crc) throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("entries").get(0)).put("crc32c", crc);
        byte[] resealed = reseal(root);

        assertThatThrownBy(() -> ManifestCodec.decode(resealed, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining(SOURCE)
                .hasMessageContaining("crc32c '" + crc + "' is not 8 hex digits");
    }

    @Test
    void hexKeepsLeadingZeros() {
        assertThat(ManifestCodec.hex(0)).isEqualTo("00000000");
        assertThat(ManifestCodec.hex(0x00abcdef)).isEqualTo("00abcdef");
        assertThat(ManifestCodec.hex(0xdeadbeef)).isEqualTo("deadbeef");
    }

    @Test
    void truncatedJsonIsRejected() {
        byte[] encoded = ManifestCodec.encode(sample(100));
        byte[] truncated = Arrays.copyOf(encoded, encoded.length / 2);

        assertThatThrownBy(() -> ManifestCodec.decode(truncated, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining(SOURCE)
                .hasMessageContaining("not valid JSON");
    }

    @Test
    void emptyDocumentIsRejected() {
        assertThatThrownBy(() -> ManifestCodec.decode(new byte[0], SOURCE)).isInstanceOf(ManifestException.class);
        assertThatThrownBy(() -> ManifestCodec.decode("[1]".getBytes(StandardCharsets.UTF_8), SOURCE))
                .isInstanceOf(ManifestException.class);
    }

    @Test
    void unknownFormatVersionIsRejectedEvenWithAValidChecksum() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        root.put("formatVersion", 3);
        byte[] resealed = reseal(root);

        assertThatThrownBy(() -> ManifestCodec.decode(resealed, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("unsupported format version 3");
    }

    @Test
    void missingChecksumIsRejected() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        root.remove("checksum");
        byte[] bytes = ManifestFixtures.MAPPER.writeValueAsBytes(root);

        assertThatThrownBy(() -> ManifestCodec.decode(bytes, SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("no checksum");
    }

    @Test
    void resealWithoutEditsDecodes() throws Exception {
        // guards the helper the consistency tests rely on: only the edit makes them fail
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        assertThat(ManifestCodec.decode(reseal(root), SOURCE)).isEqualTo(sample(100));
    }

    @Test
    void entryOutsideItsShardIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("entries").get(2)).put("offset", 5); // [5, +10) of a 10-byte shard

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("inconsistent")
                .hasMessageContaining("lies outside the shard of worker 1");
    }

    @Test
    void saveIdOfAnotherStepIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        root.put("saveId", "99-0badc0de");

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("does not belong to step 100");
    }

    @Test
    void twoShardsOfOneWorkerAreInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("shards").get(2)).put("worker", 1);

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("two shards of worker 1");
    }

    @Test
    void missingShardIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ArrayNode) root.get("shards")).remove(2);

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("2 shards for world size 3");
    }

    @ParameterizedTest
    @ValueSource(strings = {"../x", "/etc/passwd", "model/\u0000w", "a/./b", "a\\b"})
    void unsafeEntryNamesAreInconsistent(String name) throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("entries").get(0)).put("name", name);

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining(SOURCE)
                .hasMessageContaining("entry name");
    }

    @Test
    void duplicateEntryOfOneWorkerIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("entries").get(2)).put("worker", 0);

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("appears twice");
    }

    @Test
    void unsafeObjectKeyIsInconsistent() throws Exception {
        ObjectNode root = tree(ManifestCodec.encode(sample(100)));
        ((ObjectNode) root.get("shards").get(0)).put("object", "../../etc/passwd");

        assertThatThrownBy(() -> ManifestCodec.decode(reseal(root), SOURCE))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("inconsistent");
    }
}
