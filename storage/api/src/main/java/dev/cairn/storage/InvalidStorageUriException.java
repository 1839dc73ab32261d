package dev.cairn.storage;

/** A storage URI that cannot name a store: unknown scheme, missing bucket, relative path, etc. */
public final class InvalidStorageUriException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public InvalidStorageUriException(String message) {
        super(message);
    }
}
