package dev.cairn.protocol;

import dev.cairn.proto.v1.AbortReason;

/**
 * How a save ended: committed, or why it was aborted. One type for the agent API
 * ({@code SaveAbortedException.reason()}), the coordinator's save records, the status output and
 * the logs. Every abort reason of protocol v1 has a constant of the same name; two more are the
 * agent's own view ({@link #COORDINATOR_LOST}) and a reason a newer coordinator sent that this
 * build does not know ({@link #UNKNOWN}).
 */
public enum SaveOutcome {
    COMMITTED,
    WORKER_LOST,
    BARRIER_TIMEOUT,
    UPLOAD_TIMEOUT,
    UPLOAD_FAILED,
    STEP_MISMATCH,
    COMMIT_FAILED,
    COORDINATOR_SHUTDOWN,
    STEP_ALREADY_COMMITTED,
    TARGET_MISSED,
    INVALID_SHARD,
    /** The agent lost its connection to the coordinator while the save was in flight. */
    COORDINATOR_LOST,
    /**
     * The coordinator's own record of a save target no worker reached in time (or every worker left
     * first): no save was attempted; shown in {@code cairn status}, never sent to workers.
     */
    TARGET_EXPIRED,
    /** An abort reason this build does not know. */
    UNKNOWN;

    /** The outcome of an abort the coordinator announced. */
    public static SaveOutcome fromAbortReason(AbortReason reason) {
        return switch (reason) {
            case WORKER_LOST -> WORKER_LOST;
            case BARRIER_TIMEOUT -> BARRIER_TIMEOUT;
            case UPLOAD_TIMEOUT -> UPLOAD_TIMEOUT;
            case UPLOAD_FAILED -> UPLOAD_FAILED;
            case STEP_MISMATCH -> STEP_MISMATCH;
            case COMMIT_FAILED -> COMMIT_FAILED;
            case COORDINATOR_SHUTDOWN -> COORDINATOR_SHUTDOWN;
            case STEP_ALREADY_COMMITTED -> STEP_ALREADY_COMMITTED;
            case TARGET_MISSED -> TARGET_MISSED;
            case INVALID_SHARD -> INVALID_SHARD;
            case ABORT_REASON_UNSPECIFIED, UNRECOGNIZED -> UNKNOWN;
        };
    }

    /**
     * The protocol's abort reason for this outcome.
     *
     * @throws IllegalStateException for {@link #COMMITTED}, {@link #COORDINATOR_LOST},
     *     {@link #TARGET_EXPIRED} and {@link #UNKNOWN}, which a coordinator never sends
     */
    public AbortReason toAbortReason() {
        return switch (this) {
            case COMMITTED, COORDINATOR_LOST, TARGET_EXPIRED, UNKNOWN -> throw new IllegalStateException(this + " is not an abort reason of the protocol");
            default -> AbortReason.valueOf(name());
        };
    }

    public boolean isCommitted() {
        return this == COMMITTED;
    }
}
