package dev.cairn.storage;

import java.io.IOException;

/**
 * A storage operation failed. Messages always name the storage URI (and object key, when there is
 * one) the failure concerns.
 */
public class StorageException extends IOException {
    private static final long serialVersionUID = 1L;

    public StorageException(String message) {
        super(message);
    }

    public StorageException(String message, Throwable cause) {
        super(message, cause);
    }
}
