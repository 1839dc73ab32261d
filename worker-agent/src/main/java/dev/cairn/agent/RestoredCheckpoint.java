package dev.cairn.agent;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A committed checkpoint opened for restore. Entries are read one at a time with ranged reads and
 * checked against their CRC32C, so a worker reads only what it needs: its own shard's entries and
 * the replicated ones, or, when restoring onto another world size, any worker's entries by index.
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

    /** The whole manifest (all workers' entries). */
    public Manifest manifest() {
        return manifest;
    }
}
