package dev.cairn.coordinator;

import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.Aborted;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.Committed;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.Welcome;
import dev.cairn.protocol.SaveOutcome;
import dev.cairn.storage.Layout;
import io.grpc.Status;
import io.grpc.StatusException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
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
 * <p>At most one save is in flight, a {@link PendingSave}: BARRIER (collecting prepares) →
 * UPLOADING (collecting shard reports) → COMMITTING (manifest write in progress). Prepares for
 * another step that arrive while a save uploads or commits are held and replayed when it ends.
 */
final class SaveCoordinator {
    private static final Logger LOG = LoggerFactory.getLogger(SaveCoordinator.class);

    /** Outcome of the manifest write started by {@link Outbox#commit}. */
    enum CommitResult {
        COMMITTED, ALREADY_EXISTS, FAILED, UNKNOWN,
        /** Nothing was written: the manifest or a shard object it names would not restore. */
        INVALID
    }

    private final CoordinatorConfig config;
    private final Clock clock;
    private final Outbox outbox;
    private final Members members = new Members();
    /** Prepares for later steps, per worker in arrival order, held while a save is in flight. */
    private final Map<Integer, Deque<Long>> heldPrepares = new TreeMap<>();
    private final SaveHistory history = new SaveHistory();
    private PendingSave inFlight;
    private CheckpointRef latest;
    private final SaveTargets target = new SaveTargets();
    private final CoordinatorMetrics metrics;
    private long lastSaveEndedMillis;
    private boolean shuttingDown;

    SaveCoordinator(CoordinatorConfig config, Clock clock, Outbox outbox, Optional<CheckpointRef> latest) {
        this.config = config;
        this.clock = clock;
        this.outbox = outbox;
        this.latest = latest.orElse(null);
        this.lastSaveEndedMillis = clock.millis();
        this.metrics = new CoordinatorMetrics(config, clock);
        latest.ifPresent(l -> metrics.recovered(l.getStep(), clock.millis()));
    }

    // ------------------------------------------------------------------ membership

    /**
     * Admits a worker. Returns the welcome to send, or throws a status naming what was wrong:
     * INVALID_ARGUMENT (index, world size), FAILED_PRECONDITION (run id), ALREADY_EXISTS (index
     * taken by a live session). The token was checked before, by the session service.
     */
    Welcome join(Object session, Join join) throws StatusException {
        int index = join.getWorkerIndex();
        if (shuttingDown) {
            throw Status.UNAVAILABLE.withDescription("coordinator of run " + config.runId() + " is shutting down").asException();
        }
        Admission.check(config, join);
        if (members.contains(index)) {
            throw Status.ALREADY_EXISTS.withDescription("worker index " + index + " is already joined by another live session").asException();
        }
        members.add(index, new Members.Member(session, clock.millis(), history.abortSeq()));
        metrics.connectedWorkers(members.size());
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
        if (target.pending()) {
            // a pending target reaches late joiners too
            outbox.send(index, target.message());
        }
        return welcome.build();
    }

    /** The worker's stream broke or went silent. Stale sessions (replaced already) are ignored. */
    void sessionLost(int worker, Object session, String cause) {
        sessionEnded(worker, session, "lost: " + cause, false);
    }

    /** The worker closed its session itself (its trainer finished or stopped): it left, it was not lost. */
    void sessionLeft(int worker, Object session) {
        sessionEnded(worker, session, "left (closed its session)", true);
    }

    private void sessionEnded(int worker, Object session, String what, boolean clean) {
        if (members.get(worker, session) == null) {
            return;
        }
        members.remove(worker);
        heldPrepares.remove(worker);
        metrics.connectedWorkers(members.size());
        if (clean) {
            LOG.info("worker {} of run {} {} ({}/{} connected)", worker, config.runId(), what, members.size(), config.worldSize());
        } else {
            LOG.warn("worker {} of run {} {} ({}/{} connected)", worker, config.runId(), what, members.size(), config.worldSize());
        }
        if (inFlight != null && inFlight.phase() != PendingSave.Phase.COMMITTING) {
            abort(SaveOutcome.WORKER_LOST, "worker " + worker + " " + what);
        }
        if (members.size() == 0 && target.pending()) {
            // the job is over: its target must not reach the workers of the next job
            expireTarget("every worker left before reaching it");
        }
    }

    void heartbeat(int worker, Object session, long step) {
        Members.Member m = members.get(worker, session);
        if (m == null) {
            return;
        }
        m.heartbeat(step, clock.millis());
        if (target.pending() && step > target.step() && (inFlight == null || inFlight.step != target.step() || !inFlight.isPrepared(worker))) {
            long missed = target.step();
            target.clear();
            if (inFlight != null && inFlight.step == missed && inFlight.phase() == PendingSave.Phase.BARRIER) {
                abort(SaveOutcome.TARGET_MISSED, "worker " + worker + " passed target step " + missed + " (now at " + step + ") without preparing it");
            }
            LOG.info("target step {} of run {} was missed by worker {}; picking a new one", missed, config.runId(), worker);
            pushTarget(target.reason().isEmpty() ? "retarget" : target.reason(), 2);
        }
    }

    // ------------------------------------------------------------------ barrier

    void prepare(int worker, Object session, long step) {
        Members.Member m = members.get(worker, session);
        if (m == null) {
            return;
        }
        m.lastSeenMillis = clock.millis();
        if (latest != null && step <= latest.getStep()) {
            outbox.send(worker, aborted(step, "", SaveOutcome.STEP_ALREADY_COMMITTED,
                    "step " + step + " is not after the latest checkpoint (step " + latest.getStep() + ")"));
            return;
        }
        CoordinatorMessage late = history.lateAbort(step, m.joinedAtAbortSeq);
        if (late != null && (inFlight == null || inFlight.step != step)) {
            // this step's save was aborted before this worker reached it (e.g. a peer died at the
            // barrier): tell it at once instead of opening a barrier that can never complete
            outbox.send(worker, late);
            return;
        }
        if (inFlight == null) {
            long now = clock.millis();
            inFlight = new PendingSave(step, now, now + config.barrierTimeout().toMillis());
            config.hooks().onPhase(CoordinatorHooks.Phase.BARRIER_STARTED, step, "");
        } else if (inFlight.step == step && inFlight.isPrepared(worker)) {
            return; // duplicate
        } else if (inFlight.phase() != PendingSave.Phase.BARRIER || inFlight.isPrepared(worker)) {
            // this worker is already in the save in flight: its next save waits for that one to end
            heldPrepares.computeIfAbsent(worker, w -> new ArrayDeque<>()).addLast(step);
            return;
        } else if (step < inFlight.step) {
            // this worker is behind the open barrier (it skipped nothing yet): refuse only its prepare;
            // it joins the open barrier when it reaches that step
            outbox.send(worker, aborted(step, "", SaveOutcome.STEP_MISMATCH, "worker " + worker + " prepared step " + step
                    + " while workers " + inFlight.prepared() + " prepared step " + inFlight.step));
            return;
        } else if (inFlight.step != step) {
            // this worker skipped the open barrier's step (e.g. its save failed while it was reconnecting):
            // that save can never complete, so end it and let this prepare open the next barrier. Dropping
            // the prepare instead would leave the workers one save apart forever.
            abort(SaveOutcome.STEP_MISMATCH, "worker " + worker + " prepared step " + step + " while workers "
                    + inFlight.prepared() + " prepared step " + inFlight.step);
            prepare(worker, session, step);
            return;
        }
        if (inFlight.prepare(worker, config.worldSize())) {
            release();
        }
    }

    private void release() {
        PendingSave s = inFlight;
        s.release(Layout.newSaveId(s.step), clock.millis(), clock.millis() + config.uploadTimeout().toMillis());
        target.clearIf(s.step);
        LOG.info("save {} (step {}) of run {} released", s.saveId(), s.step, config.runId());
        // replicated_writer is deprecated and left unset: every worker writes its own range of the
        // replicated entries (ShardWriter), and the manifest validator checks they tile each entry
        Release release = Release.newBuilder().setStep(s.step).setSaveId(s.saveId()).build();
        broadcast(CoordinatorMessage.newBuilder().setRelease(release).build());
    }

    // ------------------------------------------------------------------ reports and commit

    PendingSave.Ack shardReport(int worker, Object session, ShardReport report) {
        Members.Member m = members.get(worker, session);
        if (m != null) {
            m.lastSeenMillis = clock.millis();
        }
        if (inFlight == null || !inFlight.saveId().equals(report.getSaveId())) {
            if (history.wasAborted(report.getSaveId())) {
                LOG.debug("ignoring late report of worker {} for aborted save {}", worker, LogSafe.quote(report.getSaveId()));
                return PendingSave.Ack.DISCARDED;
            }
            LOG.warn("ignoring report of worker {} for unknown save {}", worker, LogSafe.quote(report.getSaveId()));
            return PendingSave.Ack.UNKNOWN;
        }
        if (inFlight.phase() != PendingSave.Phase.UPLOADING) {
            return PendingSave.Ack.DUPLICATE;
        }
        String problem = inFlight.reports().containsKey(worker) ? null : ReportValidator.problem(worker, report, inFlight);
        if (problem != null) {
            abort(SaveOutcome.INVALID_SHARD, "worker " + worker + " reported an invalid shard for save " + inFlight.saveId() + ": " + problem);
            return PendingSave.Ack.DISCARDED;
        }
        PendingSave.Ack ack = inFlight.acknowledge(worker, report);
        if (ack == PendingSave.Ack.ACCEPTED && inFlight.isFullyAcknowledged(config.worldSize())) {
            config.hooks().onPhase(CoordinatorHooks.Phase.ALL_REPORTED, inFlight.step, inFlight.saveId());
            outbox.commit(inFlight.startCommit(config.runId(), config.worldSize(), Instant.ofEpochMilli(clock.millis())));
        }
        return ack;
    }

    void onCommitResult(String saveId, CommitResult result, String message) {
        if (inFlight == null || !inFlight.saveId().equals(saveId) || inFlight.phase() != PendingSave.Phase.COMMITTING) {
            LOG.warn("commit result {} for save {} that is no longer in flight", result, saveId);
            return;
        }
        PendingSave s = inFlight;
        switch (result) {
            case COMMITTED -> committed(s);
            case ALREADY_EXISTS -> abort(SaveOutcome.STEP_ALREADY_COMMITTED,
                    "a manifest for step " + s.step + " already exists (another coordinator committed it); save " + saveId + " discarded");
            case INVALID -> abort(SaveOutcome.INVALID_SHARD, "save " + saveId + " not committed: " + message);
            case FAILED -> abort(SaveOutcome.COMMIT_FAILED, "manifest write of save " + saveId + " failed: " + message);
            // the manifest may exist: keep the shards (never delete what a manifest may reference)
            case UNKNOWN -> endAborted(SaveOutcome.COMMIT_FAILED, "manifest write of save " + saveId + " has an unknown outcome: " + message, true);
        }
    }

    private void committed(PendingSave s) {
        latest = CheckpointRef.newBuilder().setStep(s.step).setSaveId(s.saveId()).setManifestKey(Layout.manifestKey(s.step)).build();
        long stall = 0;
        long upload = 0;
        for (Map.Entry<Integer, ShardReport> e : s.reports().entrySet()) {
            stall = Math.max(stall, e.getValue().getStallMicros());
            upload = Math.max(upload, e.getValue().getUploadMicros());
        }
        long bytes = s.reportedBytes();
        LOG.info("committed step {} of run {} as save {} ({} bytes)", s.step, config.runId(), s.saveId(), bytes);
        broadcast(CoordinatorMessage.newBuilder().setCommitted(Committed.newBuilder().setCheckpoint(latest)).build());
        inFlight = null;
        lastSaveEndedMillis = clock.millis();
        metrics.committed(s, clock.millis(), bytes, stall);
        record(new SaveRecord(s.step, s.saveId(), SaveOutcome.COMMITTED, "", bytes, stall, upload));
        outbox.committed(s.manifest());
        replayHeldPrepares();
    }

    /** An agent could not write its shard. */
    void uploadFailed(int worker, Object session, String saveId, long step, String message) {
        if (members.get(worker, session) == null || inFlight == null) {
            return;
        }
        boolean sameSave = saveId.isEmpty() ? inFlight.step == step : inFlight.saveId().equals(saveId);
        if (sameSave && inFlight.phase() != PendingSave.Phase.COMMITTING) {
            abort(SaveOutcome.UPLOAD_FAILED, "worker " + worker + " failed to write its shard: " + LogSafe.truncate(message));
        }
    }

    // ------------------------------------------------------------------ triggers

    /**
     * Asks every worker to save at a step just ahead of the fastest one. Returns that step, or -1
     * when that step would be past the largest step of the protocol.
     */
    long trigger(String reason) {
        if (target.pending()) {
            return target.step();
        }
        if (inFlight != null) {
            return inFlight.step;
        }
        return pushTarget(reason, 1);
    }

    private long pushTarget(String reason, int leadFactor) {
        long next = target.pick(members, latest == null ? 0 : latest.getStep(), config.heartbeatInterval(), leadFactor, reason, clock.millis());
        if (next < 0) {
            LOG.warn("run {}: no save target for {}: steps end at 2^62", config.runId(), reason);
            return -1;
        }
        LOG.info("asking the workers of run {} to save at step {} ({})", config.runId(), next, reason);
        broadcast(target.message());
        return next;
    }

    // ------------------------------------------------------------------ time

    /** Checks heartbeats, deadlines and the time policy against the clock. */
    void tick() {
        long now = clock.millis();
        for (Map.Entry<Integer, Members.Member> e : members.snapshot().entrySet()) {
            long silent = now - e.getValue().lastSeenMillis;
            if (silent > config.heartbeatTimeout().toMillis()) {
                int w = e.getKey();
                String cause = "no heartbeat for " + silent + " ms";
                outbox.closeSession(w, Status.UNAVAILABLE.withDescription("worker " + w + ": " + cause));
                sessionLost(w, e.getValue().session, cause);
            }
        }
        if (inFlight != null && now > inFlight.deadlineMillis() && inFlight.phase() != PendingSave.Phase.COMMITTING) {
            Set<Integer> missing = inFlight.missing(config.worldSize());
            if (inFlight.phase() == PendingSave.Phase.BARRIER) {
                abort(SaveOutcome.BARRIER_TIMEOUT, "barrier of step " + inFlight.step + " timed out after "
                        + config.barrierTimeout().toMillis() + " ms; workers " + missing + " did not prepare");
            } else {
                abort(SaveOutcome.UPLOAD_TIMEOUT, "save " + inFlight.saveId() + " timed out after "
                        + config.uploadTimeout().toMillis() + " ms; workers " + missing + " did not report a durable shard");
            }
        }
        if (target.pending() && (inFlight == null || inFlight.step != target.step())
                && now - target.pickedAtMillis() > config.barrierTimeout().toMillis()) {
            expireTarget("no worker reached it within " + config.barrierTimeout().toMillis() + " ms");
        }
        if (!config.saveEvery().isZero() && inFlight == null && !target.pending() && members.size() == config.worldSize()
                && now - lastSaveEndedMillis >= config.saveEvery().toMillis()) {
            pushTarget("every " + config.saveEvery().toSeconds() + " s", 1);
        }
    }

    // ------------------------------------------------------------------ abort

    /** Aborts the save in flight, if any, because the coordinator stops. */
    void shutdown() {
        shuttingDown = true;
        if (inFlight != null && inFlight.phase() != PendingSave.Phase.COMMITTING) {
            abort(SaveOutcome.COORDINATOR_SHUTDOWN, "coordinator of run " + config.runId() + " is shutting down");
        }
    }

    private void abort(SaveOutcome reason, String message) {
        endAborted(reason, message, false);
    }

    private void endAborted(SaveOutcome reason, String message, boolean keepObjects) {
        PendingSave s = inFlight;
        inFlight = null;
        s.discard(outbox, keepObjects);
        lastSaveEndedMillis = clock.millis();
        target.clearIf(s.step);
        LOG.warn("save {} of run {} aborted: {}: {}", s, config.runId(), reason, message);
        CoordinatorMessage msg = aborted(s.step, s.saveId(), reason, message);
        history.aborted(s.step, s.saveId(), msg);
        broadcast(msg);
        record(new SaveRecord(s.step, s.saveId(), reason, message, s.reportedBytes(), 0, 0));
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
            Members.Member m = members.get(w);
            if (m != null) {
                prepare(w, m.session, step);
            }
        }
    }

    /**
     * Drops the pending target: no save was attempted, so listeners hear nothing; the record shows in
     * {@code cairn status}. A worker that still reaches the step later simply saves there.
     */
    private void expireTarget(String why) {
        long step = target.step();
        String message = "save target step " + step + " (" + target.reason() + ") expired: " + why;
        target.clear();
        lastSaveEndedMillis = clock.millis(); // the time policy waits a full interval before its next target
        LOG.warn("run {}: {}", config.runId(), message);
        history.record(new SaveRecord(step, "", SaveOutcome.TARGET_EXPIRED, message, 0, 0, 0));
        metrics.targetExpired();
    }

    private void record(SaveRecord r) {
        metrics.saveEnded(r.outcome());
        history.record(r);
        outbox.saveEnded(r);
    }

    private void broadcast(CoordinatorMessage msg) {
        for (int w : members.workers()) {
            outbox.send(w, msg);
        }
    }

    private static CoordinatorMessage aborted(long step, String saveId, SaveOutcome reason, String message) {
        AbortReason wire = reason.toAbortReason();
        return CoordinatorMessage.newBuilder()
                .setAborted(Aborted.newBuilder().setStep(step).setSaveId(saveId).setReason(wire).setMessage(message))
                .build();
    }

    // ------------------------------------------------------------------ views

    Optional<CheckpointRef> latest() {
        return Optional.ofNullable(latest);
    }

    Set<Integer> connected() {
        return members.workers();
    }

    Optional<PendingSave.Phase> phase() {
        return inFlight == null ? Optional.empty() : Optional.of(inFlight.phase());
    }

    long inFlightStep() {
        return inFlight == null ? -1 : inFlight.step;
    }

    CoordinatorMetrics metrics() {
        return metrics;
    }

    /** The pending save target, or -1. */
    long pendingTargetStep() {
        return target.step();
    }

    String pendingTargetReason() {
        return target.pending() ? target.reason() : "";
    }

    String inFlightSaveId() {
        return inFlight == null ? "" : inFlight.saveId();
    }

    Set<String> recentlyAborted() {
        return history.recentlyAborted();
    }

    List<SaveRecord> history() {
        return history.records();
    }
}
