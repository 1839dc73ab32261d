package dev.cairn.agent;

import dev.cairn.proto.v1.Release;
import java.util.concurrent.CompletableFuture;

/** One save of this agent from its prepare until it commits or aborts. */
final class PendingSave {
    final long step;
    /** Completes with the barrier's release (on the network thread), or exceptionally when the save fails first. */
    final CompletableFuture<Release> release = new CompletableFuture<>();
    /** What the user's {@link SaveHandle} shows; completed on the events thread. */
    final CompletableFuture<SavedCheckpoint> committed = new CompletableFuture<>();
    /** Completes once this save's upload (or drain) task is queued on the upload thread. */
    final CompletableFuture<Void> uploadQueued = new CompletableFuture<>();
    volatile String saveId;
    volatile long stallMicros;

    PendingSave(long step) {
        this.step = step;
    }

    void fail(Throwable t) {
        release.completeExceptionally(t);
        committed.completeExceptionally(t);
    }

    boolean aborted() {
        return release.isCompletedExceptionally() || committed.isCompletedExceptionally();
    }
}
