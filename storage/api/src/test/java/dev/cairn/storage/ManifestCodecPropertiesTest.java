package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/** Properties of the manifest codec over generated manifests (jqwik; a failure reports its seed). */
class ManifestCodecPropertiesTest {
    private static final String SOURCE = "file:///ckpt/manifests/x.json";

    /** A valid manifest drawn from {@code seed}: 1-6 workers, shards cut into consecutive entries. */
    static Manifest randomManifest(Random r) {
        long step = r.nextBoolean() ? r.nextInt(1000) : r.nextLong() >>> 2;
        String saveId = step + "-" + Layout.hex8(r.nextInt());
        int world = 1 + r.nextInt(6);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int w = 0; w < world; w++) {
            long length = r.nextInt(4) == 0 ? 0 : r.nextInt(1 << 20);
            shards.add(new Manifest.ShardRef(w, length == 0 && r.nextBoolean() ? null : Layout.shardKey(saveId, w), length, r.nextInt()));
            long offset = 0;
            for (int i = 0; offset < length || (length == 0 && i < 2); i++) {
                long n = Math.min(length - offset, r.nextInt(200_000));
                String name = "p" + i + "/" + "αβγxyz_-.0".charAt(r.nextInt(10)) + Integer.toString(r.nextInt(1 << 20), 36);
                entries.add(new Manifest.EntryRef(name, w, offset, n, r.nextInt(), w == 0 && r.nextInt(5) == 0));
                offset += n;
                if (n == 0 && i > 2) {
                    break;
                }
            }
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        for (int i = r.nextInt(4); i > 0; i--) {
            Object v = switch (r.nextInt(4)) {
                case 0 -> r.nextLong();
                case 1 -> r.nextDouble() * 1e6;
                case 2 -> r.nextBoolean();
                default -> "note ✓ " + r.nextInt();
            };
            meta.put("k" + i, v);
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-" + r.nextInt(100) + "-ü", step, saveId,
                Instant.ofEpochSecond(r.nextInt(2_000_000_000), r.nextInt(1_000_000_000)), world, shards, entries, meta);
    }

    @Property(tries = 300)
    void everyValidManifestRoundTrips(@ForAll long seed) throws Exception {
        Manifest m = randomManifest(new Random(seed));

        byte[] bytes = ManifestCodec.encodeForCommit(m, SOURCE);

        assertThat(ManifestCodec.decode(bytes, SOURCE)).isEqualTo(m);
    }

    @Property(tries = 1000)
    void aSingleCorruptByteIsRejectedOrChangesNothing(@ForAll long seed, @ForAll int position, @ForAll byte value) {
        Manifest m = randomManifest(new Random(seed));
        byte[] bytes = ManifestCodec.encode(m);
        int at = Math.floorMod(position, bytes.length);
        bytes[at] = bytes[at] == value ? (byte) (value ^ 0x01) : value;

        Manifest decoded;
        try {
            decoded = ManifestCodec.decode(bytes, SOURCE);
        } catch (ManifestException e) {
            assertThat(e).hasMessageContaining(SOURCE);
            return;
        }
        assertThat(decoded).isEqualTo(m); // e.g. a changed space between fields: the same document
    }

    @Provide
    Arbitrary<Long> hostile() {
        return Arbitraries.oneOf(
                Arbitraries.of(0L, 1L, -1L, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 1, 1L << 62, (1L << 32) - 1, 1L << 31),
                Arbitraries.longs(),
                Arbitraries.longs().between(-10, 100));
    }

    @Property(tries = 3000)
    void hostileEntryTablesNeverValidateIntoEntriesOutsideTheirShard(
            @ForAll("hostile") long shardLength, @ForAll("hostile") long offset1, @ForAll("hostile") long length1,
            @ForAll("hostile") long offset2, @ForAll("hostile") long length2) {
        String saveId = "7-0badc0de";
        Manifest m;
        try {
            m = new Manifest(ManifestCodec.FORMAT_VERSION, "r", 7, saveId, Instant.EPOCH, 1,
                    List.of(new Manifest.ShardRef(0, shardLength == 0 ? null : Layout.shardKey(saveId, 0), shardLength, 0)),
                    List.of(new Manifest.EntryRef("a", 0, offset1, length1, 0, false), new Manifest.EntryRef("b", 0, offset2, length2, 0, true)),
                    Map.of());
        } catch (RuntimeException e) {
            return;
        }
        Manifest accepted;
        try {
            accepted = ManifestCodec.decode(ManifestCodec.encodeForCommit(m, SOURCE), SOURCE);
        } catch (ManifestException e) {
            return;
        }
        long shard = accepted.shard(0).length();
        assertThat(shard).isNotNegative();
        for (Manifest.EntryRef e : accepted.entries()) {
            assertThat(e.offset()).isNotNegative();
            assertThat(e.length()).isNotNegative();
            assertThat(Math.addExact(e.offset(), e.length())).isLessThanOrEqualTo(shard);
        }
    }
}
