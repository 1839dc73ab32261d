package dev.cairn.coordinator;

import dev.cairn.protocol.SaveOutcome;

/**
 * What happened to one save, for status, the demo's table and listeners.
 *
 * @param outcome {@link SaveOutcome#COMMITTED} or why the save was aborted
 * @param bytes bytes written by all workers (0 when aborted before reports)
 */
public record SaveRecord(long step, String saveId, SaveOutcome outcome, String message, long bytes,
                         long maxStallMicros, long maxUploadMicros) {
    public boolean committed() {
        return outcome.isCommitted();
    }
}
