package dev.cairn.coordinator;

import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.storage.DType;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import java.util.HashSet;
import java.util.Set;

/**
 * Checks a shard report against the save it belongs to before the state machine accepts it. A
 * report that fails aborts the save with {@code INVALID_SHARD}; the problem names the field.
 */
final class ReportValidator {
    private ReportValidator() {}

    /**
     * Returns what is wrong with {@code r} from {@code worker} for the released {@code save}, or
     * null when it is fine. The report's step must be the released step, its length non-negative,
     * its object key exactly the layout's key for (save id, worker) when the shard is not empty and
     * empty when it is, and every entry must lie inside the shard. Replicated entries are pieces of
     * a logical entry; that the pieces of all workers tile it is checked on the built manifest. Whether the object exists with
     * that length is checked against storage right before the commit ({@link ManifestCommitter}).
     */
    static String problem(int worker, ShardReport r, PendingSave save) {
        if (r.getStep() != save.step) {
            return "step " + r.getStep() + " is not the released step " + save.step;
        }
        if (r.getLength() < 0) {
            return "length " + r.getLength() + " is negative";
        }
        String expectedKey = Layout.shardKey(save.saveId(), worker);
        if (r.getLength() > 0 && !r.getObjectKey().equals(expectedKey)) {
            return "object_key '" + LogSafe.truncate(r.getObjectKey()) + "' is not " + expectedKey;
        }
        if (r.getLength() == 0 && !r.getObjectKey().isEmpty()) {
            return "object_key: an empty shard names an object";
        }
        try {
            PendingSave.parseMetadata(r.getMetadataJson());
        } catch (IllegalArgumentException e) {
            return "metadata_json is not a JSON object";
        }
        Set<String> names = new HashSet<>();
        for (EntryInfo e : r.getEntriesList()) {
            try {
                EntryNames.check(e.getName());
            } catch (IllegalArgumentException ex) {
                return "entries.name: " + ex.getMessage();
            }
            if (!names.add(e.getName())) {
                return "entries.name '" + e.getName() + "' appears twice";
            }
            if (e.getEntryOffset() < 0 || !e.getReplicated() && e.getEntryOffset() != 0) {
                return "entries.entry_offset: entry '" + e.getName() + "' has entry_offset " + e.getEntryOffset()
                        + (e.getReplicated() ? "" : " but is not replicated");
            }
            // offset + length compared without overflow: both are non-negative here
            if (e.getOffset() < 0 || e.getLength() < 0 || e.getOffset() > r.getLength() - e.getLength()) {
                return "entries.offset/length: entry '" + e.getName() + "' (offset " + e.getOffset() + ", length "
                        + e.getLength() + ") lies outside the shard of " + r.getLength() + " bytes";
            }
            if (e.getShapeCount() > Manifest.Tensor.MAX_RANK || e.getGlobalShapeCount() > Manifest.Tensor.MAX_RANK
                    || e.getGlobalOffsetsCount() > Manifest.Tensor.MAX_RANK) {
                return "entries.shape: entry '" + e.getName() + "' has more than " + Manifest.Tensor.MAX_RANK + " dimensions";
            }
            try {
                Manifest.Tensor t = tensor(e);
                if (t != null && !e.getReplicated()) {
                    t.check(e.getLength());
                }
                // a replicated piece is checked with the other workers' pieces of its entry when the
                // manifest is built (ManifestCodec's validation, run before the commit)
            } catch (IllegalArgumentException ex) {
                return "entries.dtype/shape: entry '" + e.getName() + "': " + LogSafe.truncate(ex.getMessage());
            }
        }
        return null;
    }

    /**
     * The type an entry reports, or null for an untyped one (no dtype: {@code bytes} of its length).
     * A global shape without offsets (or the reverse) is kept as sent, for {@link Manifest.Tensor#check}.
     *
     * @throws IllegalArgumentException for an unknown dtype
     */
    static Manifest.Tensor tensor(EntryInfo e) {
        if (e.getDtype().isEmpty()) {
            if (e.getShapeCount() > 0 || e.getGlobalShapeCount() > 0 || e.getGlobalOffsetsCount() > 0) {
                throw new IllegalArgumentException("shape without a dtype");
            }
            return null;
        }
        return new Manifest.Tensor(DType.fromNumpyName(e.getDtype()), e.getShapeList(),
                e.getGlobalShapeCount() == 0 ? null : e.getGlobalShapeList(),
                e.getGlobalOffsetsCount() == 0 ? null : e.getGlobalOffsetsList());
    }
}
