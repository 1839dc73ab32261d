package dev.cairn.storage;

/** The object a read or stat named does not exist. */
public final class NoSuchObjectException extends StorageException {
    private static final long serialVersionUID = 1L;

    public NoSuchObjectException(StorageUri root, String key) {
        super("no such object: " + root.resolve(key));
    }
}
