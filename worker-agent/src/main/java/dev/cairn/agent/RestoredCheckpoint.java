package dev.cairn.agent;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.DType;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.LogicalTensors;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.RegionRead;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A committed checkpoint opened for restore. Entries are read one at a time with ranged reads and
 * checked against their CRC32C, so a worker reads only what it needs: its own shard's entries and
 * the replicated ones, or, when restoring onto another world size, any worker's entries by index —
 * or, for a tensor saved in pieces ({@code globalShape}/{@code globalOffsets}), any region of the
 * whole tensor with {@link #read(String, long[], long[], ByteBuffer)}, whatever world size saved it.
 */
public final class RestoredCheckpoint {
    private final CheckpointCatalog catalog;
    private final Manifest manifest;
    private final int worker;

    RestoredCheckpoint(CheckpointCatalog catalog, Manifest manifest, int worker) {
        this.catalog = catalog;
        this.manifest = manifest;
        this.worker = worker;
    }

    public long step() {
        return manifest.step();
    }

    public String saveId() {
        return manifest.saveId();
    }

    /** World size of the run that wrote the checkpoint. */
    public int worldSize() {
        return manifest.worldSize();
    }

    public Map<String, Object> metadata() {
        return manifest.metadata();
    }

    /** Names of the entries this worker restores: its own and the replicated ones. */
    public List<String> entryNames() {
        return manifest.entriesFor(worker).stream().map(Manifest.EntryRef::name).distinct().toList();
    }

    /** Reads this worker's entry {@code name} (or the replicated one), checking its CRC32C. */
    public byte[] read(String name) throws IOException {
        return read(worker, name);
    }

    /** Reads worker {@code shardOf}'s entry {@code name} (resharding onto another world size). */
    public byte[] read(int shardOf, String name) throws IOException {
        return catalog.readEntry(manifest, entry(shardOf, name));
    }

    /**
     * The type of this worker's entry {@code name} (or the replicated one): dtype, shape and, for a
     * piece of a larger tensor, the global shape and offsets. Entries of a format-1 manifest are
     * {@link Manifest.Tensor#bytes} of their length.
     *
     * @throws NoSuchElementException when there is no such entry
     */
    public Manifest.Tensor entryInfo(String name) {
        return entry(worker, name).tensor();
    }

    /** Streams this worker's entry {@code name}; the CRC32C is checked when the end is reached. */
    public InputStream open(String name) throws IOException {
        return catalog.openEntry(manifest, entry(worker, name));
    }

    private Manifest.EntryRef entry(int shardOf, String name) {
        return manifest.entry(shardOf, name).orElseThrow(() -> new NoSuchElementException(
                "checkpoint of step " + manifest.step() + " has no entry '" + name + "' for worker " + shardOf));
    }

    /**
     * The checkpoint's logical tensors: the pieces of every sharded tensor grouped by name (saved
     * by any number of workers), every replicated tensor, and every worker's unsharded entries.
     *
     * @throws ManifestException when the pieces of a name disagree on dtype or global shape, or overlap
     */
    public List<LogicalTensor> tensors() throws ManifestException {
        return catalog.tensors(manifest);
    }

    /**
     * Fills {@code dest} (from its position, which it advances) with the little-endian C-order
     * elements of region {@code [offsets, offsets + shape)} of the global tensor {@code name},
     * reading only the overlapping bytes of the pieces that store it, with ranged reads (at most 5%
     * more bytes than the region's, to merge neighbouring runs). This is how a worker of another
     * world size restores its part of a sharded tensor. A replicated or unsharded entry is read the
     * same way, its global shape being its shape (an unsharded name several workers hold: this
     * worker's entry). Only reads that cover a whole stored piece can be CRC32C-checked.
     *
     * @return bytes read from storage
     * @throws IllegalArgumentException naming the entry: no such entry, a rank mismatch, a region
     *     outside the global shape, {@code dest} too small, or elements of the region that no piece stores
     * @throws dev.cairn.storage.CorruptObjectException when a whole piece fails its checksum
     */
    public long read(String name, long[] offsets, long[] shape, ByteBuffer dest) throws IOException {
        return read(name, null, offsets, shape, dest).bytesRead();
    }

    /**
     * {@link #read(String, long[], long[], ByteBuffer)} that also refuses a tensor whose dtype is not
     * {@code expected} (null: any), and reports bytes needed and read and the number of ranged reads.
     */
    public RegionRead read(String name, DType expected, long[] offsets, long[] shape, ByteBuffer dest) throws IOException {
        LogicalTensor tensor = LogicalTensors.find(manifest, name, worker);
        return catalog.readRegion(manifest, tensor, expected, offsets, shape, dest);
    }

    /** The whole manifest (all workers' entries). */
    public Manifest manifest() {
        return manifest;
    }
}
