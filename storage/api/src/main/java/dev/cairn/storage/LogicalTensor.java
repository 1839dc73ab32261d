package dev.cairn.storage;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * One tensor of a checkpoint as the trainers saw it, whatever the world size that wrote it: its
 * element type, its whole ({@code global}) shape and the pieces that store it. Built from a manifest
 * by {@link LogicalTensors#of} (or {@link CheckpointCatalog#tensors}); read any region of it with
 * {@link CheckpointCatalog#readRegion}.
 *
 * @param name the entry name
 * @param dtype the element type every piece shares
 * @param globalShape the whole tensor's shape
 * @param kind how the tensor is stored
 * @param pieces where its elements are stored: for {@link Kind#SHARDED}, one per worker that saved a
 *     piece (in worker order); otherwise one piece covering the whole tensor
 */
public record LogicalTensor(String name, DType dtype, List<Long> globalShape, Kind kind, List<Piece> pieces) {

    public LogicalTensor {
        requireNonNull(name, "name is null");
        requireNonNull(dtype, "dtype is null");
        requireNonNull(kind, "kind is null");
        globalShape = List.copyOf(globalShape);
        pieces = List.copyOf(pieces);
    }

    /** How a logical tensor is stored. */
    public enum Kind {
        /** Pieces of one larger tensor ({@code globalShape}/{@code globalOffsets}), one per worker that saved one. */
        SHARDED,
        /** Identical on every worker, stored once (possibly split into byte pieces across workers, {@link Manifest#pieces}). */
        REPLICATED,
        /**
         * A worker's own entry that is not a piece of a larger tensor; another worker may hold a different entry of
         * the same name (a separate logical tensor of the same name).
         */
        UNSHARDED
    }

    /**
     * Where one part of the tensor is stored.
     *
     * @param worker the worker whose shard object holds it (for a replicated tensor, the worker of its first byte piece)
     * @param offsets where the piece starts in the global tensor, one per dimension
     * @param shape the piece's shape
     * @param entry the manifest entry (for a replicated tensor, its first byte piece)
     */
    public record Piece(int worker, List<Long> offsets, List<Long> shape, Manifest.EntryRef entry) {
        public Piece {
            offsets = List.copyOf(offsets);
            shape = List.copyOf(shape);
            requireNonNull(entry, "entry is null");
        }
    }

    /** Number of dimensions. */
    public int rank() {
        return globalShape.size();
    }

    /** The global shape as an array. */
    public long[] globalShapeArray() {
        return globalShape.stream().mapToLong(Long::longValue).toArray();
    }

    /** The whole tensor's byte length. @throws ArithmeticException past 2^63 − 1 */
    public long byteLength() {
        return dtype.byteLength(globalShapeArray());
    }
}
