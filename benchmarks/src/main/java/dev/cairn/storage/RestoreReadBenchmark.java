package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The restore's hot path on local storage, from the page cache: every entry of a shard read through
 * {@link CheckpointCatalog#openEntry} (a ranged read of the local store, CRC32C checked) into warm
 * heap arrays, beside the plain read {@code cairn bench} uses as the restore's baseline, and the two
 * halves of the checked read on their own (the store's ranged read without the check; the check
 * without the read).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g"})
public class RestoreReadBenchmark {
    @Param({"64"})
    int shardMiB;

    @Param({"8192"})
    int entryKiB;

    private Path dir;
    private CheckpointStore store;
    private CheckpointCatalog catalog;
    private Manifest manifest;
    private Path file;
    private byte[] dest;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        dir = Files.createTempDirectory("cairn-jmh-");
        store = CheckpointStores.open(StorageUri.parse(dir.toString()), true);
        catalog = new CheckpointCatalog(store);
        int bytes = shardMiB << 20;
        int entry = entryKiB << 10;
        byte[] data = new byte[bytes];
        for (int i = 0; i < bytes; i++) {
            data[i] = (byte) (i * 31 + (i >>> 13));
        }
        String saveId = "1-0000beef";
        String key = Layout.shardKey(saveId, 0);
        store.write(key, data);
        file = dir.resolve(key);
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int off = 0, e = 0; off < bytes; off += entry, e++) {
            int n = Math.min(entry, bytes - off);
            CRC32C crc = new CRC32C();
            crc.update(data, off, n);
            entries.add(new Manifest.EntryRef("model/layer_" + e + "/kernel", 0, off, n, (int) crc.getValue(), false));
        }
        CRC32C whole = new CRC32C();
        whole.update(data);
        manifest = new Manifest(ManifestCodec.FORMAT_VERSION, "jmh", 1, saveId, Instant.now(), 1,
                List.of(new Manifest.ShardRef(0, key, bytes, (int) whole.getValue())), entries, Map.of());
        dest = new byte[bytes];
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        store.close();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /** What a restoring trainer does: every entry through {@code openEntry}, CRC32C checked. */
    @Benchmark
    public byte[] checkedEntryReads() throws IOException {
        for (Manifest.EntryRef e : manifest.entries()) {
            try (InputStream in = catalog.openEntry(manifest, e)) {
                if (in.readNBytes(dest, (int) e.offset(), (int) e.length()) != e.length()) {
                    throw new IOException("short read of " + e.name());
                }
            }
        }
        return dest;
    }

    /** The restore's baseline in {@code cairn bench}: positional channel reads into the same heap arrays. */
    @Benchmark
    public byte[] plainChannelReads() throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (Manifest.EntryRef e : manifest.entries()) {
                ByteBuffer b = ByteBuffer.wrap(dest, (int) e.offset(), (int) e.length());
                while (b.hasRemaining()) {
                    if (ch.read(b, b.position()) < 0) {
                        throw new IOException("short read of " + e.name());
                    }
                }
            }
        }
        return dest;
    }

    /** The store's ranged reads alone (mapped for large ranges), without the CRC32C check. */
    @Benchmark
    public byte[] uncheckedRangedReads() throws IOException {
        String key = manifest.shard(0).objectKey();
        for (Manifest.EntryRef e : manifest.entries()) {
            try (InputStream in = store.read(key, e.offset(), e.length())) {
                if (in.readNBytes(dest, (int) e.offset(), (int) e.length()) != e.length()) {
                    throw new IOException("short read of " + e.name());
                }
            }
        }
        return dest;
    }

    /** The check alone: CRC32C over the bytes already in the heap arrays. */
    @Benchmark
    public int crc32cOnly() {
        CRC32C crc = new CRC32C();
        crc.update(dest, 0, dest.length);
        return (int) crc.getValue();
    }
}
