package dev.cairn.storage.export;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.DType;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.CRC32C;

/**
 * A checkpoint as 4 workers save it, written with real shard objects through the public storage API:
 * row blocks, column blocks, an uneven 1-D tensor, a tensor smaller than the world (two workers hold
 * empty pieces), complex and bfloat16 pieces, a mirrored entry split across 3 workers, per-worker
 * unsharded state, a scalar held by worker 0 only, a json entry, and user metadata. Keeps every
 * whole tensor so tests can compare element by element. Used by the cli and integration tests too.
 */
public final class ShardedCheckpoint {
    public static final int WORLD = 4;

    /** A whole tensor as the trainers held it. */
    public record Whole(String name, DType dtype, long[] shape, byte[] data) {
        public ExportCheck.Expected expected(String as) {
            return new ExportCheck.Expected(as, dtype, shape, data);
        }
    }

    private final Random random;
    private final List<List<Manifest.EntryRef>> entries = new ArrayList<>();
    private final List<ByteArrayOutputStream> objects = new ArrayList<>();
    /** Sharded and replicated tensors by name; unsharded ones by {@code name@worker-i}. */
    public final Map<String, Whole> wholes = new LinkedHashMap<>();
    public final Map<String, Object> metadata = new LinkedHashMap<>();
    public static final String CONFIG_JSON = "{\"lr\": 0.1, \"name\": \"ünï\"}";

    private ShardedCheckpoint(long seed) {
        random = new Random(seed);
        for (int w = 0; w < WORLD; w++) {
            entries.add(new ArrayList<>());
            objects.add(new ByteArrayOutputStream());
        }
    }

    /** Writes and commits the checkpoint of {@code step}; returns the builder (its wholes) and commits the manifest. */
    public static ShardedCheckpoint commit(CheckpointStore store, long step, long seed) throws IOException {
        ShardedCheckpoint c = new ShardedCheckpoint(seed);
        c.blocks(c.random("model/rows", DType.FLOAT32, 10, 6), 0, 3, 3, 2, 2);
        c.blocks(c.random("model/cols", DType.FLOAT64, 5, 7), 1, 2, 2, 2, 1);
        c.blocks(c.random("model/vec", DType.INT64, 9), 0, 3, 2, 2, 2);
        c.blocks(c.random("model/tiny", DType.INT16, 2, 3), 0, 1, 1, 0, 0);
        c.blocks(c.random("model/complex", DType.COMPLEX64, 4, 2), 0, 1, 1, 1, 1);
        c.blocks(c.random("model/bf16", DType.BFLOAT16, 8, 3), 0, 2, 2, 2, 2);
        c.blocks(c.random("model/mask", DType.BOOL, 6), 0, 2, 2, 1, 1);
        c.replicated(c.random("optimizer/mirror", DType.FLOAT32, 4, 4), 3);
        for (int w = 0; w < WORLD; w++) {
            c.unsharded(c.random("rng/state", DType.UINT8, 16), w, "rng/state@worker-" + w);
        }
        c.unsharded(c.random("optimizer/step", DType.INT64), 0, "optimizer/step");
        byte[] json = CONFIG_JSON.getBytes(StandardCharsets.UTF_8);
        c.add(0, "config", Manifest.Tensor.of(DType.JSON, json.length), false, 0, json);
        c.metadata.put("loss", 0.25);
        c.metadata.put("epoch", 3);
        c.metadata.put("tag", "warm");
        new CheckpointCatalog(store).commit(c.write(store, step));
        return c;
    }

    private Whole random(String name, DType dtype, long... shape) {
        byte[] data = new byte[(int) dtype.byteLength(shape)];
        random.nextBytes(data);
        if (dtype == DType.BOOL) {
            for (int i = 0; i < data.length; i++) {
                data[i] &= 1;
            }
        }
        return new Whole(name, dtype, shape, data);
    }

    private void blocks(Whole whole, int dim, long... sizes) {
        wholes.put(whole.name(), whole);
        long at = 0;
        for (int w = 0; w < sizes.length; w++) {
            long[] offsets = new long[whole.shape().length];
            long[] shape = whole.shape().clone();
            offsets[dim] = at;
            shape[dim] = sizes[w];
            Manifest.Tensor t = Manifest.Tensor.of(whole.dtype(), shape).withGlobal(whole.shape(), offsets);
            add(w, whole.name(), t, false, 0, region(whole, offsets, shape));
            at += sizes[w];
        }
    }

    private void replicated(Whole whole, int pieces) {
        wholes.put(whole.name(), whole);
        byte[] data = whole.data();
        for (int w = 0; w < pieces; w++) {
            int from = data.length * w / pieces;
            int to = data.length * (w + 1) / pieces;
            add(w, whole.name(), Manifest.Tensor.of(whole.dtype(), whole.shape()), true, from, Arrays.copyOfRange(data, from, to));
        }
    }

    private void unsharded(Whole whole, int worker, String key) {
        wholes.put(key, whole);
        add(worker, whole.name(), Manifest.Tensor.of(whole.dtype(), whole.shape()), false, 0, whole.data());
    }

    private void add(int worker, String name, Manifest.Tensor t, boolean replicated, long entryOffset, byte[] bytes) {
        entries.get(worker).add(new Manifest.EntryRef(name, worker, objects.get(worker).size(), bytes.length, crc(bytes), replicated, t,
                entryOffset));
        objects.get(worker).writeBytes(bytes);
    }

    private Manifest write(CheckpointStore store, long step) throws IOException {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> all = new ArrayList<>();
        for (int w = 0; w < WORLD; w++) {
            byte[] object = objects.get(w).toByteArray();
            String key = object.length == 0 ? null : Layout.shardKey(saveId, w);
            if (key != null) {
                store.write(key, object);
            }
            shards.add(new Manifest.ShardRef(w, key, object.length, crc(object)));
            all.addAll(entries.get(w));
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-x", step, saveId, Instant.parse("2026-01-02T03:04:05Z"), WORLD, shards, all,
                metadata);
    }

    private static int crc(byte[] b) {
        CRC32C c = new CRC32C();
        c.update(b);
        return (int) c.getValue();
    }

    /** The C-order bytes of region {@code [offsets, offsets + shape)} of {@code whole}, element by element. */
    public static byte[] region(Whole whole, long[] offsets, long[] shape) {
        int item = whole.dtype().itemSize();
        long count = 1;
        for (long s : shape) {
            count *= s;
        }
        byte[] out = new byte[(int) (count * item)];
        long[] idx = new long[shape.length];
        for (long e = 0; e < count; e++) {
            long rem = e;
            for (int d = shape.length - 1; d >= 0; d--) {
                idx[d] = rem % shape[d];
                rem /= shape[d];
            }
            long flat = 0;
            for (int d = 0; d < shape.length; d++) {
                flat = flat * whole.shape()[d] + offsets[d] + idx[d];
            }
            System.arraycopy(whole.data(), (int) (flat * item), out, (int) (e * item), item);
        }
        return out;
    }

    /** What an export of this checkpoint holds: every tensor under its export name. */
    public List<ExportCheck.Expected> exported() {
        return wholes.entrySet().stream().map(e -> e.getValue().expected(e.getKey())).toList();
    }

    /** The metadata an export of this checkpoint carries in {@code format}. */
    public Map<String, String> exportedMetadata(ExportFormat format, String saveId, long step) {
        Map<String, String> m = new LinkedHashMap<>();
        metadata.forEach((k, v) -> m.put(k, String.valueOf(v)));
        m.put("cairn.runId", "run-x");
        m.put("cairn.step", Long.toString(step));
        m.put("cairn.saveId", saveId);
        m.put("cairn.worldSize", Integer.toString(WORLD));
        m.put("cairn.json.config", CONFIG_JSON);
        if (format == ExportFormat.SAFETENSORS) {
            m.put("cairn.dtype.model/complex", "complex64");
        } else {
            m.put("cairn.dtype.model/bf16", "bfloat16");
        }
        return m;
    }
}
