package dev.cairn.storage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/** Builds real shard objects and the manifests that index them, for storage tests. */
final class ManifestFixtures {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private ManifestFixtures() {}

    static int crc(byte[] bytes) {
        CRC32C c = new CRC32C();
        c.update(bytes);
        return (int) c.getValue();
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Writes one shard per worker (entries {@code a} and {@code b/c} of each worker; worker 0 also
     * holds replicated {@code shared}) and returns the manifest indexing them (not committed).
     */
    static Manifest writeShards(CheckpointStore store, long step, int worldSize) throws IOException {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int w = 0; w < worldSize; w++) {
            List<String> names = new ArrayList<>(List.of("a", "b/c"));
            if (w == 0) {
                names.add("shared");
            }
            byte[] object = new byte[0];
            for (String name : names) {
                byte[] content = bytes(name + "@" + w + "#" + step + "-" + "x".repeat(50 + w));
                entries.add(new Manifest.EntryRef(name, w, object.length, content.length, crc(content), name.equals("shared")));
                byte[] grown = new byte[object.length + content.length];
                System.arraycopy(object, 0, grown, 0, object.length);
                System.arraycopy(content, 0, grown, object.length, content.length);
                object = grown;
            }
            String key = Layout.shardKey(saveId, w);
            store.write(key, object);
            shards.add(new Manifest.ShardRef(w, key, object.length, crc(object)));
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("loss", 0.5);
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", step, saveId, Instant.parse("2024-01-02T03:04:05.678Z"),
                worldSize, shards, entries, meta);
    }

    /** A manifest that is not backed by any object. */
    static Manifest sample(long step) {
        String saveId = step + "-0badc0de";
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("epoch", 7L);
        meta.put("loss", 0.125);
        meta.put("note", "warm restart");
        meta.put("final", true);
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", step, saveId, Instant.parse("2024-05-06T07:08:09.123456Z"), 3,
                List.of(new Manifest.ShardRef(0, Layout.shardKey(saveId, 0), 30, 0xdeadbeef),
                        new Manifest.ShardRef(1, Layout.shardKey(saveId, 1), 10, 0x01020304),
                        new Manifest.ShardRef(2, null, 0, 0)),
                List.of(new Manifest.EntryRef("model/w", 0, 0, 10, 0x11111111, false),
                        new Manifest.EntryRef("optimizer/step", 0, 10, 20, 0x89abcdef, true),
                        new Manifest.EntryRef("model/w", 1, 0, 10, 0x22222222, false)),
                meta);
    }

    /** Parses an encoded manifest for editing. */
    static ObjectNode tree(byte[] encoded) throws IOException {
        return (ObjectNode) MAPPER.readTree(encoded);
    }

    /** Re-computes the checksum of an edited document the way the codec does. */
    static byte[] reseal(ObjectNode root) throws IOException {
        root.remove("checksum");
        CRC32C c = new CRC32C();
        c.update(MAPPER.writeValueAsBytes(root));
        root.put("checksum", "crc32c:" + ManifestCodec.hex((int) c.getValue()));
        return MAPPER.writeValueAsBytes(root);
    }
}
