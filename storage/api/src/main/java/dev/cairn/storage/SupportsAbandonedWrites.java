package dev.cairn.storage;

import java.io.IOException;
import java.util.List;

/**
 * Add-on for stores where a write that is never committed nor closed — its process was killed —
 * leaves a partial object that {@link CheckpointStore#list} does not show: the local store's hidden
 * temp files (S3's analogue is an incomplete multipart upload). Sweeps use it so that such
 * leftovers of a dead save attempt do not stay forever.
 */
public interface SupportsAbandonedWrites {
    /**
     * Partial objects of uncommitted writes below {@code prefix}, which may belong to writers still
     * running. {@link ObjectInfo#key} is the leftover's path relative to the root (not a valid key
     * for the other methods); {@link ObjectInfo#lastModified} is its last write.
     */
    List<ObjectInfo> listAbandonedWrites(String prefix) throws IOException;

    /**
     * Deletes one leftover named by {@link #listAbandonedWrites}; a missing one is not an error. A
     * writer still writing it fails at commit.
     */
    void deleteAbandonedWrite(String path) throws IOException;
}
