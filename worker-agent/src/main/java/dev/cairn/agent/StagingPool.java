package dev.cairn.agent;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Bounded staging memory: fixed-size chunks, allocated on first use and reused across saves, never
 * more than {@code budget} bytes in all. {@link #acquire} blocks while every chunk is in use; the
 * uploader frees chunks as it writes them.
 *
 * <p>Chunks are direct (off-heap) buffers: a file channel writes them to the page cache without
 * first copying them into a temporary direct buffer, as it must for heap arrays, and CRC32C reads
 * them in place. They count against {@code -XX:MaxDirectMemorySize} (by default the heap's maximum),
 * not against the heap.
 */
final class StagingPool {
    private final int chunkBytes;
    private final int maxChunks;
    private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
    private int allocated;
    private int inUse;
    private int peakInUse;

    StagingPool(long budget, int chunkBytes) {
        this.chunkBytes = chunkBytes;
        this.maxChunks = (int) Math.max(2, budget / chunkBytes);
    }

    int chunkBytes() {
        return chunkBytes;
    }

    /** A chunk if one is free or may still be allocated, else null (never blocks). */
    synchronized ByteBuffer tryAcquire() {
        if (free.isEmpty() && allocated >= maxChunks) {
            return null;
        }
        return take();
    }

    synchronized ByteBuffer acquire() throws InterruptedException {
        while (free.isEmpty() && allocated >= maxChunks) {
            wait();
        }
        return take();
    }

    private ByteBuffer take() {
        inUse++;
        peakInUse = Math.max(peakInUse, inUse);
        if (!free.isEmpty()) {
            return free.pop().clear();
        }
        allocated++;
        return ByteBuffer.allocateDirect(chunkBytes);
    }

    synchronized void release(ByteBuffer chunk) {
        inUse--;
        free.push(chunk);
        notifyAll();
    }

    /** Bytes of the largest number of chunks ever in use at once. */
    /** Bytes of the chunks handed out and not yet released. */
    synchronized long inUseBytes() {
        return (long) inUse * chunkBytes;
    }

    synchronized long peakBytes() {
        return (long) peakInUse * chunkBytes;
    }
}
