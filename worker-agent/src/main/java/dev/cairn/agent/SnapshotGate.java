package dev.cairn.agent;

/**
 * Snapshots being copied by any agent of this JVM. Several ranks of one job may run in one process
 * (one agent each); their trainers are blocked until the last of them finishes its copy, so an
 * upload that starts as soon as its own snapshot is sealed takes CPU from the ranks still copying.
 * A sealed shard's uploader therefore waits, briefly and boundedly, until no snapshot of this
 * process is in progress. With one agent per process this never waits.
 */
final class SnapshotGate {
    private static int active;

    private SnapshotGate() {}

    static synchronized void begin() {
        active++;
    }

    static synchronized void end() {
        if (--active == 0) {
            SnapshotGate.class.notifyAll();
        }
    }

    /** Waits until no snapshot is in progress, or {@code maxMillis} passed. */
    static synchronized void awaitQuiet(long maxMillis) throws InterruptedException {
        long deadline = System.nanoTime() + maxMillis * 1_000_000L;
        while (active > 0) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                return;
            }
            SnapshotGate.class.wait(left);
        }
    }
}
