package dev.cairn.agent;

import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ObjectWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Streams one staged shard's chunks into one object (upload thread), skipping the replicated entries
 * this worker does not write, computing each entry's CRC32C on the way; the object's CRC32C is
 * derived from the entries' (every byte is checksummed once). The object is created at the first
 * byte written: a shard with nothing to write leaves no object.
 */
final class ShardWriter {
    private static final Logger LOG = LoggerFactory.getLogger(ShardWriter.class);

    private final StagedShard shard;
    private final ShardUploader.StoreSupplier store;
    private final String key;
    private final boolean writesReplicated;
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
    private boolean halfwaySignalled;

    ShardWriter(StagedShard shard, ShardUploader.StoreSupplier store, String key, boolean writesReplicated, AgentHooks hooks) {
        this.shard = shard;
        this.store = store;
        this.key = key;
        this.writesReplicated = writesReplicated;
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
            if (include) {
                if (out == null) {
                    out = store.get().create(key);
                }
                entryCrc.update(data.limit(p + n).position(p));
                out.write(data.limit(p + n).position(p));
                objectBytes += n;
            }
            p += n;
            remaining -= n;
        }
    }

    private void next() {
        finish();
        index++;
        StagedShard.StagedEntry e = shard.entry(index);
        remaining = e.length();
        include = !e.replicated() || writesReplicated;
        entryStart = objectBytes;
        entryCrc.reset();
    }

    private void finish() {
        if (index < 0 || finished == index) {
            return;
        }
        finished = index;
        StagedShard.StagedEntry e = shard.entry(index);
        if (include) {
            int crc = (int) entryCrc.getValue();
            objectCrc = Crc32cCombine.combine(objectCrc, crc, e.length());
            Manifest.Tensor t = e.tensor();
            EntryInfo.Builder info = EntryInfo.newBuilder().setName(e.name()).setOffset(entryStart).setLength(e.length())
                    .setCrc32C(crc).setReplicated(e.replicated()).setDtype(t.dtype().numpyName()).addAllShape(t.shape());
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
