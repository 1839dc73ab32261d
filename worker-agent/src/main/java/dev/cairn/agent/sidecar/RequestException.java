package dev.cairn.agent.sidecar;

/** A request failed; answered as {@code {"ok": false, "error": {"type", "message", "reason"?}}}. */
final class RequestException extends Exception {
    private static final long serialVersionUID = 1L;
    private final String type;
    private final String reason;

    RequestException(String type, String message) {
        this(type, message, null);
    }

    RequestException(String type, String message, String reason) {
        super(message);
        this.type = type;
        this.reason = reason;
    }

    static RequestException badRequest(String message) {
        return new RequestException("BadRequest", message);
    }

    String type() {
        return type;
    }

    /** The save's outcome, for {@code SaveAborted}; else null. */
    String reason() {
        return reason;
    }
}
