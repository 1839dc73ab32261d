package dev.cairn.storage;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;

/**
 * Add-on for stores that can serve many ranged reads of one object through one open handle (a local
 * file: opened once, then read at positions). A region read of a column-split tensor makes one
 * ranged read per row of each piece it overlaps; on such a store it opens each object once instead
 * of once per range ({@link CheckpointCatalog#readRegion}). The ranges and their errors are those of
 * {@link CheckpointStore#read}.
 */
public interface SupportsRangedReads {
    /**
     * Opens {@code key} for ranged reads.
     *
     * @throws NoSuchObjectException if the object does not exist (also when the key names a directory)
     */
    Ranges openRanges(String key) throws IOException;

    /** One object opened for ranged reads. Not thread-safe; {@link #close} releases the handle. */
    interface Ranges extends Closeable {
        /**
         * {@code length} bytes of the object from {@code offset}, as {@link CheckpointStore#read}: the
         * stream throws {@link java.io.EOFException} when the range extends past the end. Streams
         * stay valid until this handle is closed; closing one does not close the handle.
         */
        InputStream read(long offset, long length) throws IOException;
    }
}
