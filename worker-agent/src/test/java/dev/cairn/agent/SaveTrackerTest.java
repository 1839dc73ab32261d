package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.cairn.proto.v1.CheckpointRef;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * The preemption hook lets the JVM exit once {@link SaveTracker#awaitQueuedEvents} returns, so it
 * must not return while a callback chained on a committed future is still queued or running.
 */
class SaveTrackerTest {
    private static final long FAR = TimeUnit.SECONDS.toNanos(60);

    @Test
    void aCommitCallbackHasRunWhenTheQueuedEventsAreAwaited() throws Exception {
        SaveTracker tracker = new SaveTracker(0);
        try {
            PendingSave ps = new PendingSave(7);
            tracker.register(ps);
            AtomicBoolean ran = new AtomicBoolean();
            ps.committed.thenRun(() -> ran.set(true));

            tracker.onCommitted(ref(7));
            tracker.awaitQueuedEvents(System.nanoTime() + FAR);

            assertThat(ran).isTrue();
            assertThat(ps.committed.join().saveId()).isEqualTo("7-a");
        } finally {
            tracker.shutdown();
        }
    }

    @Test
    void aCallbackStillRunningHoldsTheWaitUntilTheDeadline() throws Exception {
        SaveTracker tracker = new SaveTracker(0);
        CountDownLatch gate = new CountDownLatch(1);
        try {
            commitBehindGate(tracker, 3, gate, new AtomicBoolean());

            long waitNanos = TimeUnit.MILLISECONDS.toNanos(200);
            long start = System.nanoTime();
            tracker.awaitQueuedEvents(start + waitNanos);

            assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(waitNanos);
        } finally {
            gate.countDown();
            tracker.shutdown();
        }
    }

    @Test
    void shutdownReturnsOnlyOnceTheQueuedCallbacksRan() throws Exception {
        SaveTracker tracker = new SaveTracker(0);
        CountDownLatch gate = new CountDownLatch(1);
        AtomicBoolean ran = new AtomicBoolean();
        commitBehindGate(tracker, 5, gate, ran);

        AtomicBoolean ranWhenShutdownReturned = new AtomicBoolean();
        Thread closer = new Thread(() -> {
            tracker.shutdown();
            ranWhenShutdownReturned.set(ran.get());
        });
        closer.start();
        // the callback is held until shutdown has begun: a shutdown that does not wait returns before it ran
        await().atMost(Duration.ofSeconds(10)).until(tracker::isShutdown);
        gate.countDown();
        closer.join(TimeUnit.SECONDS.toMillis(10));

        assertThat(closer.isAlive()).isFalse();
        assertThat(ranWhenShutdownReturned).isTrue();
    }

    @Test
    void aCallbackThatClosesTheAgentDoesNotWaitForItself() throws Exception {
        SaveTracker tracker = new SaveTracker(0);
        PendingSave ps = new PendingSave(6);
        tracker.register(ps);
        CompletableFuture<Void> closedFromCallback = ps.committed.thenRun(tracker::shutdown);
        tracker.onCommitted(ref(6));

        // the shutdown from the events thread returns at once (waiting would take the full drain time)
        closedFromCallback.get(2, TimeUnit.SECONDS);
        assertThat(tracker.isShutdown()).isTrue();
    }

    @Test
    void afterShutdownTheWaitReturnsAtOnce() throws Exception {
        SaveTracker tracker = new SaveTracker(0);
        tracker.shutdown();
        long start = System.nanoTime();
        tracker.awaitQueuedEvents(start + FAR);
        assertThat(System.nanoTime() - start).isLessThan(FAR);
    }

    /** Registers a save of {@code step} whose commit callback waits for {@code gate}, then sets {@code ran}; commits it. */
    private static void commitBehindGate(SaveTracker tracker, long step, CountDownLatch gate, AtomicBoolean ran) {
        PendingSave ps = new PendingSave(step);
        tracker.register(ps);
        ps.committed.thenRun(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ran.set(true);
        });
        tracker.onCommitted(ref(step));
    }

    private static CheckpointRef ref(long step) {
        return CheckpointRef.newBuilder().setStep(step).setSaveId(step + "-a").setManifestKey("m").build();
    }
}
