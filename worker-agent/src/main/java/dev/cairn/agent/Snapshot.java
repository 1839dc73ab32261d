package dev.cairn.agent;

import dev.cairn.storage.DType;
import dev.cairn.storage.Manifest;
import java.nio.ByteBuffer;

/**
 * What a trainer hands to {@link CairnAgent#save}: named entries, copied into staging memory the
 * moment they are put, so the trainer may change its state as soon as {@code save} returns.
 *
 * <p>Names follow {@link dev.cairn.storage.EntryNames}: relative '/'-separated paths such as
 * {@code model/dense_1/kernel}; an invalid or repeated name throws {@link IllegalArgumentException}
 * and aborts the save. Entries put with {@code putReplicated} are identical on every worker
 * (mirrored variables) and are stored once, by the worker the coordinator picks.
 *
 * <p>Typed puts ({@code float[]}, {@code long[]}, ...) store the values little-endian, in array
 * order, and record the entry's {@link DType} and shape ({@code [length]}); byte puts record
 * {@link DType#BYTES}.
 */
public interface Snapshot {

    /** Copies a sharded entry (this worker's own). */
    void put(String name, byte[] bytes, int offset, int length);

    default void put(String name, byte[] bytes) {
        put(name, bytes, 0, bytes.length);
    }

    /** Copies the buffer's remaining bytes; its position is not changed. */
    void put(String name, ByteBuffer buffer);

    /**
     * Copies the buffer's remaining bytes as an entry of {@code dtype} and {@code shape} (C order,
     * little-endian); its position is not changed.
     *
     * @throws IllegalArgumentException when the byte count is not {@code dtype}'s item size times the
     *     product of {@code shape}
     */
    void put(String name, ByteBuffer buffer, DType dtype, long... shape);

    /**
     * As {@link #put(String, ByteBuffer, DType, long...)} with the entry's whole type: for a piece
     * of a larger tensor also its global shape and offsets ({@link Manifest.Tensor#withGlobal}).
     *
     * @throws IllegalArgumentException when {@link Manifest.Tensor#check} refuses the buffer's length
     */
    void put(String name, ByteBuffer buffer, Manifest.Tensor tensor);

    void put(String name, float[] values);

    void put(String name, double[] values);

    void put(String name, int[] values);

    void put(String name, long[] values);

    void put(String name, short[] values);

    /** Copies an entry that is the same on every worker. */
    void putReplicated(String name, byte[] bytes, int offset, int length);

    default void putReplicated(String name, byte[] bytes) {
        putReplicated(name, bytes, 0, bytes.length);
    }

    /** Copies a replicated entry from the buffer's remaining bytes; its position is not changed. */
    void putReplicated(String name, ByteBuffer buffer);

    /** As {@link #put(String, ByteBuffer, DType, long...)}, for an entry that is the same on every worker. */
    void putReplicated(String name, ByteBuffer buffer, DType dtype, long... shape);

    /** As {@link #put(String, ByteBuffer, Manifest.Tensor)}, for an entry that is the same on every worker. */
    void putReplicated(String name, ByteBuffer buffer, Manifest.Tensor tensor);

    void putReplicated(String name, float[] values);

    void putReplicated(String name, double[] values);

    void putReplicated(String name, int[] values);

    void putReplicated(String name, long[] values);

    void putReplicated(String name, short[] values);

    /**
     * Adds an entry whose bytes (the buffer's remaining bytes; its position is not changed) are
     * uploaded straight from {@code buffer}, without a copy into staging: the caller must leave
     * them unchanged until the save has ended ({@link SaveHandle#committed()} completed, either
     * way). For buffers that already are a staging area of their own, such as the sidecar's shared
     * memory. {@code replicated} as {@link #putReplicated(String, ByteBuffer, Manifest.Tensor)}.
     *
     * @throws IllegalArgumentException when {@link Manifest.Tensor#check} refuses the buffer's length
     */
    void putInPlace(String name, ByteBuffer buffer, Manifest.Tensor tensor, boolean replicated);

    /**
     * Records user metadata (epoch, loss, accuracy) in the manifest: a String, Number or Boolean.
     * Retention can keep the best checkpoints by a numeric metadata key.
     */
    void metadata(String key, Object value);
}
