package dev.cairn.storage;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Manifest encode (the coordinator, once per commit) and decode with its checksum and validation
 * (every restoring worker, once), for a small run and a 64-worker run.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx512m"})
public class ManifestCodecBenchmark {
    @Param({"2", "64"})
    int workers;

    @Param({"32"})
    int entriesPerWorker;

    private Manifest manifest;
    private byte[] encoded;

    @Setup(Level.Trial)
    public void setUp() {
        String saveId = "1000-0000beef";
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        long entryBytes = 8 << 20;
        for (int w = 0; w < workers; w++) {
            shards.add(new Manifest.ShardRef(w, Layout.shardKey(saveId, w), entryBytes * entriesPerWorker, w * 0x01000193));
            for (int e = 0; e < entriesPerWorker; e++) {
                entries.add(new Manifest.EntryRef("model/layer_" + e + "/kernel", w, e * entryBytes, entryBytes, e * 0x9E3779B9, false));
            }
        }
        manifest = new Manifest(ManifestCodec.FORMAT_VERSION, "jmh", 1000, saveId, Instant.parse("2026-11-23T06:00:00Z"), workers,
                shards, entries, Map.of("loss", 0.25, "epoch", 3L));
        encoded = ManifestCodec.encode(manifest);
    }

    @Benchmark
    public byte[] encode() {
        return ManifestCodec.encode(manifest);
    }

    @Benchmark
    public Manifest decode() throws ManifestException {
        return ManifestCodec.decode(encoded, "jmh");
    }
}
