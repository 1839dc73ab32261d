package dev.cairn.agent;

import java.io.IOException;

/** The agent could not join its coordinator; the message says why (wrong index, world size, run id, ...). */
public final class AgentException extends IOException {
    private static final long serialVersionUID = 1L;
    private final boolean badInput;

    public AgentException(String message, boolean badInput, Throwable cause) {
        super(message, cause);
        this.badInput = badInput;
    }

    /** True when the configuration was rejected (fix it; retrying does not help). */
    public boolean badInput() {
        return badInput;
    }
}
