package dev.cairn.agent;

import java.nio.ByteBuffer;
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
 * The training stall's hot path: a snapshot copied into staging chunks ({@link StagedShard#put},
 * seal, and the uploader's chunk bookkeeping), beside the plain copies of the same bytes that
 * {@code cairn bench} uses as the stall's baseline. The state is off-heap, cut into entries.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", "-XX:MaxDirectMemorySize=1g"})
public class StagingBenchmark {
    @Param({"64"})
    int stateMiB;

    @Param({"8192"})
    int entryKiB;

    private ByteBuffer state;
    private byte[] heapTarget;
    private ByteBuffer directTarget;
    private StagingPool pool;
    private long step;

    @Setup(Level.Trial)
    public void setUp() {
        int bytes = stateMiB << 20;
        state = ByteBuffer.allocateDirect(bytes);
        for (int i = 0; i < bytes; i += 8) {
            state.putLong(i, i * 0x9E3779B97F4A7C15L);
        }
        heapTarget = new byte[bytes];
        directTarget = ByteBuffer.allocateDirect(bytes);
        pool = new StagingPool(bytes + (8L << 20), 4 << 20);
        stagedSnapshot(); // allocate the staging chunks once: they are reused across saves, as in the agent
    }

    /** The stall's baseline in {@code cairn bench}: the same bytes copied into warm heap memory. */
    @Benchmark
    public byte[] plainCopyToHeap() {
        int entry = entryKiB << 10;
        ByteBuffer src = state.duplicate();
        for (int off = 0; off < src.capacity(); off += entry) {
            int n = Math.min(entry, src.capacity() - off);
            src.limit(off + n).position(off);
            src.get(heapTarget, off, n);
        }
        return heapTarget;
    }

    /** A plain copy into off-heap memory, as staging is. */
    @Benchmark
    public ByteBuffer plainCopyToDirect() {
        directTarget.clear();
        directTarget.put(state.duplicate());
        return directTarget;
    }

    /** What {@code save()} does with the state: entries copied into staging chunks, then sealed; the chunks are then handed back. */
    @Benchmark
    public int stagedSnapshot() {
        int entry = entryKiB << 10;
        StagedShard shard = new StagedShard(pool, ++step);
        ByteBuffer src = state.duplicate();
        int e = 0;
        for (int off = 0; off < src.capacity(); off += entry, e++) {
            int n = Math.min(entry, src.capacity() - off);
            src.limit(off + n).position(off);
            shard.put("model/layer_" + e + "/kernel", src);
        }
        shard.seal();
        try {
            StagedShard.Chunk c;
            while ((c = shard.take()) != StagedShard.END) {
                shard.release(c);
            }
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(ex);
        }
        return shard.entryCount();
    }
}
