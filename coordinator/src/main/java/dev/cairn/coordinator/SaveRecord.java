package dev.cairn.coordinator;

/**
 * What happened to one save, for status, the demo's table and listeners.
 *
 * @param outcome {@code COMMITTED} or the abort reason's name
 * @param bytes bytes written by all workers (0 when aborted before reports)
 */
public record SaveRecord(long step, String saveId, String outcome, String message, long bytes,
                         long maxStallMicros, long maxUploadMicros) {
    public boolean committed() {
        return "COMMITTED".equals(outcome);
    }
}
