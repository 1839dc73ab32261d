package dev.cairn.agent;

import dev.cairn.storage.DType;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Typed puts stage little-endian bytes, also when elements straddle staging chunks. */
class TypedPutTest {

    @Test
    void typedArraysStageLittleEndianAcrossChunkBoundariesAndRecordTheirDtype() throws Exception {
        Random random = new Random(7);
        float[] f = new float[3001];
        double[] d = new double[1503];
        long[] l = new long[999];
        int[] i = new int[2049];
        short[] s = new short[4097];
        for (int k = 0; k < f.length; k++) f[k] = random.nextFloat();
        for (int k = 0; k < d.length; k++) d[k] = random.nextGaussian();
        for (int k = 0; k < l.length; k++) l[k] = random.nextLong();
        for (int k = 0; k < i.length; k++) i[k] = random.nextInt();
        for (int k = 0; k < s.length; k++) s[k] = (short) random.nextInt();
        StagedShard shard = new StagedShard(new StagingPool(1 << 20, 4096), 1);
        shard.put("odd", new byte[3]); // every later element is misaligned against the 4 KiB chunks
        shard.put("f", f);
        shard.putReplicated("d", d);
        shard.put("l", l);
        shard.put("i", i);
        shard.putReplicated("s", s);
        shard.seal();

        ByteBuffer all = ByteBuffer.allocate((int) shard.stagedBytes()).order(ByteOrder.LITTLE_ENDIAN);
        StagedShard.Chunk c;
        while ((c = shard.take()) != StagedShard.END) {
            all.put(c.data().flip());
            shard.release(c);
        }
        all.flip().position(3);
        for (float v : f) assertThat(all.getFloat()).isEqualTo(v);
        for (double v : d) assertThat(all.getDouble()).isEqualTo(v);
        for (long v : l) assertThat(all.getLong()).isEqualTo(v);
        for (int v : i) assertThat(all.getInt()).isEqualTo(v);
        for (short v : s) assertThat(all.getShort()).isEqualTo(v);
        assertThat(all.hasRemaining()).isFalse();

        assertThat(shard.entry(1).dtype()).isEqualTo(DType.FLOAT32);
        assertThat(shard.entry(1).shape()).containsExactly(3001);
        assertThat(shard.entry(2).dtype()).isEqualTo(DType.FLOAT64);
        assertThat(shard.entry(2).replicated()).isTrue();
        assertThat(shard.entry(5).dtype()).isEqualTo(DType.INT16);
        assertThat(shard.entry(0).dtype()).isEqualTo(DType.BYTES);
    }

    @Test
    void aTypedBufferWhoseLengthDoesNotMatchItsShapeIsRefused() {
        StagedShard shard = new StagedShard(new StagingPool(1 << 20, 4096), 1);
        assertThatThrownBy(() -> shard.put("w", ByteBuffer.allocate(40), DType.FLOAT32, 4, 3))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("entry 'w': length 40 is not float32[4, 3] = 48 bytes (save of step 1)");
        shard.put("w", ByteBuffer.allocate(48), DType.FLOAT32, 4, 3);
        assertThat(shard.entry(0).shape()).containsExactly(4, 3);
        shard.seal();
    }

    @Test
    void dtypeNamesAreNumpys() {
        assertThat(DType.fromNumpyName("bfloat16")).isEqualTo(DType.BFLOAT16);
        assertThat(DType.COMPLEX128.itemSize()).isEqualTo(16);
        assertThatThrownBy(() -> DType.fromNumpyName("float8")).hasMessage("unknown dtype 'float8'");
    }
}
