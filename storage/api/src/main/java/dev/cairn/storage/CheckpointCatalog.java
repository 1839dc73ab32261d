package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoints of one storage root: listing, reading, committing and deleting manifests, and
 * reading and verifying the entries they index. Every call goes to the store (the only state is
 * which LATEST-hint warning was logged last, so a bad hint is reported once, not on every call).
 */
public final class CheckpointCatalog {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointCatalog.class);

    /** A hint is a decimal step: anything longer is not read. */
    private static final int MAX_HINT_BYTES = 64;

    private final CheckpointStore store;
    private volatile String lastHintWarning;

    public CheckpointCatalog(CheckpointStore store) {
        this.store = store;
    }

    public CheckpointStore store() {
        return store;
    }

    /** Steps that have a manifest, ascending. Lists names only; reads no manifest. */
    public List<Long> steps() throws IOException {
        List<Long> steps = new ArrayList<>();
        for (ObjectInfo o : store.list(Layout.MANIFESTS)) {
            Layout.stepOfManifestKey(o.key()).ifPresent(steps::add);
        }
        return steps;
    }

    /**
     * Reads and validates the manifest of {@code step}.
     *
     * @throws NoSuchObjectException when the step has no manifest
     * @throws ManifestException when the manifest is corrupt or of an unknown version
     */
    public Manifest read(long step) throws IOException {
        String key = Layout.manifestKey(step);
        return ManifestCodec.decode(store.readAll(key), store.uri().resolve(key));
    }

    /**
     * The newest checkpoint whose manifest validates; each newer manifest that does not is logged
     * (WARN) and skipped. See {@link #latest(Consumer)}.
     */
    public Optional<Manifest> latest() throws IOException {
        return latest(e -> LOG.warn("skipping checkpoint whose manifest does not validate: {}", e.getMessage()));
    }

    /**
     * The newest checkpoint whose manifest validates (a checkpoint exists iff its manifest
     * validates). Uses the LATEST hint and lists only manifests after it, so the cost does not grow
     * with the number of checkpoints kept on stores that can list from a key; a bad hint never stops
     * this. Each newer manifest that does not validate is passed to {@code onSkipped} (naming the
     * manifest and why) and skipped.
     */
    public Optional<Manifest> latest(Consumer<ManifestException> onSkipped) throws IOException {
        Optional<Long> newest = latestStep();
        if (newest.isEmpty()) {
            return Optional.empty();
        }
        try {
            return Optional.of(read(newest.get()));
        } catch (ManifestException e) {
            onSkipped.accept(e);
        } catch (NoSuchObjectException e) {
            // deleted by retention between list and read
        }
        List<Long> steps = steps();
        for (int i = steps.size() - 1; i >= 0; i--) {
            if (steps.get(i) >= newest.get()) {
                continue;
            }
            try {
                return Optional.of(read(steps.get(i)));
            } catch (ManifestException e) {
                onSkipped.accept(e);
            } catch (NoSuchObjectException e) {
                // deleted by retention between list and read
            }
        }
        return Optional.empty();
    }

    /** The newest committed step by manifest name (no manifest is read). */
    public Optional<Long> latestStep() throws IOException {
        Optional<Long> hinted = readHint();
        if (hinted.isPresent() && store.stat(Layout.manifestKey(hinted.get())).isPresent()) {
            long newest = hinted.get();
            for (ObjectInfo o : store.listAfter(Layout.MANIFESTS, Layout.manifestKey(hinted.get()))) {
                newest = Math.max(newest, Layout.stepOfManifestKey(o.key()).orElse(newest));
            }
            return Optional.of(newest);
        }
        List<Long> steps = steps();
        return steps.isEmpty() ? Optional.empty() : Optional.of(steps.get(steps.size() - 1));
    }

    /**
     * The newest checkpoint whose manifest validates, found without the hint; each manifest that
     * does not is passed to {@code onCorrupt} (to be logged or shown) and skipped.
     */
    public Optional<Manifest> latestValid(Consumer<ManifestException> onCorrupt) throws IOException {
        List<Long> steps = steps();
        for (int i = steps.size() - 1; i >= 0; i--) {
            try {
                return Optional.of(read(steps.get(i)));
            } catch (ManifestException e) {
                onCorrupt.accept(e);
            } catch (NoSuchObjectException e) {
                // deleted by retention between list and read
            }
        }
        return Optional.empty();
    }

    /**
     * The step the LATEST hint names, or empty when there is none or it is unusable: any content
     * (garbage, a negative or oversized number, a directory, a huge object) or failure to read it is
     * ignored with one warning per distinct problem, never an exception.
     */
    private Optional<Long> readHint() {
        String problem;
        try {
            Optional<ObjectInfo> info = store.stat(Layout.LATEST);
            if (info.isEmpty()) {
                return Optional.empty(); // absent, or a directory: not an object
            }
            if (info.get().length() > MAX_HINT_BYTES) {
                problem = "it has " + info.get().length() + " bytes";
            } else {
                String text = new String(store.readAll(Layout.LATEST), StandardCharsets.UTF_8).trim();
                try {
                    long step = Long.parseLong(text);
                    if (step >= 0) {
                        return Optional.of(step);
                    }
                    problem = "negative step " + step;
                } catch (NumberFormatException e) {
                    problem = "not a step: '" + EntryNames.excerpt(text).replaceAll("\\p{Cntrl}", "?") + "'";
                }
            }
        } catch (IOException | RuntimeException e) {
            problem = e.toString();
        }
        String warning = "ignoring unusable LATEST hint in " + store.uri() + " (" + problem + "); listing manifests instead";
        if (!warning.equals(lastHintWarning)) {
            lastHintWarning = warning;
            LOG.warn(warning);
        }
        return Optional.empty();
    }

    /** Outcome of a commit. */
    public enum CommitOutcome {
        /** This call created the manifest: the checkpoint exists. */
        COMMITTED,
        /** A manifest for the step already existed; this call changed nothing. */
        ALREADY_EXISTS
    }

    /**
     * Commits a checkpoint: one atomic create-if-absent of its manifest. Nothing after that can fail
     * the commit; the LATEST hint is updated best-effort.
     *
     * @throws CommitStateUnknownException when the store cannot tell whether the manifest was
     *     written; the caller must not delete the save's objects
     */
    public CommitOutcome commit(Manifest manifest) throws IOException {
        CommitOutcome outcome = commitManifest(manifest);
        if (outcome == CommitOutcome.COMMITTED) {
            updateHint(manifest.step());
        }
        return outcome;
    }

    /**
     * The commit point alone: the manifest's atomic create-if-absent, without the LATEST hint. A
     * caller that announces the commit before updating the hint (the coordinator, so the hint's two
     * fsyncs are not on the save's latency) calls {@link #updateHint} afterwards.
     *
     * @throws CommitStateUnknownException as {@link #commit}
     */
    public CommitOutcome commitManifest(Manifest manifest) throws IOException {
        return commitManifest(manifest, ManifestCodec.encode(manifest));
    }

    /**
     * {@link #commitManifest(Manifest)} writing exactly {@code encoded}, the bytes
     * {@link ManifestCodec#encodeForCommit} returned for {@code manifest} (so the bytes written are
     * the bytes validated).
     */
    public CommitOutcome commitManifest(Manifest manifest, byte[] encoded) throws IOException {
        String key = Layout.manifestKey(manifest.step());
        return store.createIfAbsent(key, encoded) ? CommitOutcome.COMMITTED : CommitOutcome.ALREADY_EXISTS;
    }

    /** Points the LATEST hint at {@code step} (best effort: failures are logged). */
    public void updateHint(long step) {
        try {
            store.write(Layout.LATEST, Long.toString(step).getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            LOG.warn("could not update LATEST hint of {} to step {}: {}", store.uri(), step, e.toString());
        }
    }

    /**
     * Deletes a checkpoint: the manifest first (from then on the checkpoint does not exist), then
     * the objects of its save attempt.
     */
    public void delete(Manifest manifest) throws IOException {
        store.delete(Layout.manifestKey(manifest.step()));
        deleteAttempt(manifest.saveId());
    }

    /**
     * Deletes every object of a save attempt, and what its writers killed mid-write left behind
     * (see {@link SupportsAbandonedWrites}); returns how many there were.
     */
    public int deleteAttempt(String saveId) throws IOException {
        List<String> keys = store.list(Layout.dataPrefix(saveId)).stream().map(ObjectInfo::key).toList();
        store.deleteAll(keys);
        int n = keys.size();
        for (ObjectInfo leftover : abandonedWrites(saveId)) {
            ((SupportsAbandonedWrites) store).deleteAbandonedWrite(leftover.key());
            n++;
        }
        return n;
    }

    /** Save ids that have objects, or leftovers of killed writers, under {@code data/}, ascending. */
    public Set<String> attemptIds() throws IOException {
        Set<String> ids = new TreeSet<>();
        for (ObjectInfo o : store.list(Layout.DATA)) {
            Layout.saveIdOfDataKey(o.key()).ifPresent(ids::add);
        }
        if (store instanceof SupportsAbandonedWrites a) {
            for (ObjectInfo o : a.listAbandonedWrites(Layout.DATA)) {
                Layout.saveIdOfDataKey(o.key()).ifPresent(ids::add);
            }
        }
        return ids;
    }

    /**
     * Deletes leftovers of killed writes outside {@code data/} — the temp files of a manifest or
     * LATEST hint write whose coordinator died mid-write — last written before {@code olderThan}.
     * Only a coordinator at start (or an operator's gc) calls this: a live committer's temp file
     * deleted here makes that commit fail, never succeed wrongly.
     *
     * @return how many were deleted
     */
    public int sweepAbandonedCommitWrites(java.time.Instant olderThan) throws IOException {
        if (!(store instanceof SupportsAbandonedWrites a)) {
            return 0;
        }
        int n = 0;
        for (ObjectInfo o : a.listAbandonedWrites("")) {
            if (!o.key().startsWith(Layout.DATA) && o.lastModified().isBefore(olderThan)) {
                a.deleteAbandonedWrite(o.key());
                n++;
            }
        }
        return n;
    }

    /** Leftovers of uncommitted writes of one save attempt (empty when the store has none to show). */
    public List<ObjectInfo> abandonedWrites(String saveId) throws IOException {
        return store instanceof SupportsAbandonedWrites a ? a.listAbandonedWrites(Layout.dataPrefix(saveId)) : List.of();
    }

    /** The objects of one save attempt. */
    public List<ObjectInfo> attemptObjects(String saveId) throws IOException {
        return store.list(Layout.dataPrefix(saveId));
    }

    /**
     * Opens one entry with a ranged read. The stream checks the entry's CRC32C when it reaches the
     * end and throws {@link CorruptObjectException} naming the object if it does not match.
     */
    public InputStream openEntry(Manifest manifest, Manifest.EntryRef entry) throws IOException {
        List<Manifest.EntryRef> pieces = manifest.pieces(entry);
        if (pieces.size() == 1) {
            return openPiece(manifest, pieces.get(0));
        }
        // a replicated entry split across workers: one ranged, CRC-checked read per piece, opened in turn
        return new PieceSequenceStream<>(pieces, piece -> openPiece(manifest, piece));
    }

    private InputStream openPiece(Manifest manifest, Manifest.EntryRef entry) throws IOException {
        Manifest.ShardRef shard = manifest.shard(entry.worker());
        if (entry.length() == 0) {
            return InputStream.nullInputStream();
        }
        String what = "entry '" + entry.name() + "' " + (entry.replicated() ? "(piece at " + entry.entryOffset() + ") " : "")
                + "of worker " + entry.worker() + " in " + store.uri().resolve(shard.objectKey());
        return new CheckedEntryStream(store.read(shard.objectKey(), entry.offset(), entry.length()), entry.crc32c(), entry.length(), what);
    }

    /**
     * The logical tensors of a checkpoint ({@link LogicalTensors#of}): the pieces of every sharded
     * tensor grouped by name, whatever world size wrote them.
     *
     * @throws ManifestException naming the entry when the pieces of a name disagree or overlap
     */
    public List<LogicalTensor> tensors(Manifest manifest) throws ManifestException {
        return LogicalTensors.of(manifest);
    }

    /**
     * {@link #readRegion(Manifest, LogicalTensor, DType, long[], long[], ByteBuffer)} of the tensor
     * {@code name} ({@link LogicalTensors#find} with no preferred worker), of any dtype.
     */
    public RegionRead readRegion(Manifest manifest, String name, long[] offsets, long[] shape, ByteBuffer dest) throws IOException {
        return readRegion(manifest, LogicalTensors.find(manifest, name, -1), null, offsets, shape, dest);
    }

    /** {@link #readRegion(Manifest, String, long[], long[], ByteBuffer)} that refuses a tensor not of {@code expected} dtype. */
    public RegionRead readRegion(Manifest manifest, String name, DType expected, long[] offsets, long[] shape, ByteBuffer dest)
            throws IOException {
        return readRegion(manifest, LogicalTensors.find(manifest, name, -1), expected, offsets, shape, dest);
    }

    /**
     * Fills {@code dest}, from its position, with the little-endian C-order elements of the region
     * {@code [offsets, offsets + shape)} of the global tensor {@code tensor}, and advances its
     * position past them. Only the bytes of the pieces that overlap the region are read, with
     * ranged reads: bytes read ≤ 1.05 × the region's bytes (neighbouring runs are merged into one
     * read while the gap bytes stay within 5% of what the piece contributes). A read that covers a
     * whole stored entry is CRC32C-checked; a partial one cannot be (the manifest has one CRC per
     * entry). A replicated or unsharded tensor is read the same way (its global shape is its shape).
     * Nothing is read before the request is checked; on a storage error {@code dest} may hold part
     * of the region.
     *
     * @param expected the dtype the caller expects, or null for any
     * @return bytes needed and read and the number of ranged reads
     * @throws IllegalArgumentException naming the entry: a rank mismatch, a region outside the
     *     global shape, {@code dest} too small, another dtype than {@code expected}, or elements of
     *     the region stored by no piece
     * @throws CorruptObjectException when a whole entry read fails its checksum or is truncated
     * @throws NoSuchObjectException when a shard object is missing
     */
    public RegionRead readRegion(Manifest manifest, LogicalTensor tensor, DType expected, long[] offsets, long[] shape, ByteBuffer dest)
            throws IOException {
        return new RegionReader(store).read(manifest, tensor, expected, offsets, shape, dest);
    }

    /** Reads one entry whole (checked; a replicated entry reassembled from its pieces). */
    public byte[] readEntry(Manifest manifest, Manifest.EntryRef entry) throws IOException {
        long length = manifest.logicalLength(entry);
        if (length > Integer.MAX_VALUE - 16) {
            throw new StorageException("entry '" + entry.name() + "' is too large for one array; use openEntry");
        }
        try (InputStream in = openEntry(manifest, entry)) {
            return in.readNBytes((int) length);
        }
    }

    /**
     * Reads every object of a checkpoint and checks its length, its CRC32C and every entry's CRC32C:
     * the same checks a restore makes (the manifest itself was validated when it was read, which
     * includes that every entry name can be written as a file).
     *
     * @return one line per problem, each naming the object; empty when everything matches
     */
    public List<String> verify(Manifest manifest) throws IOException {
        return verify(manifest, bytes -> { });
    }

    /** {@link #verify(Manifest)}, telling {@code bytesRead} every time more of the checkpoint was read (for progress). */
    public List<String> verify(Manifest manifest, java.util.function.LongConsumer bytesRead) throws IOException {
        return new CheckpointVerifier(store, bytesRead).verify(manifest);
    }
}
