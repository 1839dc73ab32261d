package dev.cairn.storage.export;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.DType;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Exports one checkpoint to one file ({@link ExportFormat}), whatever world size wrote it. What goes
 * in (docs/resharding.md, "Export"):
 *
 * <ul>
 *   <li>every sharded tensor, reassembled whole under its name (read in slabs of at most
 *       {@link TensorFileWriter#SLAB_BYTES} with {@link CheckpointCatalog#readRegion});
 *   <li>every replicated entry once, under its name;
 *   <li>an unsharded entry (a worker's own, not a piece of a larger tensor) under its name when one
 *       worker holds that name, else once per worker as {@code <name>@worker-<i>};
 *   <li>{@code json} entries not as tensors but in the metadata, as {@code cairn.json.<name>} (the
 *       JSON text), named as above;
 *   <li>the metadata: the checkpoint's user metadata (strings as they are, numbers and booleans as
 *       JSON text), {@code cairn.runId}, {@code cairn.step}, {@code cairn.saveId},
 *       {@code cairn.worldSize}, and {@code cairn.dtype.<name>} for tensors stored as views
 *       ({@link TensorFileWriter}). A user key equal to a generated one is an error.
 * </ul>
 */
public final class CheckpointExport {
    /** The largest json entry put into the metadata. */
    static final int MAX_JSON_BYTES = 16 << 20;

    private final List<ExportTensor> tensors;
    private final Map<String, String> metadata;

    private CheckpointExport(List<ExportTensor> tensors, Map<String, String> metadata) {
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * What exporting {@code manifest} writes. Reads the {@code json} entries (for the metadata), nothing else.
     *
     * @throws dev.cairn.storage.ManifestException when pieces of a sharded tensor disagree or overlap
     * @throws IllegalArgumentException when a json entry is not UTF-8 or too large, or a user metadata key collides
     */
    public static CheckpointExport plan(CheckpointCatalog catalog, Manifest manifest) throws IOException {
        List<LogicalTensor> logical = catalog.tensors(manifest);
        Map<String, Integer> holders = new LinkedHashMap<>();
        for (LogicalTensor t : logical) {
            holders.merge(t.name(), 1, Integer::sum);
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        manifest.metadata().forEach((k, v) -> metadata.put(k, String.valueOf(v)));
        TensorFileWriter.putNew(metadata, "cairn.runId", manifest.runId());
        TensorFileWriter.putNew(metadata, "cairn.step", Long.toString(manifest.step()));
        TensorFileWriter.putNew(metadata, "cairn.saveId", manifest.saveId());
        TensorFileWriter.putNew(metadata, "cairn.worldSize", Integer.toString(manifest.worldSize()));
        List<ExportTensor> tensors = new ArrayList<>();
        for (LogicalTensor t : logical) {
            String name = holders.get(t.name()) > 1 ? t.name() + "@worker-" + t.pieces().get(0).worker() : t.name();
            if (t.dtype() == DType.JSON) {
                TensorFileWriter.putNew(metadata, "cairn.json." + name, json(catalog, manifest, t));
            } else {
                tensors.add(new ExportTensor(name, t.dtype(), t.globalShape(), source(catalog, manifest, t)));
            }
        }
        return new CheckpointExport(List.copyOf(tensors), metadata);
    }

    private static ExportTensor.Source source(CheckpointCatalog catalog, Manifest m, LogicalTensor t) {
        if (t.kind() == LogicalTensor.Kind.SHARDED) {
            long[] global = t.globalShapeArray();
            return () -> new RegionChannel(catalog, m, t, new long[global.length], global, TensorFileWriter.SLAB_BYTES);
        }
        // a whole stored entry: one sequential, checksum-checked read
        Manifest.EntryRef entry = t.pieces().get(0).entry();
        return () -> new StreamChannel(catalog.openEntry(m, entry));
    }

    private static String json(CheckpointCatalog catalog, Manifest m, LogicalTensor t) throws IOException {
        long length = t.byteLength();
        if (length > MAX_JSON_BYTES) {
            throw new IllegalArgumentException("json entry '" + t.name() + "' has " + length + " bytes, more than the "
                    + MAX_JSON_BYTES + " an export puts into its metadata");
        }
        ByteBuffer bytes = ByteBuffer.allocate((int) length);
        try (RegionChannel in = new RegionChannel(catalog, m, t, new long[t.rank()], t.globalShapeArray(), MAX_JSON_BYTES)) {
            while (bytes.hasRemaining() && in.read(bytes) >= 0) {
                // the region holds exactly length bytes
            }
        }
        var decoder = StandardCharsets.UTF_8.newDecoder();
        try {
            return decoder.decode(bytes.flip()).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException("json entry '" + t.name() + "' is not UTF-8 text");
        }
    }

    /** The tensors, in checkpoint order. */
    public List<ExportTensor> tensors() {
        return tensors;
    }

    /** The metadata the file gets (before the writer adds {@code cairn.dtype.} keys). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Bytes of tensor data the file will hold. */
    public long bytes() {
        return tensors.stream().mapToLong(ExportTensor::byteLength).sum();
    }

    /** Writes the file: {@link TensorFileWriter#write} of this plan. */
    public ExportResult writeTo(ExportFormat format, Path target, boolean overwrite, LongConsumer progress) throws IOException {
        return TensorFileWriter.write(format, tensors, metadata, target, overwrite, progress);
    }
}
