package dev.cairn.agent;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The background part of a save. {@link #committed()} completes when the checkpoint's manifest is
 * committed, or exceptionally with {@link SaveAbortedException} (or an I/O error) when it is not.
 */
public final class SaveHandle {
    private final long step;
    private final long stallMicros;
    private final CompletableFuture<SavedCheckpoint> committed;

    SaveHandle(long step, long stallMicros, CompletableFuture<SavedCheckpoint> committed) {
        this.step = step;
        this.stallMicros = stallMicros;
        this.committed = committed;
    }

    public long step() {
        return step;
    }

    /** How long {@code save} blocked the trainer, in microseconds. */
    public long stallMicros() {
        return stallMicros;
    }

    /** Completes with the checkpoint once committed. */
    public CompletableFuture<SavedCheckpoint> committed() {
        return committed.copy();
    }

    /**
     * Waits for the commit.
     *
     * @throws SaveAbortedException when the save was aborted
     * @throws TimeoutException when it did not end in time
     */
    public SavedCheckpoint await(Duration timeout) throws SaveAbortedException, TimeoutException, InterruptedException {
        try {
            return committed.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof SaveAbortedException a) {
                throw a;
            }
            throw new SaveAbortedException(step, dev.cairn.protocol.SaveOutcome.UPLOAD_FAILED, String.valueOf(e.getCause()));
        }
    }
}
