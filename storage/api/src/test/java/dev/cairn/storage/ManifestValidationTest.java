package dev.cairn.storage;

import static dev.cairn.storage.ManifestFixtures.sample;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The rules {@link ManifestCodec#encodeForCommit} and {@link ManifestCodec#decode} share (issue #10). */
class ManifestValidationTest {
    private static final String SOURCE = "file:///ckpt/manifests/00000000000000000100.json";

    private static Manifest withShard(Manifest m, int worker, String key, long length) {
        List<Manifest.ShardRef> shards = new ArrayList<>(m.shards());
        Manifest.ShardRef old = shards.get(worker);
        shards.set(worker, new Manifest.ShardRef(worker, key, length, old.crc32c()));
        return new Manifest(m.formatVersion(), m.runId(), m.step(), m.saveId(), m.createdAt(), m.worldSize(), shards, m.entries(), m.metadata());
    }

    private static Manifest withEntries(Manifest m, List<Manifest.EntryRef> entries) {
        return new Manifest(m.formatVersion(), m.runId(), m.step(), m.saveId(), m.createdAt(), m.worldSize(), m.shards(), entries, m.metadata());
    }

    private static void assertRejected(Manifest m, String reason) {
        assertThatThrownBy(() -> ManifestCodec.encodeForCommit(m, SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining(SOURCE).hasMessageContaining(reason);
    }

    @Test
    void theSampleIsValid() throws Exception {
        assertThat(ManifestCodec.decode(ManifestCodec.encodeForCommit(sample(100), SOURCE), SOURCE)).isEqualTo(sample(100));
    }

    @Test
    void entryWhoseEndOverflows64BitsIsRejected() {
        Manifest m = sample(100);
        assertRejected(withEntries(m, List.of(new Manifest.EntryRef("x", 0, 10, Long.MAX_VALUE, 0, false))), "outside the shard");
        assertRejected(withEntries(m, List.of(new Manifest.EntryRef("x", 0, Long.MAX_VALUE, 10, 0, false))), "outside the shard");
    }

    @Test
    void negativeOffsetsAndLengthsAreRejected() {
        Manifest m = sample(100);
        assertRejected(withEntries(m, List.of(new Manifest.EntryRef("x", 0, -1, 5, 0, false))), "outside the shard");
        assertRejected(withEntries(m, List.of(new Manifest.EntryRef("x", 0, 5, -1, 0, false))), "outside the shard");
        assertRejected(withShard(m, 1, m.shard(1).objectKey(), -1), "negative length -1");
    }

    @ParameterizedTest
    @ValueSource(strings = {"../../x", "/etc/passwd", "", "data/100-0badc0de/shard-00000.bin", "data/1-0badc0de/shard-00001.bin", "manifests/x"})
    void shardObjectThatIsNotTheLayoutsKeyIsRejected(String key) {
        assertThatThrownBy(() -> ManifestCodec.encodeForCommit(withShard(sample(100), 1, key, 10), SOURCE))
                .isInstanceOf(ManifestException.class).hasMessageContaining(SOURCE).hasMessageContaining("shard of worker 1");
    }

    @Test
    void shardWithBytesButNoObjectIsRejected() {
        assertRejected(withShard(sample(100), 1, null, 10), "names object none for 10 bytes");
    }

    @Test
    void countsOverTheirBoundsAreRejected() {
        Manifest m = sample(100);
        List<Manifest.ShardRef> many = new ArrayList<>();
        for (int w = 0; w <= ManifestCodec.MAX_WORLD_SIZE; w++) {
            many.add(new Manifest.ShardRef(w, null, 0, 0));
        }
        assertRejected(new Manifest(1, "r", 100, m.saveId(), m.createdAt(), ManifestCodec.MAX_WORLD_SIZE + 1, many, List.of(), Map.of()),
                "world size " + (ManifestCodec.MAX_WORLD_SIZE + 1));
        Map<String, Object> meta = new java.util.HashMap<>();
        for (int i = 0; i <= ManifestCodec.MAX_METADATA; i++) {
            meta.put("k" + i, i);
        }
        assertRejected(new Manifest(1, "r", 100, m.saveId(), m.createdAt(), 3, m.shards(), m.entries(), meta), "metadata fields");
    }

    @Test
    void anEntryThatIsAlsoADirectoryOfAnotherIsRejected() throws Exception {
        Manifest m = sample(100);
        assertRejected(withEntries(m, List.of(new Manifest.EntryRef("a", 0, 0, 1, 0, false), new Manifest.EntryRef("a/b", 0, 1, 1, 0, false))),
                "both a file and the directory of entry 'a/b'");
        // the same names in different workers' directories restore fine
        assertThat(ManifestCodec.decode(ManifestCodec.encode(withEntries(m,
                List.of(new Manifest.EntryRef("a", 0, 0, 1, 0, false), new Manifest.EntryRef("a/b", 1, 1, 1, 0, false)))), SOURCE).entries())
                .hasSize(2);
    }

    @Test
    void anEntryNameSegmentLongerThan255BytesIsRejected() {
        String name = "model/" + "x".repeat(256);
        assertRejected(withEntries(sample(100), List.of(new Manifest.EntryRef(name, 0, 0, 1, 0, false))), "longer than 255 bytes");
    }
}
