package dev.cairn.coordinator;

import dev.cairn.proto.v1.Join;
import io.grpc.Status;
import io.grpc.StatusException;

/**
 * Whether a join may enter the run: token, run id, world size and worker index. Whether the index
 * is free is the state machine's business.
 */
final class Admission {
    private Admission() {}

    /**
     * Throws a status naming what is wrong: PERMISSION_DENIED (token), FAILED_PRECONDITION (run
     * id), INVALID_ARGUMENT (world size, index).
     */
    static void check(CoordinatorConfig config, Join join) throws StatusException {
        int index = join.getWorkerIndex();
        if (!config.token().isEmpty() && !config.token().equals(join.getToken())) {
            throw Status.PERMISSION_DENIED.withDescription("worker " + index + ": wrong or missing token for run " + config.runId()).asException();
        }
        if (!join.getRunId().equals(config.runId())) {
            throw Status.FAILED_PRECONDITION.withDescription("worker " + index + " belongs to run " + LogSafe.quote(join.getRunId())
                    + " but this coordinator runs '" + config.runId() + "'").asException();
        }
        if (join.getWorldSize() != config.worldSize()) {
            throw Status.INVALID_ARGUMENT.withDescription("worker " + index + " expects world size " + join.getWorldSize()
                    + " but the coordinator's world size is " + config.worldSize()).asException();
        }
        if (index < 0 || index >= config.worldSize()) {
            throw Status.INVALID_ARGUMENT.withDescription("worker index " + index + " is outside the world size "
                    + config.worldSize() + " (valid: 0.." + (config.worldSize() - 1) + ")").asException();
        }
    }
}
