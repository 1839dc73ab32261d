package dev.cairn.agent;

import dev.cairn.proto.v1.Aborted;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.Release;
import dev.cairn.protocol.SaveOutcome;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's saves in flight, by step: their release, commit and abort bookkeeping. The session
 * calls in from the channel's network thread; the futures users chain callbacks on are completed on
 * this tracker's events thread, never there (a user's callback could block every connection of that
 * event loop), while the upload thread learns of a release or a failure at once.
 */
final class SaveTracker {
    private static final Logger LOG = LoggerFactory.getLogger(SaveTracker.class);

    private final int worker;
    private final Map<Long, PendingSave> pending = new ConcurrentHashMap<>();
    private final ExecutorService events;
    private volatile Thread eventsThread;
    private static final int DRAIN_SECONDS = 5;

    SaveTracker(int worker) {
        this.worker = worker;
        this.events = Executors.newSingleThreadExecutor(r -> {
            Thread t = CairnAgent.daemon(r, "cairn-agent-events-" + worker);
            eventsThread = t;
            return t;
        });
    }

    void register(PendingSave ps) {
        pending.put(ps.step, ps);
    }

    /** Forgets {@code ps} and fails it (caller's thread; the save never reached the network thread's hands). */
    void failNow(PendingSave ps, SaveAbortedException e) {
        pending.remove(ps.step, ps);
        ps.fail(e);
    }

    /** Forgets {@code ps} and fails it as the network thread does: release now, the user's future on the events thread. */
    void fail(PendingSave ps, Throwable t) {
        pending.remove(ps.step, ps);
        failOffNetworkThread(ps, t);
    }

    List<PendingSave> inFlight() {
        return List.copyOf(pending.values());
    }

    /** Network thread. */
    void onRelease(Release r) {
        PendingSave ps = pending.get(r.getStep());
        if (ps != null) {
            ps.saveId = r.getSaveId();
            ps.release.complete(r);
        }
    }

    /** Network thread. */
    void onCommitted(CheckpointRef ref) {
        PendingSave ps = pending.remove(ref.getStep());
        if (ps != null) {
            SavedCheckpoint saved = new SavedCheckpoint(ref.getStep(), ref.getSaveId(), ref.getManifestKey());
            offNetworkThread(() -> ps.committed.complete(saved));
        }
    }

    /** Network thread. An abort of another attempt of the same step (another save id) is ignored. */
    void onAborted(Aborted a) {
        PendingSave ps = pending.get(a.getStep());
        if (ps != null && (a.getSaveId().isEmpty() || ps.saveId == null || a.getSaveId().equals(ps.saveId))) {
            pending.remove(a.getStep(), ps);
            failOffNetworkThread(ps, new SaveAbortedException(a.getStep(), SaveOutcome.fromAbortReason(a.getReason()), a.getMessage()));
            LOG.warn("worker {}: save of step {} aborted: {}: {}", worker, a.getStep(), a.getReason(), a.getMessage());
        }
    }

    /** Fails every save in flight (the session ended). */
    void failAll(SaveOutcome outcome, String message) {
        for (Map.Entry<Long, PendingSave> e : pending.entrySet()) {
            if (pending.remove(e.getKey(), e.getValue())) {
                failOffNetworkThread(e.getValue(), new SaveAbortedException(e.getKey(), outcome, message));
            }
        }
    }

    private void failOffNetworkThread(PendingSave ps, Throwable t) {
        ps.release.completeExceptionally(t);
        offNetworkThread(() -> ps.committed.completeExceptionally(t));
    }

    /** Runs {@code task} on the events thread, or in place when that thread is gone. */
    private void offNetworkThread(Runnable task) {
        try {
            events.execute(task);
        } catch (RejectedExecutionException e) {
            // shut down: nothing the user chained can still be waited for by this agent; complete in place
            task.run();
        }
    }

    /**
     * Waits until every completion queued on the events thread so far has run (so callbacks a user
     * chained on a committed future have run), or the deadline ({@link System#nanoTime}) passes.
     */
    void awaitQueuedEvents(long deadlineNanos) throws InterruptedException {
        CountDownLatch drained = new CountDownLatch(1);
        try {
            events.execute(drained::countDown);
        } catch (RejectedExecutionException e) {
            return; // shut down: queued completions ran or run in place
        }
        drained.await(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
    }

    /**
     * Accepts no more completions and waits (up to {@value #DRAIN_SECONDS} s) until those already
     * queued ran (after the channel is closed): callbacks a trainer chained on its saves' futures
     * have run when {@link CairnAgent#close} returns, also when the JVM exits right after it. From
     * the events thread itself (a callback closing the agent) it does not wait.
     */
    void shutdown() {
        events.shutdown();
        if (Thread.currentThread() == eventsThread) {
            return;
        }
        try {
            if (!events.awaitTermination(DRAIN_SECONDS, TimeUnit.SECONDS)) {
                LOG.warn("worker {}: save callbacks still running {} s after close; not waiting for them", worker, DRAIN_SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    boolean isShutdown() {
        return events.isShutdown();
    }
}
