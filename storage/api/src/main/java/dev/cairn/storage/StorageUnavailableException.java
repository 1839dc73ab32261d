package dev.cairn.storage;

/**
 * The store cannot be used as configured: missing or unreadable root, unknown bucket, missing
 * credentials, a NameNode that does not answer. An operator has to fix the configuration; retrying
 * does not help.
 */
public final class StorageUnavailableException extends StorageException {
    private static final long serialVersionUID = 1L;

    public StorageUnavailableException(String message) {
        super(message);
    }

    public StorageUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
