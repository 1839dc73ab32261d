package dev.cairn.storage;

import static java.util.Objects.requireNonNull;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The commit record of one checkpoint: which objects hold its shards and where every entry lives
 * in them. A checkpoint exists if and only if its manifest exists and validates.
 *
 * @param formatVersion {@link ManifestCodec#FORMAT_VERSION}
 * @param runId the training run the checkpoint belongs to
 * @param step the training step the state was taken at
 * @param saveId the save attempt that wrote the shards ({@link Layout#newSaveId})
 * @param createdAt commit time
 * @param worldSize number of workers that wrote the checkpoint
 * @param shards one per worker, in worker order
 * @param entries every entry, in (worker, offset) order
 * @param metadata user metadata (epoch, loss, ...): strings, numbers and booleans
 */
public record Manifest(
        int formatVersion,
        String runId,
        long step,
        String saveId,
        Instant createdAt,
        int worldSize,
        List<ShardRef> shards,
        List<EntryRef> entries,
        Map<String, Object> metadata) {

    public Manifest {
        requireNonNull(runId, "runId is null");
        requireNonNull(saveId, "saveId is null");
        requireNonNull(createdAt, "createdAt is null");
        shards = List.copyOf(shards);
        entries = List.copyOf(entries);
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /**
     * One worker's shard object.
     *
     * @param objectKey the object, or null when the shard has no bytes
     */
    public record ShardRef(int worker, String objectKey, long length, int crc32c) {}

    /**
     * One entry: {@code length} bytes at {@code offset} of worker {@code worker}'s shard object.
     * A replicated entry is the same on every worker and stored once, split into pieces across the
     * workers: each piece is one EntryRef holding bytes {@code [entryOffset, entryOffset + length)}
     * of the logical entry, whose type {@code tensor} (and so whose total length) every piece
     * repeats. A sharded entry is one piece with {@code entryOffset} 0.
     */
    public record EntryRef(String name, int worker, long offset, long length, int crc32c, boolean replicated, Tensor tensor,
            long entryOffset) {
        /** {@code tensor} null is an untyped entry: {@link Tensor#bytes}{@code (length)}. */
        public EntryRef {
            if (tensor == null) {
                tensor = Tensor.bytes(Math.max(0, length));
            }
        }

        /** A whole entry (piece at entry offset 0). */
        public EntryRef(String name, int worker, long offset, long length, int crc32c, boolean replicated, Tensor tensor) {
            this(name, worker, offset, length, crc32c, replicated, tensor, 0);
        }

        /** An untyped entry ({@link DType#BYTES}, shape {@code [length]}), as every entry of format version 1. */
        public EntryRef(String name, int worker, long offset, long length, int crc32c, boolean replicated) {
            this(name, worker, offset, length, crc32c, replicated, null);
        }
    }

    /**
     * What an entry's bytes are (format version 2): little-endian C-order elements of {@code dtype}
     * in {@code shape}; for a piece of a larger tensor also the whole tensor's shape and the
     * piece's offset in it, one per dimension ({@code globalShape} and {@code globalOffsets} both
     * null otherwise).
     */
    public record Tensor(DType dtype, List<Long> shape, List<Long> globalShape, List<Long> globalOffsets) {
        /** Most dimensions an entry may have. */
        public static final int MAX_RANK = 32;

        public Tensor {
            requireNonNull(dtype, "dtype is null");
            shape = List.copyOf(shape);
            globalShape = globalShape == null ? null : List.copyOf(globalShape);
            globalOffsets = globalOffsets == null ? null : List.copyOf(globalOffsets);
        }

        /** Opaque bytes of {@code length}. */
        public static Tensor bytes(long length) {
            return new Tensor(DType.BYTES, List.of(length), null, null);
        }

        /** A whole tensor (or any entry that is not a piece of a larger one). */
        public static Tensor of(DType dtype, long... shape) {
            return new Tensor(dtype, boxed(shape), null, null);
        }

        /** This tensor as the piece at {@code globalOffsets} of a tensor of {@code globalShape}; nulls for none. */
        public Tensor withGlobal(long[] globalShape, long[] globalOffsets) {
            return new Tensor(dtype, shape, globalShape == null ? null : boxed(globalShape),
                    globalOffsets == null ? null : boxed(globalOffsets));
        }

        public long[] shapeArray() {
            return shape.stream().mapToLong(Long::longValue).toArray();
        }

        /**
         * Checks this against an entry of {@code length} bytes: rank at most {@link #MAX_RANK},
         * dimensions non-negative, {@code length == itemsize × product(shape)} without overflow;
         * global shape and offsets both present or both absent, one per dimension, non-negative,
         * and {@code offset + shape <= globalShape} in every dimension.
         *
         * @throws IllegalArgumentException naming what is wrong
         */
        public void check(long length) {
            if (shape.size() > MAX_RANK) {
                throw new IllegalArgumentException("rank " + shape.size() + " exceeds " + MAX_RANK);
            }
            long expected;
            try {
                expected = dtype.byteLength(shapeArray());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(dtype.numpyName() + shape + " exceeds 2^63 bytes");
            }
            if (expected != length) {
                throw new IllegalArgumentException("length " + length + " is not " + dtype.numpyName() + shape + " = " + expected + " bytes");
            }
            if ((globalShape == null) != (globalOffsets == null)) {
                throw new IllegalArgumentException("globalShape and globalOffsets go together");
            }
            if (globalShape == null) {
                return;
            }
            if (globalShape.size() != shape.size() || globalOffsets.size() != shape.size()) {
                throw new IllegalArgumentException("globalShape " + globalShape + " and globalOffsets " + globalOffsets
                        + " need one value per dimension of shape " + shape);
            }
            for (int d = 0; d < shape.size(); d++) {
                long g = globalShape.get(d);
                long o = globalOffsets.get(d);
                // compared without adding: offset + shape may overflow 64 bits
                if (g < 0 || o < 0 || o > g || shape.get(d) > g - o) {
                    throw new IllegalArgumentException("piece at " + globalOffsets + " of shape " + shape
                            + " does not lie inside globalShape " + globalShape + " (dimension " + d + ")");
                }
            }
        }

        private static List<Long> boxed(long[] values) {
            return java.util.Arrays.stream(values).boxed().toList();
        }
    }

    /** Sum of the shard objects' lengths. */
    public long totalBytes() {
        return shards.stream().mapToLong(ShardRef::length).sum();
    }

    public ShardRef shard(int worker) {
        return shards.stream().filter(s -> s.worker() == worker).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("manifest of step " + step + " has no shard of worker " + worker));
    }

    /**
     * What worker {@code worker} restores: its own sharded entries and every replicated entry, the
     * latter once each (its first piece; {@link #pieces} has them all).
     */
    public List<EntryRef> entriesFor(int worker) {
        return logicalEntries().stream().filter(e -> e.replicated() || e.worker() == worker).toList();
    }

    /** Every entry once: each sharded entry, and each replicated entry by its first piece. */
    public List<EntryRef> logicalEntries() {
        java.util.Set<String> seen = new java.util.HashSet<>();
        return entries.stream().filter(e -> !e.replicated() || e.entryOffset() == 0 && seen.add(e.name())).toList();
    }

    /**
     * The pieces that hold {@code entry}'s bytes, in entry-offset order: the entry itself when it is
     * sharded, every replicated piece of its name otherwise (they tile the entry in a valid manifest).
     */
    public List<EntryRef> pieces(EntryRef entry) {
        if (!entry.replicated()) {
            return List.of(entry);
        }
        return entries.stream().filter(e -> e.replicated() && e.name().equals(entry.name()))
                .sorted(java.util.Comparator.comparingLong(EntryRef::entryOffset)).toList();
    }

    /** The logical length of {@code entry}: the sum of its pieces' lengths. */
    public long logicalLength(EntryRef entry) {
        return pieces(entry).stream().mapToLong(EntryRef::length).sum();
    }

    /** The entry {@code name} as worker {@code worker} sees it: its own, or the replicated one. */
    public Optional<EntryRef> entry(int worker, String name) {
        EntryRef replicated = null;
        for (EntryRef e : entries) {
            if (!e.name().equals(name)) {
                continue;
            }
            if (!e.replicated() && e.worker() == worker) {
                return Optional.of(e);
            }
            if (e.replicated() && (replicated == null || e.entryOffset() < replicated.entryOffset())) {
                replicated = e;
            }
        }
        return Optional.ofNullable(replicated);
    }
}
