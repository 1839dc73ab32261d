package dev.cairn.cli;

/** Bad input: printed as one line, exit code 2, nothing written. */
final class UserError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UserError(String message) {
        super(message);
    }
}
