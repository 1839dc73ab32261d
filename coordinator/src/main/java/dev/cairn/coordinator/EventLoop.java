package dev.cairn.coordinator;

import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The coordinator's two executors: the single event-loop thread every protocol event runs on, and
 * the I/O pool storage side effects run on (their results are posted back to the loop).
 */
final class EventLoop {
    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);

    private final String runId;
    private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "cairn-coordinator-loop"));
    private final ExecutorService io = Executors.newFixedThreadPool(2, r -> daemon(r, "cairn-coordinator-io"));
    private volatile boolean closing;

    EventLoop(String runId) {
        this.runId = runId;
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /** Runs {@code r} on the loop; dropped once the coordinator is closing. */
    void post(Runnable r) {
        if (!closing) {
            postUrgent(r);
        }
    }

    /** Runs {@code r} on the loop even while closing (stream ends, commit results). */
    void postUrgent(Runnable r) {
        try {
            loop.execute(() -> {
                try {
                    r.run();
                } catch (RuntimeException e) {
                    LOG.error("coordinator of run {}: unexpected error in event handling", runId, e);
                }
            });
        } catch (RejectedExecutionException e) {
            // closed
        }
    }

    /** Runs storage I/O off the loop. */
    void io(Runnable r) {
        try {
            io.execute(r);
        } catch (RejectedExecutionException e) {
            LOG.debug("coordinator of run {} closed; dropped an I/O task", runId);
        }
    }

    /** Runs {@code task} on the loop and waits for its answer. */
    <T> T call(Callable<T> task) {
        try {
            return loop.submit(task).get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (Exception e) {
            throw new IllegalStateException("coordinator of run " + runId + " did not answer: " + e, e);
        }
    }

    void every(long millis, Runnable r) {
        loop.scheduleWithFixedDelay(r, millis, millis, TimeUnit.MILLISECONDS);
    }

    void schedule(long millis, Runnable r) {
        try {
            loop.schedule(r, millis, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            // closed
        }
    }

    void startClosing() {
        closing = true;
    }

    boolean closing() {
        return closing;
    }

    /** Waits for pending I/O, then stops both executors. */
    void shutdown() {
        io.shutdown();
        try {
            io.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        loop.shutdownNow();
    }
}
