package dev.cairn.storage;

import static java.util.Objects.requireNonNull;

import java.time.Instant;

/**
 * One object of a store.
 *
 * @param key path relative to the store root, '/'-separated
 * @param length size in bytes
 * @param lastModified modification time as the backend reports it
 */
public record ObjectInfo(String key, long length, Instant lastModified) {
    public ObjectInfo {
        requireNonNull(key, "key is null");
        requireNonNull(lastModified, "lastModified is null");
        if (length < 0) {
            throw new IllegalArgumentException("negative length " + length + " for " + key);
        }
    }
}
