package dev.cairn.storage;

/** A manifest that is corrupt, of an unknown format version, or inconsistent. Never used. */
public final class ManifestException extends StorageException {
    private static final long serialVersionUID = 1L;

    public ManifestException(String message) {
        super(message);
    }

    public ManifestException(String message, Throwable cause) {
        super(message, cause);
    }
}
