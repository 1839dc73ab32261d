package dev.cairn.agent;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * CRC32C on the upload path (over an 8 MiB off-heap staging chunk, as the uploader does) and the
 * combine that derives a shard object's CRC from its entries' CRCs instead of a second pass, beside
 * a plain copy of the same bytes (the unit the stall and restore figures are measured in).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx512m"})
public class ChecksumBenchmark {
    private static final int CHUNK = 8 << 20;

    private ByteBuffer chunk;
    private byte[] heap;
    private byte[] heapTarget;
    private final CRC32C crc = new CRC32C();
    private int a;
    private int b;

    @Setup(Level.Trial)
    public void setUp() {
        chunk = ByteBuffer.allocateDirect(CHUNK);
        heap = new byte[CHUNK];
        heapTarget = new byte[CHUNK];
        for (int i = 0; i < CHUNK; i++) {
            heap[i] = (byte) (i * 31 + (i >>> 11));
        }
        chunk.put(heap).flip();
        a = 0x1234abcd;
        b = 0x7e57c0de;
    }

    @Benchmark
    public int crc32cDirect8MiB() {
        crc.reset();
        crc.update(chunk.duplicate());
        return (int) crc.getValue();
    }

    @Benchmark
    public int crc32cHeap8MiB() {
        crc.reset();
        crc.update(heap, 0, CHUNK);
        return (int) crc.getValue();
    }

    @Benchmark
    public byte[] copyHeap8MiB() {
        System.arraycopy(heap, 0, heapTarget, 0, CHUNK);
        return heapTarget;
    }

    /** Combining two CRCs over an 8 MiB second part: what the object CRC costs per entry. */
    @Benchmark
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    public int combine() {
        return Crc32cCombine.combine(a, b, CHUNK);
    }
}
