package dev.cairn.agent;

import dev.cairn.protocol.SaveOutcome;

/**
 * A save did not commit: the coordinator aborted it (a lost worker, a timeout, a failed upload,
 * a step mismatch), or the coordinator connection was lost. Training is not affected; the previous
 * checkpoint stays the latest.
 */
public final class SaveAbortedException extends Exception {
    private static final long serialVersionUID = 1L;
    private final long step;
    private final SaveOutcome reason;

    public SaveAbortedException(long step, SaveOutcome reason, String message) {
        super("save of step " + step + " aborted: " + reason + ": " + message);
        this.step = step;
        this.reason = reason;
    }

    public long step() {
        return step;
    }

    /**
     * Why: the coordinator's abort reason ({@link SaveOutcome#WORKER_LOST}, {@link
     * SaveOutcome#BARRIER_TIMEOUT}, ...), {@link SaveOutcome#UPLOAD_FAILED} for this agent's own
     * failed upload or snapshot, or {@link SaveOutcome#COORDINATOR_LOST} when the connection broke.
     */
    public SaveOutcome reason() {
        return reason;
    }
}
