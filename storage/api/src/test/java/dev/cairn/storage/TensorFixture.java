package dev.cairn.storage;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes a checkpoint of whole tensors cut into pieces, as N workers would have saved them, with real
 * shard objects, and keeps the whole tensors so tests can compare any region element by element.
 */
final class TensorFixture {
    /** A whole tensor the fixture saved. */
    record Whole(String name, DType dtype, long[] shape, byte[] data) {}

    private final CheckpointStore store;
    private final int world;
    private final Random random;
    private final List<List<Manifest.EntryRef>> entries = new ArrayList<>();
    private final List<ByteArrayOutputStream> objects = new ArrayList<>();
    final Map<String, Whole> wholes = new java.util.LinkedHashMap<>();

    TensorFixture(CheckpointStore store, int world, long seed) {
        this.store = store;
        this.world = world;
        this.random = new Random(seed);
        for (int w = 0; w < world; w++) {
            entries.add(new ArrayList<>());
            objects.add(new ByteArrayOutputStream());
        }
    }

    Whole random(String name, DType dtype, long... shape) {
        byte[] data = new byte[(int) dtype.byteLength(shape)];
        random.nextBytes(data);
        Whole whole = new Whole(name, dtype, shape, data);
        wholes.put(name, whole);
        return whole;
    }

    /** Saves piece {@code [offsets, offsets + shape)} of {@code whole} as worker {@code worker}'s entry. */
    TensorFixture piece(Whole whole, int worker, long[] offsets, long[] shape) {
        byte[] bytes = region(whole, offsets, shape);
        Manifest.Tensor t = new Manifest.Tensor(whole.dtype(), box(shape), box(whole.shape()), box(offsets));
        add(worker, new Manifest.EntryRef(whole.name(), worker, objects.get(worker).size(), bytes.length, ManifestFixtures.crc(bytes), false, t),
                bytes);
        return this;
    }

    /** Saves {@code whole} split along dimension {@code dim} into consecutive blocks of the given sizes, one per worker from 0. */
    TensorFixture blocks(Whole whole, int dim, long... sizes) {
        long at = 0;
        for (int w = 0; w < sizes.length; w++) {
            long[] offsets = new long[whole.shape().length];
            long[] shape = whole.shape().clone();
            offsets[dim] = at;
            shape[dim] = sizes[w];
            piece(whole, w, offsets, shape);
            at += sizes[w];
        }
        return this;
    }

    /** Saves {@code whole} as a replicated entry split into byte pieces on the first {@code pieces} workers. */
    TensorFixture replicated(Whole whole, int pieces) {
        byte[] data = whole.data();
        Manifest.Tensor t = Manifest.Tensor.of(whole.dtype(), whole.shape());
        for (int w = 0; w < pieces; w++) {
            int from = data.length * w / pieces;
            int to = data.length * (w + 1) / pieces;
            byte[] bytes = java.util.Arrays.copyOfRange(data, from, to);
            add(w, new Manifest.EntryRef(whole.name(), w, objects.get(w).size(), bytes.length, ManifestFixtures.crc(bytes), true, t, from), bytes);
        }
        return this;
    }

    /** Saves {@code whole} as worker {@code worker}'s own entry (no global shape). */
    TensorFixture unsharded(Whole whole, int worker) {
        byte[] bytes = whole.data();
        add(worker, new Manifest.EntryRef(whole.name(), worker, objects.get(worker).size(), bytes.length, ManifestFixtures.crc(bytes), false,
                Manifest.Tensor.of(whole.dtype(), whole.shape())), bytes);
        return this;
    }

    private void add(int worker, Manifest.EntryRef ref, byte[] bytes) {
        entries.get(worker).add(ref);
        objects.get(worker).writeBytes(bytes);
    }

    /** Writes the shard objects and returns the (uncommitted) manifest. */
    Manifest write(long step) throws IOException {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> all = new ArrayList<>();
        for (int w = 0; w < world; w++) {
            byte[] object = objects.get(w).toByteArray();
            String key = object.length == 0 ? null : Layout.shardKey(saveId, w);
            if (key != null) {
                store.write(key, object);
            }
            shards.add(new Manifest.ShardRef(w, key, object.length, ManifestFixtures.crc(object)));
            all.addAll(entries.get(w));
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", step, saveId, Instant.parse("2026-01-02T03:04:05Z"), world, shards, all,
                Map.of());
    }

    /** The C-order bytes of region {@code [offsets, offsets + shape)} of {@code whole}, element by element (the reference). */
    static byte[] region(Whole whole, long[] offsets, long[] shape) {
        int item = whole.dtype().itemSize();
        int rank = shape.length;
        long count = 1;
        for (long s : shape) {
            count *= s;
        }
        byte[] out = new byte[(int) (count * item)];
        long[] idx = new long[rank];
        for (long e = 0; e < count; e++) {
            long rem = e;
            long flat = 0;
            for (int d = rank - 1; d >= 0; d--) {
                idx[d] = rem % shape[d];
                rem /= shape[d];
            }
            for (int d = 0; d < rank; d++) {
                flat = flat * whole.shape()[d] + offsets[d] + idx[d];
            }
            System.arraycopy(whole.data(), (int) (flat * item), out, (int) (e * item), item);
        }
        return out;
    }

    static List<Long> box(long[] values) {
        return java.util.Arrays.stream(values).boxed().toList();
    }
}
