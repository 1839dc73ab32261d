package dev.cairn.coordinator;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * One save attempt in flight, as Flink's {@code PendingCheckpoint}: the barrier's prepares, then
 * the shard reports of a released save, then the manifest being committed. It knows how to
 * acknowledge a report and how to discard itself; the state machine decides when.
 */
final class PendingSave {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where the attempt is: BARRIER (collecting prepares) → UPLOADING (collecting reports) → COMMITTING. */
    enum Phase { BARRIER, UPLOADING, COMMITTING }

    /** Result of acknowledging a shard report, as Flink's {@code TaskAcknowledgeResult}. */
    enum Ack {
        /** The report was recorded. */
        ACCEPTED,
        /** The worker already reported, or the save is past collecting reports. */
        DUPLICATE,
        /** The report names a save that is not (or no longer) in flight. */
        UNKNOWN,
        /** The save was discarded (aborted); the report is ignored. */
        DISCARDED
    }

    final long step;
    final long startedAtMillis;
    private Phase phase = Phase.BARRIER;
    private String saveId = "";
    private long deadlineMillis;
    private long releasedAtMillis = -1;
    private long commitStartedAtMillis = -1;
    private boolean discarded;
    private final Set<Integer> prepared = new TreeSet<>();
    private final Map<Integer, ShardReport> reports = new TreeMap<>();
    /** The manifest being committed (COMMITTING), built once for the write and for retention. */
    private Manifest manifest;

    PendingSave(long step, long now, long deadline) {
        this.step = step;
        this.startedAtMillis = now;
        this.deadlineMillis = deadline;
    }

    Phase phase() {
        return phase;
    }

    String saveId() {
        return saveId;
    }

    long deadlineMillis() {
        return deadlineMillis;
    }

    Manifest manifest() {
        return manifest;
    }

    Map<Integer, ShardReport> reports() {
        return reports;
    }

    boolean isPrepared(int worker) {
        return prepared.contains(worker);
    }

    Set<Integer> prepared() {
        return Set.copyOf(prepared);
    }

    /** Records a prepare; returns true when every worker of the world prepared. */
    boolean prepare(int worker, int worldSize) {
        prepared.add(worker);
        return prepared.size() == worldSize;
    }

    /** The barrier completed at {@code now}: the save gets its id and the upload deadline. */
    void release(String id, long now, long uploadDeadline) {
        phase = Phase.UPLOADING;
        releasedAtMillis = now;
        saveId = id;
        deadlineMillis = uploadDeadline;
    }

    /** Acknowledges a validated report of {@code worker}. */
    Ack acknowledge(int worker, ShardReport report) {
        if (discarded) {
            return Ack.DISCARDED;
        }
        if (!saveId.equals(report.getSaveId())) {
            return Ack.UNKNOWN;
        }
        if (phase != Phase.UPLOADING || reports.containsKey(worker)) {
            return Ack.DUPLICATE;
        }
        reports.put(worker, report);
        return Ack.ACCEPTED;
    }

    boolean isFullyAcknowledged(int worldSize) {
        return reports.size() == worldSize;
    }

    /** Workers of {@code 0..worldSize-1} that did not prepare (BARRIER) or report (UPLOADING). */
    Set<Integer> missing(int worldSize) {
        Set<Integer> missing = new TreeSet<>();
        for (int w = 0; w < worldSize; w++) {
            if (phase == Phase.BARRIER ? !prepared.contains(w) : !reports.containsKey(w)) {
                missing.add(w);
            }
        }
        return missing;
    }

    /** Every shard is reported: builds the manifest and enters COMMITTING. */
    Manifest startCommit(String runId, int worldSize, Instant now) {
        manifest = buildManifest(runId, worldSize, now);
        phase = Phase.COMMITTING;
        commitStartedAtMillis = now.toEpochMilli();
        return manifest;
    }

    /** When the barrier released the save, or -1. */
    long releasedAtMillis() {
        return releasedAtMillis;
    }

    /** When the manifest write started, or -1. */
    long commitStartedAtMillis() {
        return commitStartedAtMillis;
    }

    long reportedBytes() {
        return reports.values().stream().mapToLong(ShardReport::getLength).sum();
    }

    /**
     * Discards the attempt: later reports get {@link Ack#DISCARDED}, and its objects are deleted
     * unless {@code keepObjects} (a manifest may reference them after an unknown commit outcome).
     */
    void discard(Outbox outbox, boolean keepObjects) {
        discarded = true;
        if (!keepObjects && !saveId.isEmpty()) {
            outbox.deleteAttempt(saveId);
        }
    }

    private Manifest buildManifest(String runId, int worldSize, Instant now) {
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        Map<String, Object> metadata = new LinkedHashMap<>();
        // lowest worker index wins on conflicting metadata keys: iterate from the highest
        List<Integer> workers = new ArrayList<>(reports.keySet());
        workers.sort(Comparator.reverseOrder());
        for (int w : workers) {
            metadata.putAll(parseMetadata(reports.get(w).getMetadataJson()));
        }
        for (Map.Entry<Integer, ShardReport> e : reports.entrySet()) {
            int w = e.getKey();
            ShardReport r = e.getValue();
            shards.add(new Manifest.ShardRef(w, r.getLength() == 0 ? null : r.getObjectKey(), r.getLength(), r.getCrc32C()));
            for (EntryInfo info : r.getEntriesList()) {
                entries.add(new Manifest.EntryRef(info.getName(), w, info.getOffset(), info.getLength(), info.getCrc32C(), info.getReplicated(),
                        ReportValidator.tensor(info), info.getEntryOffset()));
            }
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, runId, step, saveId, now, worldSize, shards, entries, metadata);
    }

    /** A report's metadata as a map; empty text is no metadata. Throws if it is not a JSON object. */
    static Map<String, Object> parseMetadata(String json) {
        if (json.isEmpty()) {
            return Map.of();
        }
        try {
            Map<String, Object> m = JSON.readValue(json, new TypeReference<Map<String, Object>>() {});
            if (m == null) {
                throw new IllegalArgumentException("metadata is not a JSON object");
            }
            return m;
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("metadata is not a JSON object", e);
        }
    }

    @Override
    public String toString() {
        return (saveId.isEmpty() ? "-" : saveId) + " (step " + step + ", " + phase + ")";
    }
}
