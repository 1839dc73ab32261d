package dev.cairn.coordinator;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.Aborted;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.Committed;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.SaveTarget;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.Welcome;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import io.grpc.Status;
import io.grpc.StatusException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The save protocol's state machine: membership, the barrier, shard reports, commit and abort.
 * Not thread-safe: the coordinator calls it from one event-loop thread only. Time comes from the
 * injected clock and advances only through {@link #tick()}, so tests drive it by hand.
 *
 * <p>At most one save is in flight: BARRIER (collecting prepares) → UPLOADING (collecting shard
 * reports) → COMMITTING (manifest write in progress). Prepares for another step that arrive while
 * a save uploads or commits are held and replayed when it ends.
 */
final class SaveCoordinator {
    private static final Logger LOG = LoggerFactory.getLogger(SaveCoordinator.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int HISTORY = 200;
    private static final int RECENT_ABORTS = 64;

    enum Phase { BARRIER, UPLOADING, COMMITTING }

    /** Result of a shard report, as Flink's TaskAcknowledgeResult. */
    enum ReportResult { ACCEPTED, DUPLICATE, DISCARDED, UNKNOWN }

    private static final class Member {
        final Object session;
        /** {@link #abortSeq} when the session joined. */
        final long joinedAtAbortSeq;
        long lastSeenMillis;
        long step = -1;
        long prevStep = -1;
        long prevStepAtMillis;
        long stepAtMillis;
        long firstStep = -1;
        long firstStepAtMillis;

        Member(Object session, long now, long abortSeq) {
            this.session = session;
            this.joinedAtAbortSeq = abortSeq;
            this.lastSeenMillis = now;
            this.stepAtMillis = now;
        }
    }

    private static final class Save {
        final long step;
        final long startedAtMillis;
        Phase phase = Phase.BARRIER;
        String saveId = "";
        int replicatedWriter = -1;
        long deadlineMillis;
        final Set<Integer> prepared = new HashSet<>();
        final Map<Integer, ShardReport> reports = new TreeMap<>();
        /** The manifest being committed (COMMITTING), built once for the write and for retention. */
        Manifest manifest;

        Save(long step, long now, long deadline) {
            this.step = step;
            this.startedAtMillis = now;
            this.deadlineMillis = deadline;
        }
    }

    private final CoordinatorConfig config;
    private final Clock clock;
    private final Outbox outbox;
    private final Map<Integer, Member> members = new TreeMap<>();
    /** Prepares for later steps, per worker in arrival order, held while a save is in flight. */
    private final Map<Integer, Deque<Long>> heldPrepares = new TreeMap<>();
    private final long[] bytesWritten;
    private final Map<String, Long> recentAborts = new LinkedHashMap<>();
    /**
     * The abort of each recently aborted step and the abort's sequence number: repeated to a worker
     * that prepares that step late, if its session was already a member when the step aborted (a
     * worker that joined since, e.g. after a cluster restart, retries the step legitimately).
     */
    private final Map<Long, LateAbort> abortedSteps = new LinkedHashMap<>();
    private long abortSeq;

    private record LateAbort(long seq, CoordinatorMessage message) {}
    private final Deque<SaveRecord> history = new ArrayDeque<>();
    private Save inFlight;
    private CheckpointRef latest;
    private long target = -1;
    private String targetReason = "";
    private long lastSaveEndedMillis;
    private boolean shuttingDown;

    SaveCoordinator(CoordinatorConfig config, Clock clock, Outbox outbox, Optional<CheckpointRef> latest) {
        this.config = config;
        this.clock = clock;
        this.outbox = outbox;
        this.latest = latest.orElse(null);
        this.bytesWritten = new long[config.worldSize()];
        this.lastSaveEndedMillis = clock.millis();
    }

    // ------------------------------------------------------------------ membership

    /**
     * Admits a worker. Returns the welcome to send, or throws a status naming what was wrong:
     * INVALID_ARGUMENT (index, world size), FAILED_PRECONDITION (run id), ALREADY_EXISTS (index
     * taken by a live session), PERMISSION_DENIED (token).
     */
    Welcome join(Object session, Join join) throws StatusException {
        int index = join.getWorkerIndex();
        if (shuttingDown) {
            throw Status.UNAVAILABLE.withDescription("coordinator of run " + config.runId() + " is shutting down").asException();
        }
        if (!config.token().isEmpty() && !config.token().equals(join.getToken())) {
            throw Status.PERMISSION_DENIED.withDescription("worker " + index + ": wrong or missing token for run " + config.runId()).asException();
        }
        if (!join.getRunId().equals(config.runId())) {
            throw Status.FAILED_PRECONDITION.withDescription("worker " + index + " belongs to run '" + join.getRunId()
                    + "' but this coordinator runs '" + config.runId() + "'").asException();
        }
        if (join.getWorldSize() != config.worldSize()) {
            throw Status.INVALID_ARGUMENT.withDescription("worker " + index + " expects world size " + join.getWorldSize()
                    + " but the coordinator's world size is " + config.worldSize()).asException();
        }
        if (index < 0 || index >= config.worldSize()) {
            throw Status.INVALID_ARGUMENT.withDescription("worker index " + index + " is outside the world size "
                    + config.worldSize() + " (valid: 0.." + (config.worldSize() - 1) + ")").asException();
        }
        if (members.containsKey(index)) {
            throw Status.ALREADY_EXISTS.withDescription("worker index " + index + " is already joined by another live session").asException();
        }
        members.put(index, new Member(session, clock.millis(), abortSeq));
        LOG.info("worker {} joined run {} ({}/{} connected)", index, config.runId(), members.size(), config.worldSize());
        Welcome.Builder welcome = Welcome.newBuilder()
                .setRunId(config.runId())
                .setWorldSize(config.worldSize())
                .setStorageUri(config.storage().toUriString())
                .setSaveEverySteps(config.saveEverySteps())
                .setHeartbeatIntervalMillis(config.heartbeatInterval().toMillis());
        if (latest != null) {
            welcome.setLatest(latest);
        }
        if (target >= 0) {
            // a pending target reaches late joiners too
            outbox.send(index, message(SaveTarget.newBuilder().setStep(target).setReason(targetReason).build()));
        }
        return welcome.build();
    }

    /** The worker's stream ended. Stale sessions (replaced already) are ignored. */
    void sessionLost(int worker, Object session, String cause) {
        Member m = members.get(worker);
        if (m == null || m.session != session) {
            return;
        }
        members.remove(worker);
        heldPrepares.remove(worker);
        LOG.warn("worker {} of run {} lost: {}", worker, config.runId(), cause);
        if (inFlight != null && inFlight.phase != Phase.COMMITTING) {
            abort(AbortReason.WORKER_LOST, "worker " + worker + " lost: " + cause);
        }
    }

    void heartbeat(int worker, Object session, long step) {
        Member m = member(worker, session);
        if (m == null) {
            return;
        }
        long now = clock.millis();
        m.lastSeenMillis = now;
        if (m.firstStep < 0 && step >= 0) {
            m.firstStep = step;
            m.firstStepAtMillis = now;
        }
        if (step != m.step) {
            m.prevStep = m.step;
            m.prevStepAtMillis = m.stepAtMillis;
            m.step = step;
            m.stepAtMillis = now;
        }
        if (target >= 0 && step > target && (inFlight == null || inFlight.step != target || !inFlight.prepared.contains(worker))) {
            long missed = target;
            target = -1;
            if (inFlight != null && inFlight.step == missed && inFlight.phase == Phase.BARRIER) {
                abort(AbortReason.TARGET_MISSED, "worker " + worker + " passed target step " + missed + " (now at " + step + ") without preparing it");
            }
            LOG.info("target step {} of run {} was missed by worker {}; picking a new one", missed, config.runId(), worker);
            pushTarget(targetReason.isEmpty() ? "retarget" : targetReason, 2);
        }
    }

    private Member member(int worker, Object session) {
        Member m = members.get(worker);
        return m != null && m.session == session ? m : null;
    }

    // ------------------------------------------------------------------ barrier

    void prepare(int worker, Object session, long step) {
        Member m = member(worker, session);
        if (m == null) {
            return;
        }
        m.lastSeenMillis = clock.millis();
        if (latest != null && step <= latest.getStep()) {
            outbox.send(worker, aborted(step, "", AbortReason.STEP_ALREADY_COMMITTED,
                    "step " + step + " is not after the latest checkpoint (step " + latest.getStep() + ")"));
            return;
        }
        LateAbort late = abortedSteps.get(step);
        if (late != null && m.joinedAtAbortSeq < late.seq() && (inFlight == null || inFlight.step != step)) {
            // this step's save was aborted before this worker reached it (e.g. a peer died at the
            // barrier): tell it at once instead of opening a barrier that can never complete
            outbox.send(worker, late.message());
            return;
        }
        if (inFlight == null) {
            startBarrier(step);
        } else if (inFlight.step == step && inFlight.prepared.contains(worker)) {
            return; // duplicate
        } else if (inFlight.phase != Phase.BARRIER || inFlight.prepared.contains(worker)) {
            // this worker is already in the save in flight: its next save waits for that one to end
            heldPrepares.computeIfAbsent(worker, w -> new ArrayDeque<>()).addLast(step);
            return;
        } else if (step < inFlight.step) {
            // this worker is behind the open barrier (it skipped nothing yet): refuse only its prepare;
            // it joins the open barrier when it reaches that step
            outbox.send(worker, aborted(step, "", AbortReason.STEP_MISMATCH, "worker " + worker + " prepared step " + step
                    + " while workers " + inFlight.prepared + " prepared step " + inFlight.step));
            return;
        } else if (inFlight.step != step) {
            // this worker skipped the open barrier's step (e.g. its save failed while it was reconnecting):
            // that save can never complete, so end it and let this prepare open the next barrier. Dropping
            // the prepare instead would leave the workers one save apart forever.
            abort(AbortReason.STEP_MISMATCH, "worker " + worker + " prepared step " + step + " while workers "
                    + inFlight.prepared + " prepared step " + inFlight.step);
            prepare(worker, session, step);
            return;
        }
        inFlight.prepared.add(worker);
        if (inFlight.prepared.size() == config.worldSize()) {
            release();
        }
    }

    private void startBarrier(long step) {
        long now = clock.millis();
        inFlight = new Save(step, now, now + config.barrierTimeout().toMillis());
        config.hooks().onPhase(CoordinatorHooks.Phase.BARRIER_STARTED, step, "");
    }

    private void release() {
        Save s = inFlight;
        s.phase = Phase.UPLOADING;
        s.saveId = Layout.newSaveId(s.step);
        s.deadlineMillis = clock.millis() + config.uploadTimeout().toMillis();
        s.replicatedWriter = leastLoadedWorker();
        if (target == s.step) {
            target = -1;
        }
        LOG.info("save {} (step {}) of run {} released; worker {} writes replicated entries", s.saveId, s.step, config.runId(), s.replicatedWriter);
        Release release = Release.newBuilder().setStep(s.step).setSaveId(s.saveId).setReplicatedWriter(s.replicatedWriter).build();
        CoordinatorMessage msg = CoordinatorMessage.newBuilder().setRelease(release).build();
        for (int w : members.keySet()) {
            outbox.send(w, msg);
        }
    }

    private int leastLoadedWorker() {
        int best = 0;
        for (int w = 1; w < bytesWritten.length; w++) {
            if (bytesWritten[w] < bytesWritten[best]) {
                best = w;
            }
        }
        return best;
    }

    // ------------------------------------------------------------------ reports and commit

    ReportResult shardReport(int worker, Object session, ShardReport report) {
        Member m = member(worker, session);
        if (m != null) {
            m.lastSeenMillis = clock.millis();
        }
        if (inFlight == null || !inFlight.saveId.equals(report.getSaveId())) {
            if (recentAborts.containsKey(report.getSaveId())) {
                LOG.debug("ignoring late report of worker {} for aborted save {}", worker, report.getSaveId());
                return ReportResult.DISCARDED;
            }
            LOG.warn("ignoring report of worker {} for unknown save '{}'", worker, report.getSaveId());
            return ReportResult.UNKNOWN;
        }
        if (inFlight.phase != Phase.UPLOADING || inFlight.reports.containsKey(worker)) {
            return ReportResult.DUPLICATE;
        }
        String problem = checkReport(worker, report);
        if (problem != null) {
            abort(AbortReason.INVALID_SHARD, "worker " + worker + " reported an invalid shard for save " + inFlight.saveId + ": " + problem);
            return ReportResult.DISCARDED;
        }
        inFlight.reports.put(worker, report);
        if (config.hooks().commitBeforeAllDurable() && config.worldSize() > 1 && inFlight.reports.size() == config.worldSize() - 1) {
            guessMissingShard(inFlight); // deliberately broken: see CoordinatorHooks#commitBeforeAllDurable
        }
        if (inFlight.reports.size() == config.worldSize()) {
            config.hooks().onPhase(CoordinatorHooks.Phase.ALL_REPORTED, inFlight.step, inFlight.saveId);
            inFlight.phase = Phase.COMMITTING;
            inFlight.manifest = buildManifest(inFlight);
            outbox.commit(inFlight.manifest);
        }
        return ReportResult.ACCEPTED;
    }

    /** The broken commit path of the checker self-test: invents the one missing report from another worker's. */
    private void guessMissingShard(Save s) {
        int missing = 0;
        while (s.reports.containsKey(missing)) {
            missing++;
        }
        ShardReport donor = s.reports.values().iterator().next();
        ShardReport.Builder guess = donor.toBuilder().clearEntries()
                .setObjectKey(donor.getLength() > 0 ? Layout.shardKey(s.saveId, missing) : "");
        for (EntryInfo e : donor.getEntriesList()) {
            if (!e.getReplicated()) {
                guess.addEntries(e);
            }
        }
        LOG.error("save {}: committing before worker {} reported its shard (deliberately broken commit path)", s.saveId, missing);
        s.reports.put(missing, guess.build());
    }

    private String checkReport(int worker, ShardReport r) {
        String expectedKey = Layout.shardKey(inFlight.saveId, worker);
        if (r.getLength() > 0 && !r.getObjectKey().equals(expectedKey)) {
            return "object key '" + r.getObjectKey() + "' is not " + expectedKey;
        }
        if (r.getLength() == 0 && !r.getObjectKey().isEmpty()) {
            return "an empty shard names an object";
        }
        if (!r.getMetadataJson().isEmpty()) {
            try {
                JSON.readValue(r.getMetadataJson(), new TypeReference<Map<String, Object>>() {});
            } catch (Exception e) {
                return "metadata is not a JSON object";
            }
        }
        long end = 0;
        Set<String> names = new HashSet<>();
        for (EntryInfo e : r.getEntriesList()) {
            try {
                EntryNames.check(e.getName());
            } catch (IllegalArgumentException ex) {
                return ex.getMessage();
            }
            if (!names.add(e.getName())) {
                return "entry '" + e.getName() + "' appears twice";
            }
            if (e.getReplicated() && worker != inFlight.replicatedWriter) {
                return "replicated entry '" + e.getName() + "' from worker " + worker + ", but worker " + inFlight.replicatedWriter + " writes them";
            }
            if (e.getOffset() < 0 || e.getLength() < 0 || e.getOffset() + e.getLength() > r.getLength()) {
                return "entry '" + e.getName() + "' lies outside the shard";
            }
            end = Math.max(end, e.getOffset() + e.getLength());
        }
        return null;
    }

    private Manifest buildManifest(Save s) {
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        Map<String, Object> metadata = new LinkedHashMap<>();
        // lowest worker index wins on conflicting metadata keys: iterate from the highest
        List<Integer> workers = new ArrayList<>(s.reports.keySet());
        workers.sort(Comparator.reverseOrder());
        for (int w : workers) {
            ShardReport r = s.reports.get(w);
            if (!r.getMetadataJson().isEmpty()) {
                try {
                    metadata.putAll(JSON.readValue(r.getMetadataJson(), new TypeReference<Map<String, Object>>() {}));
                } catch (Exception e) {
                    throw new IllegalStateException("metadata checked before", e);
                }
            }
        }
        for (Map.Entry<Integer, ShardReport> e : s.reports.entrySet()) {
            int w = e.getKey();
            ShardReport r = e.getValue();
            shards.add(new Manifest.ShardRef(w, r.getLength() == 0 ? null : r.getObjectKey(), r.getLength(), r.getCrc32C()));
            for (EntryInfo info : r.getEntriesList()) {
                entries.add(new Manifest.EntryRef(info.getName(), w, info.getOffset(), info.getLength(), info.getCrc32C(), info.getReplicated()));
            }
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, config.runId(), s.step, s.saveId, Instant.ofEpochMilli(clock.millis()),
                config.worldSize(), shards, entries, metadata);
    }

    /** Outcome of the manifest write started by {@link Outbox#commit}. */
    enum CommitResult { COMMITTED, ALREADY_EXISTS, FAILED, UNKNOWN }

    void onCommitResult(String saveId, CommitResult result, String message) {
        if (inFlight == null || !inFlight.saveId.equals(saveId) || inFlight.phase != Phase.COMMITTING) {
            LOG.warn("commit result {} for save {} that is no longer in flight", result, saveId);
            return;
        }
        Save s = inFlight;
        switch (result) {
            case COMMITTED -> {
                latest = CheckpointRef.newBuilder().setStep(s.step).setSaveId(s.saveId).setManifestKey(Layout.manifestKey(s.step)).build();
                long bytes = 0;
                long stall = 0;
                long upload = 0;
                for (Map.Entry<Integer, ShardReport> e : s.reports.entrySet()) {
                    bytesWritten[e.getKey()] += e.getValue().getLength();
                    bytes += e.getValue().getLength();
                    stall = Math.max(stall, e.getValue().getStallMicros());
                    upload = Math.max(upload, e.getValue().getUploadMicros());
                }
                LOG.info("committed step {} of run {} as save {} ({} bytes)", s.step, config.runId(), s.saveId, bytes);
                CoordinatorMessage msg = CoordinatorMessage.newBuilder().setCommitted(Committed.newBuilder().setCheckpoint(latest)).build();
                for (int w : members.keySet()) {
                    outbox.send(w, msg);
                }
                inFlight = null;
                lastSaveEndedMillis = clock.millis();
                record(new SaveRecord(s.step, s.saveId, "COMMITTED", "", bytes, stall, upload));
                outbox.committed(s.manifest);
                replayHeldPrepares();
            }
            case ALREADY_EXISTS -> abort(AbortReason.STEP_ALREADY_COMMITTED,
                    "a manifest for step " + s.step + " already exists (another coordinator committed it); save " + saveId + " discarded");
            case FAILED -> abort(AbortReason.COMMIT_FAILED, "manifest write of save " + saveId + " failed: " + message);
            case UNKNOWN -> {
                // the manifest may exist: keep the shards (never delete what a manifest may reference)
                abortWithoutDelete(AbortReason.COMMIT_FAILED, "manifest write of save " + saveId + " has an unknown outcome: " + message);
            }
        }
    }

    /** An agent could not write its shard. */
    void uploadFailed(int worker, Object session, String saveId, long step, String message) {
        if (member(worker, session) == null || inFlight == null) {
            return;
        }
        boolean sameSave = saveId.isEmpty() ? inFlight.step == step : inFlight.saveId.equals(saveId);
        if (sameSave && inFlight.phase != Phase.COMMITTING) {
            abort(AbortReason.UPLOAD_FAILED, "worker " + worker + " failed to write its shard: " + message);
        }
    }

    // ------------------------------------------------------------------ triggers

    /** Asks every worker to save at a step just ahead of the fastest one. Returns that step. */
    long trigger(String reason) {
        if (target >= 0) {
            return target;
        }
        if (inFlight != null) {
            return inFlight.step;
        }
        return pushTarget(reason, 1);
    }

    private long pushTarget(String reason, int leadFactor) {
        long max = -1;
        double rate = 0;
        for (Member m : members.values()) {
            max = Math.max(max, m.step);
            // steps per second: the last interval, or the whole session when that is all there is
            if (m.prevStep >= 0 && m.stepAtMillis > m.prevStepAtMillis) {
                rate = Math.max(rate, (m.step - m.prevStep) * 1000.0 / (m.stepAtMillis - m.prevStepAtMillis));
            }
            if (m.firstStep >= 0 && m.stepAtMillis > m.firstStepAtMillis) {
                rate = Math.max(rate, (m.step - m.firstStep) * 1000.0 / (m.stepAtMillis - m.firstStepAtMillis));
            }
        }
        long floor = latest == null ? 0 : latest.getStep();
        long lead = 1 + (long) Math.ceil(rate * 2.0 * config.heartbeatInterval().toMillis() / 1000.0) * leadFactor;
        target = Math.max(max, floor) + lead;
        targetReason = reason;
        LOG.info("asking the workers of run {} to save at step {} ({})", config.runId(), target, reason);
        CoordinatorMessage msg = message(SaveTarget.newBuilder().setStep(target).setReason(reason).build());
        for (int w : members.keySet()) {
            outbox.send(w, msg);
        }
        return target;
    }

    // ------------------------------------------------------------------ time

    /** Checks heartbeats, deadlines and the time policy against the clock. */
    void tick() {
        long now = clock.millis();
        for (Map.Entry<Integer, Member> e : List.copyOf(members.entrySet())) {
            long silent = now - e.getValue().lastSeenMillis;
            if (silent > config.heartbeatTimeout().toMillis()) {
                int w = e.getKey();
                String cause = "no heartbeat for " + silent + " ms";
                outbox.closeSession(w, Status.UNAVAILABLE.withDescription("worker " + w + ": " + cause));
                sessionLost(w, e.getValue().session, cause);
            }
        }
        if (inFlight != null && now > inFlight.deadlineMillis && inFlight.phase != Phase.COMMITTING) {
            if (inFlight.phase == Phase.BARRIER) {
                Set<Integer> missing = new HashSet<>();
                for (int w = 0; w < config.worldSize(); w++) {
                    if (!inFlight.prepared.contains(w)) {
                        missing.add(w);
                    }
                }
                abort(AbortReason.BARRIER_TIMEOUT, "barrier of step " + inFlight.step + " timed out after "
                        + config.barrierTimeout().toMillis() + " ms; workers " + missing + " did not prepare");
            } else {
                Set<Integer> missing = new HashSet<>();
                for (int w = 0; w < config.worldSize(); w++) {
                    if (!inFlight.reports.containsKey(w)) {
                        missing.add(w);
                    }
                }
                abort(AbortReason.UPLOAD_TIMEOUT, "save " + inFlight.saveId + " timed out after "
                        + config.uploadTimeout().toMillis() + " ms; workers " + missing + " did not report a durable shard");
            }
        }
        if (!config.saveEvery().isZero() && inFlight == null && target < 0 && members.size() == config.worldSize()
                && now - lastSaveEndedMillis >= config.saveEvery().toMillis()) {
            pushTarget("every " + config.saveEvery().toSeconds() + " s", 1);
        }
    }

    // ------------------------------------------------------------------ abort

    /** Aborts the save in flight, if any, because the coordinator stops. */
    void shutdown() {
        shuttingDown = true;
        if (inFlight != null && inFlight.phase != Phase.COMMITTING) {
            abort(AbortReason.COORDINATOR_SHUTDOWN, "coordinator of run " + config.runId() + " is shutting down");
        }
    }

    private void abort(AbortReason reason, String message) {
        String saveId = inFlight.saveId;
        endAborted(reason, message);
        if (!saveId.isEmpty()) {
            outbox.deleteAttempt(saveId);
        }
    }

    private void abortWithoutDelete(AbortReason reason, String message) {
        endAborted(reason, message);
    }

    private void endAborted(AbortReason reason, String message) {
        Save s = inFlight;
        inFlight = null;
        lastSaveEndedMillis = clock.millis();
        if (target == s.step) {
            target = -1;
        }
        LOG.warn("save {} (step {}) of run {} aborted: {}: {}", s.saveId.isEmpty() ? "-" : s.saveId, s.step, config.runId(), reason, message);
        if (!s.saveId.isEmpty()) {
            recentAborts.put(s.saveId, s.step);
            if (recentAborts.size() > RECENT_ABORTS) {
                recentAborts.remove(recentAborts.keySet().iterator().next());
            }
        }
        CoordinatorMessage msg = aborted(s.step, s.saveId, reason, message);
        abortedSteps.put(s.step, new LateAbort(++abortSeq, msg));
        if (abortedSteps.size() > RECENT_ABORTS) {
            abortedSteps.remove(abortedSteps.keySet().iterator().next());
        }
        for (int w : members.keySet()) {
            outbox.send(w, msg);
        }
        long bytes = s.reports.values().stream().mapToLong(ShardReport::getLength).sum();
        record(new SaveRecord(s.step, s.saveId, reason.name(), message, bytes, 0, 0));
        replayHeldPrepares();
    }

    private void replayHeldPrepares() {
        if (heldPrepares.isEmpty()) {
            return;
        }
        // each worker's oldest held prepare enters the next barrier; later ones stay held
        for (int w : List.copyOf(heldPrepares.keySet())) {
            Deque<Long> queue = heldPrepares.get(w);
            if (queue == null || queue.isEmpty()) {
                heldPrepares.remove(w);
                continue;
            }
            long step = queue.pollFirst();
            if (queue.isEmpty()) {
                heldPrepares.remove(w);
            }
            Member m = members.get(w);
            if (m != null) {
                prepare(w, m.session, step);
            }
        }
    }

    private void record(SaveRecord r) {
        history.addLast(r);
        if (history.size() > HISTORY) {
            history.removeFirst();
        }
        outbox.saveEnded(r);
    }

    private static CoordinatorMessage aborted(long step, String saveId, AbortReason reason, String message) {
        return CoordinatorMessage.newBuilder()
                .setAborted(Aborted.newBuilder().setStep(step).setSaveId(saveId).setReason(reason).setMessage(message))
                .build();
    }

    private static CoordinatorMessage message(SaveTarget t) {
        return CoordinatorMessage.newBuilder().setSaveTarget(t).build();
    }

    // ------------------------------------------------------------------ views

    Optional<CheckpointRef> latest() {
        return Optional.ofNullable(latest);
    }

    Set<Integer> connected() {
        return Set.copyOf(members.keySet());
    }

    Optional<Phase> phase() {
        return inFlight == null ? Optional.empty() : Optional.of(inFlight.phase);
    }

    long inFlightStep() {
        return inFlight == null ? -1 : inFlight.step;
    }

    String inFlightSaveId() {
        return inFlight == null ? "" : inFlight.saveId;
    }

    Set<String> recentlyAborted() {
        return Set.copyOf(recentAborts.keySet());
    }

    List<SaveRecord> history() {
        return List.copyOf(history);
    }
}
