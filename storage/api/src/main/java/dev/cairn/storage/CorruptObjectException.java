package dev.cairn.storage;

/** Bytes read back do not match the checksum or length the manifest recorded for them. */
public final class CorruptObjectException extends StorageException {
    private static final long serialVersionUID = 1L;

    public CorruptObjectException(String message) {
        super(message);
    }
}
