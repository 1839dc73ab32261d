package dev.cairn.agent;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.UploadFailed;
import dev.cairn.protocol.SaveOutcome;

/**
 * A save whose prepare was sent and whose state is being copied: what {@link CairnAgent#save} does
 * in one call, in three steps for a caller that learns the entries later than the step (the local
 * sidecar sends the prepare when the trainer starts copying into shared memory, so the barrier
 * overlaps the copy). Put the entries into {@link #snapshot()} on one thread, then call exactly one
 * of {@link #finish()} or {@link #abort}.
 */
public final class SaveInProgress {
    private final CoordinatorSession session;
    private final SaveTracker tracker;
    private final PendingSave ps;
    private final StagedShard shard;
    private final AgentHooks hooks;
    private final long startNanos;
    private final AgentMetrics metrics;
    private boolean ended;

    SaveInProgress(CoordinatorSession session, SaveTracker tracker, PendingSave ps, StagedShard shard, AgentHooks hooks, long startNanos,
                   AgentMetrics metrics) {
        this.metrics = metrics;
        this.session = session;
        this.tracker = tracker;
        this.ps = ps;
        this.shard = shard;
        this.hooks = hooks;
        this.startNanos = startNanos;
    }

    public long step() {
        return ps.step;
    }

    /** Where the entries go; each put copies at once. */
    public Snapshot snapshot() {
        return shard;
    }

    /** Seals the snapshot: the upload takes it from here. Returns the save's handle. */
    public SaveHandle finish() {
        end();
        shard.seal();
        ps.stallMicros = (System.nanoTime() - startNanos) / 1000;
        metrics.stalled(ps.stallMicros);
        hooks.onPhase(AgentHooks.Phase.SNAPSHOT_DONE, ps.step);
        return new SaveHandle(ps.step, ps.stallMicros, ps.committed);
    }

    /**
     * Gives the save up (the state could not be copied): the coordinator aborts it for every
     * worker, the staged bytes are freed. Training goes on.
     */
    public void abort(String why) {
        end();
        session.send(AgentMessage.newBuilder().setUploadFailed(UploadFailed.newBuilder().setStep(ps.step)
                .setMessage("snapshot failed: " + why)).build());
        tracker.failNow(ps, new SaveAbortedException(ps.step, SaveOutcome.UPLOAD_FAILED, "snapshot failed: " + why));
        shard.seal();
    }

    private void end() {
        if (ended) {
            throw new IllegalStateException("save of step " + ps.step + " was already finished or aborted");
        }
        ended = true;
    }
}
