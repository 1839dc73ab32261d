package dev.cairn.storage.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import java.util.List;

/** Which part of a checkpoint a {@link DirectoryRestore} writes. */
public sealed interface RestoreSelection {
    /** Every entry: each worker's own ones and the replicated ones. */
    static RestoreSelection all() {
        return new All();
    }

    /** What saved worker {@code worker} restores: its own entries and the replicated ones. */
    static RestoreSelection worker(int worker) {
        return new Worker(worker);
    }

    /**
     * What rank {@code rank} of a new world of {@code world} workers needs: of every sharded tensor
     * its rows along dimension 0 by NumPy's {@code array_split} rule ({@link #rows}), every
     * replicated entry, and the unsharded entries of saved worker {@code rank} (none when the
     * checkpoint has fewer workers). A sharded scalar (rank 0) goes whole to every rank.
     *
     * @throws IllegalArgumentException unless {@code world ≥ 1} and {@code 0 ≤ rank < world}
     */
    static RestoreSelection rank(int rank, int world) {
        if (world < 1) {
            throw new IllegalArgumentException("--world must be at least 1, was " + world);
        }
        if (rank < 0 || rank >= world) {
            throw new IllegalArgumentException("--rank must be between 0 and " + (world - 1) + " for --world " + world + ", was " + rank);
        }
        return new Rank(rank, world);
    }

    /**
     * NumPy's {@code array_split} of {@code length} rows over {@code world} ranks: the first
     * {@code length % world} ranks get {@code length / world + 1} rows, the others
     * {@code length / world}. Returns {start, count} of {@code rank}'s rows.
     */
    static long[] rows(long length, int world, int rank) {
        long base = length / world;
        long extra = length % world;
        return new long[] {rank * base + Math.min(rank, extra), base + (rank < extra ? 1 : 0)};
    }

    List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) throws java.io.IOException;

    ObjectNode toJson(ObjectMapper json);

    /** Every entry. */
    record All() implements RestoreSelection {
        @Override
        public List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) {
            return DirectoryRestore.wholeEntries(catalog, m, m.logicalEntries());
        }

        @Override
        public ObjectNode toJson(ObjectMapper json) {
            return json.createObjectNode();
        }
    }

    /** Rank {@code rank} of a new world of {@code world}. */
    record Rank(int rank, int world) implements RestoreSelection {
        @Override
        public List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) throws java.io.IOException {
            List<RestoreFile> files = new java.util.ArrayList<>();
            for (LogicalTensor t : catalog.tensors(m)) {
                Manifest.EntryRef first = t.pieces().get(0).entry();
                switch (t.kind()) {
                    case REPLICATED -> files.add(DirectoryRestore.wholeEntry(catalog, m, first));
                    case UNSHARDED -> {
                        if (first.worker() == rank) {
                            files.add(DirectoryRestore.wholeEntry(catalog, m, first));
                        }
                    }
                    case SHARDED -> files.add(region(catalog, m, t));
                }
            }
            return files;
        }

        private RestoreFile region(CheckpointCatalog catalog, Manifest m, LogicalTensor t) {
            long[] offsets = new long[t.rank()];
            long[] shape = t.globalShapeArray();
            if (t.rank() > 0) {
                long[] rows = rows(shape[0], world, rank);
                offsets[0] = rows[0];
                shape[0] = rows[1];
            }
            ExportTensor tensor = new ExportTensor(t.name(), t.dtype(), java.util.Arrays.stream(shape).boxed().toList(),
                    () -> new RegionChannel(catalog, m, t, offsets, shape, TensorFileWriter.SLAB_BYTES));
            return new RestoreFile("rank-" + rank + "/" + EntryNames.check(t.name()), t.name(), RestoreFile.Kind.REGION, null, tensor,
                    t.globalShape(), java.util.Arrays.stream(offsets).boxed().toList());
        }

        @Override
        public ObjectNode toJson(ObjectMapper json) {
            return json.createObjectNode().put("world", world).put("rank", rank);
        }
    }

    /** One saved worker's view. */
    record Worker(int worker) implements RestoreSelection {
        @Override
        public List<RestoreFile> files(CheckpointCatalog catalog, Manifest m) {
            if (worker < 0 || worker >= m.worldSize()) {
                throw new IllegalArgumentException("--worker " + worker + " is outside the checkpoint's world size " + m.worldSize());
            }
            return DirectoryRestore.wholeEntries(catalog, m, m.entriesFor(worker));
        }

        @Override
        public ObjectNode toJson(ObjectMapper json) {
            return json.createObjectNode().put("worker", worker);
        }
    }
}
