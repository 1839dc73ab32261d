package dev.cairn.coordinator;

import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.storage.Manifest;
import io.grpc.Status;

/**
 * What the save state machine asks of the world. The coordinator implements it with gRPC streams
 * and storage I/O on its own executor; state-machine tests implement it with lists.
 */
interface Outbox {
    /** Sends a message to a connected worker. */
    void send(int worker, CoordinatorMessage message);

    /** Closes a worker's session with an error status (e.g. a heartbeat timeout). */
    void closeSession(int worker, Status status);

    /** Writes the manifest (asynchronously); the result comes back as {@link SaveCoordinator#onCommitResult}. */
    void commit(Manifest manifest);

    /** Deletes a save attempt's objects, best effort, asynchronously. */
    void deleteAttempt(String saveId);

    /** A save ended (committed or aborted). */
    void saveEnded(SaveRecord record);

    /** A checkpoint was committed: apply retention, asynchronously. */
    void committed(Manifest manifest);
}
