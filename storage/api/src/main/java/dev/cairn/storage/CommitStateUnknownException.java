package dev.cairn.storage;

/**
 * An atomic create may or may not have taken effect (for example an S3 request that timed out after
 * it was sent). Callers must not clean up anything the object would reference; they re-check whether
 * the object exists instead.
 */
public final class CommitStateUnknownException extends StorageException {
    private static final long serialVersionUID = 1L;

    public CommitStateUnknownException(String message, Throwable cause) {
        super(message, cause);
    }
}
