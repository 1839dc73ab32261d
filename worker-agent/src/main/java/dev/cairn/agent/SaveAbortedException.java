package dev.cairn.agent;

/**
 * A save did not commit: the coordinator aborted it (a lost worker, a timeout, a failed upload,
 * a step mismatch), or the coordinator connection was lost. Training is not affected; the previous
 * checkpoint stays the latest.
 */
public final class SaveAbortedException extends Exception {
    private static final long serialVersionUID = 1L;
    private final long step;
    private final String reason;

    public SaveAbortedException(long step, String reason, String message) {
        super("save of step " + step + " aborted: " + reason + ": " + message);
        this.step = step;
        this.reason = reason;
    }

    public long step() {
        return step;
    }

    /** The coordinator's abort reason ({@code WORKER_LOST}, {@code BARRIER_TIMEOUT}, ...), or {@code COORDINATOR_LOST}. */
    public String reason() {
        return reason;
    }
}
