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
     * A replicated entry is the same on every worker and stored once, in the shard of the worker
     * that wrote it.
     */
    public record EntryRef(String name, int worker, long offset, long length, int crc32c, boolean replicated) {}

    /** Sum of the shard objects' lengths. */
    public long totalBytes() {
        return shards.stream().mapToLong(ShardRef::length).sum();
    }

    public ShardRef shard(int worker) {
        return shards.stream().filter(s -> s.worker() == worker).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("manifest of step " + step + " has no shard of worker " + worker));
    }

    /**
     * What worker {@code worker} restores: its own sharded entries and every replicated entry.
     */
    public List<EntryRef> entriesFor(int worker) {
        return entries.stream().filter(e -> e.replicated() || e.worker() == worker).toList();
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
            if (e.replicated()) {
                replicated = e;
            }
        }
        return Optional.ofNullable(replicated);
    }
}
