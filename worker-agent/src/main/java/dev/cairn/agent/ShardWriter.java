package dev.cairn.agent;

import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ObjectWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Streams one staged shard's chunks into one object (upload thread), keeping of the replicated
 * entries only this worker's byte ranges ({@link ReplicatedSplit}), computing each entry's (or
 * replicated piece's) CRC32C on the way; the object's CRC32C is
 * derived from the entries' (every byte is checksummed once). The object is created at the first
 * byte written: a shard with nothing to write leaves no object.
 */
final class ShardWriter {
    private static final Logger LOG = LoggerFactory.getLogger(ShardWriter.class);

    private final StagedShard shard;
    private final ShardUploader.StoreSupplier store;
    private final String key;
    private final int worker;
    private final int worldSize;
    private ReplicatedSplit split;
    private final AgentHooks hooks;
    private final CRC32C entryCrc = new CRC32C();
    private final List<EntryInfo> infos = new ArrayList<>();
    private int objectCrc;
    private ObjectWriter out;
    private long objectBytes;
    private int index = -1;
    private int finished = -1;
    private long remaining;
    private long entryStart;
    private boolean include;
    private long position; // bytes of the current entry consumed so far
    private long keepFrom; // of the current entry, this worker stores [keepFrom, keepTo)
    private long keepTo;
    private boolean halfwaySignalled;

    ShardWriter(StagedShard shard, ShardUploader.StoreSupplier store, String key, int worker, int worldSize, AgentHooks hooks) {
        this.shard = shard;
        this.store = store;
        this.key = key;
        this.worker = worker;
        this.worldSize = worldSize;
        this.hooks = hooks;
    }

    long objectBytes() {
        return objectBytes;
    }

    int objectCrc() {
        return objectCrc;
    }

    List<EntryInfo> entries() {
        return infos;
    }

    /** Returns false when the save was aborted meanwhile (nothing committed). */
    boolean run(PendingSave ps) throws IOException, InterruptedException {
        try {
            StagedShard.Chunk chunk;
            while ((chunk = shard.take()) != StagedShard.END) {
                try {
                    if (ps.aborted()) {
                        // the chunk goes back in the finally below: releasing it here too put one
                        // buffer twice in the pool, so two later chunks shared (and overwrote) memory
                        discard();
                        ShardUploader.drain(shard);
                        return false;
                    }
                    consume(chunk);
                } finally {
                    shard.release(chunk);
                }
                if (!halfwaySignalled && objectBytes * 2 >= shard.stagedBytes() && objectBytes > 0) {
                    halfwaySignalled = true;
                    hooks.onPhase(AgentHooks.Phase.UPLOAD_HALFWAY, ps.step);
                }
            }
            while (index + 1 < shard.entryCount()) {
                next();
            }
            finish();
            if (!halfwaySignalled) {
                hooks.onPhase(AgentHooks.Phase.UPLOAD_HALFWAY, ps.step);
            }
            if (ps.aborted()) {
                discard();
                return false;
            }
            if (out != null) {
                out.commit();
            }
            return true;
        } finally {
            discard();
        }
    }

    private void consume(StagedShard.Chunk chunk) throws IOException {
        ByteBuffer data = chunk.data();
        int p = 0;
        while (p < chunk.length()) {
            while (remaining == 0) {
                next();
            }
            int n = (int) Math.min(remaining, chunk.length() - p);
            // the part of [position, position + n) this worker keeps
            long from = Math.max(position, keepFrom);
            long to = Math.min(position + n, keepTo);
            if (include && from < to) {
                if (out == null) {
                    out = store.get().create(key);
                }
                int start = p + (int) (from - position);
                int end = p + (int) (to - position);
                entryCrc.update(data.limit(end).position(start));
                out.write(data.limit(end).position(start));
                objectBytes += end - start;
            }
            p += n;
            position += n;
            remaining -= n;
        }
    }

    private void next() throws IOException {
        finish();
        index++;
        StagedShard.StagedEntry e = shard.entry(index);
        remaining = e.length();
        position = 0;
        keepFrom = 0;
        keepTo = e.length();
        include = true;
        if (e.replicated()) {
            ReplicatedSplit.Piece piece = split().piece(e.name());
            include = piece.holds();
            keepFrom = piece.from();
            keepTo = piece.to();
        }
        entryStart = objectBytes;
        entryCrc.reset();
    }

    /**
     * The partition of the replicated entries, from the whole snapshot's list of them: known once
     * the snapshot is sealed. A snapshot larger than the staging budget streams before it is sealed;
     * if its first replicated byte comes before the seal, the save fails (the partition cannot be
     * known yet, and waiting for the seal could hold the chunk the trainer waits for).
     */
    private ReplicatedSplit split() throws IOException {
        if (split == null) {
            if (!shard.isSealed()) {
                throw new IOException("worker " + worker + ": the replicated entries are split across workers from the sealed snapshot's "
                        + "list of them, but this snapshot outgrew the staging budget and streams before it is sealed; "
                        + "raise the staging budget above the snapshot's size");
            }
            Map<String, Long> lengths = new LinkedHashMap<>();
            for (int i = 0; i < shard.entryCount(); i++) {
                StagedShard.StagedEntry e = shard.entry(i);
                if (e.replicated()) {
                    lengths.put(e.name(), e.length());
                }
            }
            split = new ReplicatedSplit(lengths, worker, worldSize);
        }
        return split;
    }

    private void finish() {
        if (index < 0 || finished == index) {
            return;
        }
        finished = index;
        StagedShard.StagedEntry e = shard.entry(index);
        if (include) {
            int crc = (int) entryCrc.getValue();
            long length = keepTo - keepFrom;
            objectCrc = Crc32cCombine.combine(objectCrc, crc, length);
            Manifest.Tensor t = e.tensor();
            EntryInfo.Builder info = EntryInfo.newBuilder().setName(e.name()).setOffset(entryStart).setLength(length)
                    .setCrc32C(crc).setReplicated(e.replicated()).setEntryOffset(keepFrom)
                    .setDtype(t.dtype().numpyName()).addAllShape(t.shape());
            if (t.globalShape() != null) {
                info.addAllGlobalShape(t.globalShape()).addAllGlobalOffsets(t.globalOffsets());
            }
            infos.add(info.build());
        }
    }

    private void discard() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException e) {
                LOG.debug("discarding {}: {}", key, e.toString());
            }
        }
    }
}
