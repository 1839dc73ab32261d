package dev.cairn.agent;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A primitive array read as its little-endian bytes, copied into staging chunks in bulk (a view
 * buffer's put: one memory copy on a little-endian machine). An element that straddles two chunks
 * is encoded once into a scratch buffer and copied in two parts.
 */
abstract class ArraySource {
    private final int itemSize;
    private final long byteLength;
    private final ByteBuffer scratch;
    private long position;

    private ArraySource(int itemSize, int elements) {
        this.itemSize = itemSize;
        this.byteLength = (long) itemSize * elements;
        this.scratch = ByteBuffer.allocate(itemSize).order(ByteOrder.LITTLE_ENDIAN);
    }

    long remaining() {
        return byteLength - position;
    }

    /** Copies the next {@code n} bytes into {@code dst} (which has room), advancing both. */
    void copyTo(ByteBuffer dst, int n) {
        long end = position + n;
        while (position < end) {
            int within = (int) (position % itemSize);
            int index = (int) (position / itemSize);
            if (within == 0 && end - position >= itemSize) {
                int count = (int) ((end - position) / itemSize);
                ByteBuffer view = dst.slice().order(ByteOrder.LITTLE_ENDIAN);
                bulk(view, index, count);
                dst.position(dst.position() + count * itemSize);
                position += (long) count * itemSize;
            } else {
                scratch.clear();
                element(scratch, index);
                int take = (int) Math.min(itemSize - within, end - position);
                dst.put(scratch.array(), within, take);
                position += take;
            }
        }
    }

    abstract void bulk(ByteBuffer littleEndian, int index, int count);

    abstract void element(ByteBuffer littleEndian, int index);

    static ArraySource of(float[] a) {
        return new ArraySource(4, a.length) {
            void bulk(ByteBuffer b, int i, int n) { b.asFloatBuffer().put(a, i, n); }
            void element(ByteBuffer b, int i) { b.putFloat(a[i]); }
        };
    }

    static ArraySource of(double[] a) {
        return new ArraySource(8, a.length) {
            void bulk(ByteBuffer b, int i, int n) { b.asDoubleBuffer().put(a, i, n); }
            void element(ByteBuffer b, int i) { b.putDouble(a[i]); }
        };
    }

    static ArraySource of(int[] a) {
        return new ArraySource(4, a.length) {
            void bulk(ByteBuffer b, int i, int n) { b.asIntBuffer().put(a, i, n); }
            void element(ByteBuffer b, int i) { b.putInt(a[i]); }
        };
    }

    static ArraySource of(long[] a) {
        return new ArraySource(8, a.length) {
            void bulk(ByteBuffer b, int i, int n) { b.asLongBuffer().put(a, i, n); }
            void element(ByteBuffer b, int i) { b.putLong(a[i]); }
        };
    }

    static ArraySource of(short[] a) {
        return new ArraySource(2, a.length) {
            void bulk(ByteBuffer b, int i, int n) { b.asShortBuffer().put(a, i, n); }
            void element(ByteBuffer b, int i) { b.putShort(a[i]); }
        };
    }
}
