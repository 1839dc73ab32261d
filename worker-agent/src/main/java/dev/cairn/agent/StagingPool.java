package dev.cairn.agent;

import java.util.ArrayDeque;

/**
 * Bounded staging memory: fixed-size heap chunks, allocated on first use and reused across saves,
 * never more than {@code budget} bytes in all. {@link #acquire} blocks while every chunk is in use;
 * the uploader frees chunks as it writes them.
 */
final class StagingPool {
    private final int chunkBytes;
    private final int maxChunks;
    private final ArrayDeque<byte[]> free = new ArrayDeque<>();
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

    synchronized byte[] acquire() throws InterruptedException {
        while (free.isEmpty() && allocated >= maxChunks) {
            wait();
        }
        inUse++;
        peakInUse = Math.max(peakInUse, inUse);
        if (!free.isEmpty()) {
            return free.pop();
        }
        allocated++;
        return new byte[chunkBytes];
    }

    synchronized void release(byte[] chunk) {
        inUse--;
        free.push(chunk);
        notifyAll();
    }

    /** Bytes of the largest number of chunks ever in use at once. */
    synchronized long peakBytes() {
        return (long) peakInUse * chunkBytes;
    }
}
