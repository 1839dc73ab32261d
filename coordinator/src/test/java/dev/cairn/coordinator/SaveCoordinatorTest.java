package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.Aborted;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.SaveTarget;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import io.grpc.Status;
import io.grpc.StatusException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class SaveCoordinatorTest {
    private static final String RUN = "run-1";
    private static final int WORLD = 3;

    /** A clock that moves only when the test says so. */
    static final class ManualClock extends Clock {
        private long millis = Instant.parse("2024-01-01T00:00:00Z").toEpochMilli();

        void advance(Duration d) {
            millis += d.toMillis();
        }

        @Override
        public long millis() {
            return millis;
        }

        @Override
        public Instant instant() {
            return Instant.ofEpochMilli(millis);
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }
    }

    /** Records every side effect the state machine asks for. */
    static final class RecordingOutbox implements Outbox {
        record Sent(int worker, CoordinatorMessage message) {}

        final List<Sent> sent = new ArrayList<>();
        final List<Integer> closed = new ArrayList<>();
        final List<Status> closeStatuses = new ArrayList<>();
        final List<Manifest> commits = new ArrayList<>();
        final List<String> deleted = new ArrayList<>();
        final List<SaveRecord> ended = new ArrayList<>();
        final List<Manifest> committed = new ArrayList<>();

        @Override
        public void send(int worker, CoordinatorMessage message) {
            sent.add(new Sent(worker, message));
        }

        @Override
        public void closeSession(int worker, Status status) {
            closed.add(worker);
            closeStatuses.add(status);
        }

        @Override
        public void commit(Manifest manifest) {
            commits.add(manifest);
        }

        @Override
        public void deleteAttempt(String saveId) {
            deleted.add(saveId);
        }

        @Override
        public void saveEnded(SaveRecord record) {
            ended.add(record);
        }

        @Override
        public void committed(Manifest manifest) {
            committed.add(manifest);
        }

        List<CoordinatorMessage> to(int worker) {
            return sent.stream().filter(s -> s.worker() == worker).map(Sent::message).toList();
        }

        List<Release> releases(int worker) {
            return to(worker).stream().filter(CoordinatorMessage::hasRelease).map(CoordinatorMessage::getRelease).toList();
        }

        List<Aborted> aborts(int worker) {
            return to(worker).stream().filter(CoordinatorMessage::hasAborted).map(CoordinatorMessage::getAborted).toList();
        }

        List<SaveTarget> targets(int worker) {
            return to(worker).stream().filter(CoordinatorMessage::hasSaveTarget).map(CoordinatorMessage::getSaveTarget).toList();
        }

        List<CheckpointRef> commitsSeenBy(int worker) {
            return to(worker).stream().filter(CoordinatorMessage::hasCommitted).map(m -> m.getCommitted().getCheckpoint()).toList();
        }
    }

    private final ManualClock clock = new ManualClock();
    private final RecordingOutbox outbox = new RecordingOutbox();
    private final Object[] sessions = {new Object(), new Object(), new Object()};
    private SaveCoordinator machine;

    private static CoordinatorConfig config(UnaryOperator<CoordinatorConfig.Builder> tweak) {
        return tweak.apply(CoordinatorConfig.builder(RUN, WORLD, StorageUri.parse("file:///ckpt/run-1"))
                .heartbeatInterval(Duration.ofSeconds(1))
                .heartbeatTimeout(Duration.ofSeconds(6))
                .barrierTimeout(Duration.ofSeconds(4))
                .uploadTimeout(Duration.ofSeconds(5))
                .token("s3cret")).build();
    }

    private SaveCoordinator start(CoordinatorConfig config, Optional<CheckpointRef> latest) {
        machine = new SaveCoordinator(config, clock, outbox, latest);
        return machine;
    }

    private SaveCoordinator startAndJoinAll() throws StatusException {
        return startAndJoinAll(config(b -> b));
    }

    private SaveCoordinator startAndJoinAll(CoordinatorConfig config) throws StatusException {
        start(config, Optional.empty());
        for (int w = 0; w < WORLD; w++) {
            machine.join(sessions[w], join(w));
        }
        return machine;
    }

    private static Join join(int worker) {
        return Join.newBuilder().setRunId(RUN).setWorkerIndex(worker).setWorldSize(WORLD).setToken("s3cret").build();
    }

    private String prepareAll(long step) {
        for (int w = 0; w < WORLD; w++) {
            machine.prepare(w, sessions[w], step);
        }
        return machine.inFlightSaveId();
    }

    private static ShardReport report(String saveId, int worker, long step, long length, EntryInfo... entries) {
        return ShardReport.newBuilder().setSaveId(saveId).setStep(step)
                .setObjectKey(length == 0 ? "" : Layout.shardKey(saveId, worker)).setLength(length).setCrc32C(0x1000 + worker)
                .addAllEntries(List.of(entries)).build();
    }

    private static EntryInfo entry(String name, long offset, long length, boolean replicated) {
        return EntryInfo.newBuilder().setName(name).setOffset(offset).setLength(length).setCrc32C(name.hashCode()).setReplicated(replicated).build();
    }

    /** A piece of replicated uint8[10] entry {@code name}: bytes [entryOffset, +length) at object offset {@code offset}. */
    private static EntryInfo piece(String name, long offset, long length, long entryOffset) {
        return entry(name, offset, length, true).toBuilder().setEntryOffset(entryOffset).setDtype("uint8").addShape(10).build();
    }

    private PendingSave.Ack reportDefault(String saveId, int worker, long step) {
        return machine.shardReport(worker, sessions[worker], report(saveId, worker, step, 100, entry("w", 0, 100, false)));
    }

    private void saveAndCommit(long step, long... lengths) {
        String saveId = prepareAll(step);
        for (int w = 0; w < WORLD; w++) {
            assertThat(machine.shardReport(w, sessions[w], report(saveId, w, step, lengths[w], entry("w", 0, lengths[w], false))))
                    .isEqualTo(PendingSave.Ack.ACCEPTED);
        }
        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.COMMITTED, "");
    }

    // ------------------------------------------------------------------ happy path

    @Test
    void happyPathReleasesOneSaveIdCommitsEveryShardAndBroadcastsTheCommit() throws Exception {
        startAndJoinAll();

        machine.prepare(0, sessions[0], 100);
        machine.prepare(1, sessions[1], 100);
        assertThat(outbox.releases(0)).as("no release before the last prepare").isEmpty();
        assertThat(machine.phase()).contains(PendingSave.Phase.BARRIER);
        machine.prepare(2, sessions[2], 100);

        assertThat(machine.phase()).contains(PendingSave.Phase.UPLOADING);
        String saveId = outbox.releases(0).get(0).getSaveId();
        assertThat(Layout.stepOfSaveId(saveId)).isEqualTo(100);
        for (int w = 0; w < WORLD; w++) {
            assertThat(outbox.releases(w)).singleElement().satisfies(r -> {
                assertThat(r.getSaveId()).isEqualTo(saveId);
                assertThat(r.getStep()).isEqualTo(100);
                assertThat(r.getReplicatedWriter()).as("deprecated, unset: every worker writes its own range").isZero();
            });
        }

        machine.shardReport(0, sessions[0], report(saveId, 0, 100, 30, entry("model/w", 0, 10, false), entry("opt/step", 10, 20, true))
                .toBuilder().setMetadataJson("{\"loss\":0.25,\"epoch\":3}").build());
        machine.shardReport(1, sessions[1], report(saveId, 1, 100, 10, entry("model/w", 0, 10, false)));
        assertThat(outbox.commits).as("no commit before the last report").isEmpty();
        machine.shardReport(2, sessions[2], report(saveId, 2, 100, 0));

        assertThat(machine.phase()).contains(PendingSave.Phase.COMMITTING);
        assertThat(outbox.commits).singleElement().satisfies(m -> {
            assertThat(m.runId()).isEqualTo(RUN);
            assertThat(m.step()).isEqualTo(100);
            assertThat(m.saveId()).isEqualTo(saveId);
            assertThat(m.worldSize()).isEqualTo(WORLD);
            assertThat(m.shards()).containsExactly(
                    new Manifest.ShardRef(0, Layout.shardKey(saveId, 0), 30, 0x1000),
                    new Manifest.ShardRef(1, Layout.shardKey(saveId, 1), 10, 0x1001),
                    new Manifest.ShardRef(2, null, 0, 0x1002));
            assertThat(m.entries()).containsExactly(
                    new Manifest.EntryRef("model/w", 0, 0, 10, "model/w".hashCode(), false),
                    new Manifest.EntryRef("opt/step", 0, 10, 20, "opt/step".hashCode(), true),
                    new Manifest.EntryRef("model/w", 1, 0, 10, "model/w".hashCode(), false));
            assertThat(m.metadata()).containsEntry("loss", 0.25).containsEntry("epoch", 3);
            assertThat(m.createdAt()).isEqualTo(clock.instant());
        });

        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.COMMITTED, "");

        for (int w = 0; w < WORLD; w++) {
            assertThat(outbox.commitsSeenBy(w)).singleElement().satisfies(ref -> {
                assertThat(ref.getStep()).isEqualTo(100);
                assertThat(ref.getSaveId()).isEqualTo(saveId);
                assertThat(ref.getManifestKey()).isEqualTo(Layout.manifestKey(100));
            });
        }
        assertThat(machine.phase()).isEmpty();
        assertThat(machine.latest()).map(CheckpointRef::getStep).contains(100L);
        assertThat(outbox.committed).singleElement().extracting(Manifest::saveId).isEqualTo(saveId);
        assertThat(outbox.ended).singleElement().satisfies(r -> {
            assertThat(r.committed()).isTrue();
            assertThat(r.bytes()).isEqualTo(40);
        });
        assertThat(outbox.deleted).isEmpty();
    }

    // ------------------------------------------------------------------ membership

    @Test
    void joinRejectsAnIndexOutsideTheWorld() {
        start(config(b -> b), Optional.empty());

        assertThatThrownBy(() -> machine.join(sessions[0], join(0).toBuilder().setWorkerIndex(3).build()))
                .isInstanceOfSatisfying(StatusException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("worker index 3 is outside the world size 3");
                });
        assertThatThrownBy(() -> machine.join(sessions[0], join(0).toBuilder().setWorkerIndex(-1).build()))
                .isInstanceOfSatisfying(StatusException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
        assertThat(machine.connected()).isEmpty();
    }

    @Test
    void joinRejectsAnotherWorldSize() {
        start(config(b -> b), Optional.empty());

        assertThatThrownBy(() -> machine.join(sessions[0], join(0).toBuilder().setWorldSize(4).build()))
                .isInstanceOfSatisfying(StatusException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                    assertThat(e.getStatus().getDescription()).contains("expects world size 4").contains("world size is 3");
                });
    }

    @Test
    void joinRejectsAnotherRun() {
        start(config(b -> b), Optional.empty());

        assertThatThrownBy(() -> machine.join(sessions[0], join(0).toBuilder().setRunId("run-2").build()))
                .isInstanceOfSatisfying(StatusException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                    assertThat(e.getStatus().getDescription()).contains("'run-2'").contains("'run-1'");
                });
    }

    @Test
    void joinRejectsAnIndexTakenByALiveSessionButAcceptsItAfterTheLoss() throws Exception {
        start(config(b -> b), Optional.empty());
        machine.join(sessions[1], join(1));
        Object intruder = new Object();

        assertThatThrownBy(() -> machine.join(intruder, join(1)))
                .isInstanceOfSatisfying(StatusException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.ALREADY_EXISTS);
                    assertThat(e.getStatus().getDescription()).contains("worker index 1 is already joined");
                });

        machine.sessionLost(1, intruder, "stale session"); // not the member's session: ignored
        assertThat(machine.connected()).containsExactly(1);
        machine.sessionLost(1, sessions[1], "stream broken");
        assertThat(machine.join(intruder, join(1)).getWorldSize()).isEqualTo(WORLD);
    }

    @Test
    void welcomeCarriesTheLatestCheckpoint() throws Exception {
        CheckpointRef latest = CheckpointRef.newBuilder().setStep(100).setSaveId("100-0000abcd").setManifestKey(Layout.manifestKey(100)).build();
        start(config(b -> b.saveEverySteps(50)), Optional.of(latest));

        var welcome = machine.join(sessions[0], join(0));

        assertThat(welcome.getLatest()).isEqualTo(latest);
        assertThat(welcome.getSaveEverySteps()).isEqualTo(50);
        assertThat(welcome.getStorageUri()).isEqualTo("file:///ckpt/run-1");
    }

    // ------------------------------------------------------------------ barrier

    @Test
    void aWorkerAheadOfTheOpenBarrierEndsItAndOpensTheNextOne() throws Exception {
        startAndJoinAll();

        machine.prepare(0, sessions[0], 100);
        machine.prepare(1, sessions[1], 101);

        // step 100 can never complete (worker 1 skipped it): it aborts instead of hanging ...
        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.STEP_MISMATCH);
            assertThat(a.getStep()).isEqualTo(100);
            assertThat(a.getMessage()).contains("worker 1 prepared step 101");
        });
        assertThat(outbox.ended).singleElement().extracting(SaveRecord::outcome).isEqualTo(dev.cairn.protocol.SaveOutcome.STEP_MISMATCH);
        // ... and worker 1's prepare opens the barrier of step 101, which the others can still join
        assertThat(machine.phase()).contains(PendingSave.Phase.BARRIER);
        assertThat(machine.inFlightStep()).isEqualTo(101);
        assertThat(outbox.aborts(1)).noneMatch(a -> a.getStep() == 101);
    }

    @Test
    void aWorkerThatReachesAnAbortedStepLateIsToldAtOnce() throws Exception {
        startAndJoinAll();
        machine.prepare(0, sessions[0], 100);
        machine.sessionLost(1, sessions[1], "killed");
        assertThat(outbox.aborts(0)).singleElement().extracting(Aborted::getReason).isEqualTo(AbortReason.WORKER_LOST);

        // worker 2 was slower: it reaches step 100 only now, after its save was aborted
        machine.prepare(2, sessions[2], 100);

        assertThat(outbox.aborts(2)).anySatisfy(a -> {
            assertThat(a.getStep()).isEqualTo(100);
            assertThat(a.getReason()).isEqualTo(AbortReason.WORKER_LOST);
            assertThat(a.getMessage()).contains("worker 1 lost");
        });
        assertThat(machine.phase()).as("no barrier that can never complete").isEmpty();
    }

    @Test
    void aWorkerThatJoinedAfterTheAbortMaySaveThatStepAgain() throws Exception {
        startAndJoinAll();
        machine.prepare(0, sessions[0], 100);
        machine.sessionLost(1, sessions[1], "killed");

        // the restarted worker 1 (a new session) and the others retry step 100 after a restore
        Object restarted = new Object();
        machine.join(restarted, join(1));
        machine.prepare(1, restarted, 100);

        assertThat(outbox.aborts(1)).noneMatch(a -> a.getStep() == 100);
        assertThat(machine.phase()).contains(PendingSave.Phase.BARRIER);
        assertThat(machine.inFlightStep()).isEqualTo(100);
    }

    @Test
    void aWorkerBehindTheOpenBarrierIsRefusedAlone() throws Exception {
        startAndJoinAll();

        machine.prepare(0, sessions[0], 100);
        machine.prepare(1, sessions[1], 99);

        assertThat(outbox.aborts(1)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.STEP_MISMATCH);
            assertThat(a.getStep()).isEqualTo(99);
        });
        assertThat(outbox.aborts(0)).isEmpty();
        assertThat(machine.inFlightStep()).isEqualTo(100);
        assertThat(outbox.ended).isEmpty();
    }

    @Test
    void aPrepareForTheNextStepDuringTheUploadIsHeldAndReplayedAfterTheCommit() throws Exception {
        startAndJoinAll();
        String first = prepareAll(100);

        // worker 0 is fast: it reaches step 200 while save 100 still uploads
        machine.prepare(0, sessions[0], 200);
        assertThat(machine.inFlightStep()).isEqualTo(100);
        assertThat(outbox.aborts(0)).isEmpty();

        for (int w = 0; w < WORLD; w++) {
            reportDefault(first, w, 100);
        }
        machine.prepare(1, sessions[1], 200); // held while committing, too
        machine.onCommitResult(first, SaveCoordinator.CommitResult.COMMITTED, "");

        assertThat(machine.phase()).contains(PendingSave.Phase.BARRIER);
        assertThat(machine.inFlightStep()).isEqualTo(200);
        machine.prepare(2, sessions[2], 200);

        assertThat(outbox.releases(2)).extracting(Release::getStep).containsExactly(100L, 200L);
        assertThat(outbox.sent).noneMatch(s -> s.message().hasAborted());
    }

    @Test
    void aPrepareAtOrBeforeTheLatestCheckpointIsRefusedToThatWorkerOnly() throws Exception {
        CheckpointRef latest = CheckpointRef.newBuilder().setStep(100).setSaveId("100-0000abcd").setManifestKey(Layout.manifestKey(100)).build();
        start(config(b -> b), Optional.of(latest));
        for (int w = 0; w < WORLD; w++) {
            machine.join(sessions[w], join(w));
        }

        machine.prepare(1, sessions[1], 100);
        machine.prepare(2, sessions[2], 50);

        assertThat(outbox.aborts(1)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.STEP_ALREADY_COMMITTED);
            assertThat(a.getStep()).isEqualTo(100);
        });
        assertThat(outbox.aborts(2)).singleElement().extracting(Aborted::getStep).isEqualTo(50L);
        assertThat(outbox.aborts(0)).isEmpty();
        assertThat(machine.phase()).isEmpty();
    }

    @Test
    void barrierDeadlineAbortsNamingTheMissingWorkers() throws Exception {
        startAndJoinAll();
        machine.prepare(0, sessions[0], 100);
        machine.prepare(2, sessions[2], 100);

        clock.advance(Duration.ofMillis(4000));
        machine.heartbeat(1, sessions[1], 99);
        machine.tick();
        assertThat(machine.phase()).as("at the deadline, not before").contains(PendingSave.Phase.BARRIER);

        clock.advance(Duration.ofMillis(1));
        machine.tick();

        assertThat(machine.phase()).isEmpty();
        for (int w = 0; w < WORLD; w++) {
            assertThat(outbox.aborts(w)).singleElement().satisfies(a -> {
                assertThat(a.getReason()).isEqualTo(AbortReason.BARRIER_TIMEOUT);
                assertThat(a.getSaveId()).isEmpty();
                assertThat(a.getMessage()).contains("workers [1] did not prepare");
            });
        }
        assertThat(outbox.deleted).as("nothing was released, nothing to delete").isEmpty();
    }

    // ------------------------------------------------------------------ upload and reports

    @Test
    void uploadDeadlineAbortsNamingTheMissingWorkersAndDeletesTheAttempt() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);
        reportDefault(saveId, 1, 100);

        clock.advance(Duration.ofMillis(5001));
        machine.tick();

        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.UPLOAD_TIMEOUT);
            assertThat(a.getSaveId()).isEqualTo(saveId);
            assertThat(a.getMessage()).contains("workers [0, 2] did not report");
        });
        assertThat(outbox.deleted).containsExactly(saveId);
        assertThat(outbox.commits).isEmpty();
    }

    @Test
    void aSilentWorkerIsClosedAndLostWithinTheHeartbeatTimeout() throws Exception {
        startAndJoinAll(config(b -> b.barrierTimeout(Duration.ofSeconds(60))));
        machine.prepare(0, sessions[0], 100);
        machine.prepare(1, sessions[1], 100);

        clock.advance(Duration.ofMillis(3000));
        machine.heartbeat(0, sessions[0], 100);
        machine.heartbeat(1, sessions[1], 100);
        clock.advance(Duration.ofMillis(3000));
        machine.tick();
        assertThat(outbox.closed).as("6 s of silence is not more than the 6 s timeout").isEmpty();

        clock.advance(Duration.ofMillis(1));
        machine.tick();

        assertThat(outbox.closed).containsExactly(2);
        assertThat(outbox.closeStatuses.get(0).getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(outbox.closeStatuses.get(0).getDescription()).contains("worker 2").contains("no heartbeat");
        assertThat(machine.connected()).containsExactlyInAnyOrder(0, 1);
        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.WORKER_LOST);
            assertThat(a.getMessage()).contains("worker 2 lost");
        });
    }

    @Test
    void aSessionLostMidUploadAbortsAndDeletesTheAttempt() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);
        reportDefault(saveId, 0, 100);

        machine.sessionLost(1, sessions[1], "stream broken: UNAVAILABLE");

        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.WORKER_LOST);
            assertThat(a.getSaveId()).isEqualTo(saveId);
            assertThat(a.getMessage()).contains("worker 1 lost: stream broken");
        });
        assertThat(outbox.aborts(2)).hasSize(1);
        assertThat(outbox.deleted).containsExactly(saveId);
        assertThat(machine.recentlyAborted()).contains(saveId);
    }

    @Test
    void aLateReportForAnAbortedSaveIsDiscardedAndIgnored() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);
        machine.sessionLost(1, sessions[1], "stream broken");

        assertThat(reportDefault(saveId, 0, 100)).isEqualTo(PendingSave.Ack.DISCARDED);
        assertThat(reportDefault("100-ffffffff", 0, 100)).isEqualTo(PendingSave.Ack.UNKNOWN);
        assertThat(outbox.commits).isEmpty();
        assertThat(machine.phase()).isEmpty();
    }

    @Test
    void aRepeatedReportIsADuplicate() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        assertThat(reportDefault(saveId, 0, 100)).isEqualTo(PendingSave.Ack.ACCEPTED);
        assertThat(reportDefault(saveId, 0, 100)).isEqualTo(PendingSave.Ack.DUPLICATE);
        assertThat(machine.phase()).contains(PendingSave.Phase.UPLOADING);

        reportDefault(saveId, 1, 100);
        reportDefault(saveId, 2, 100);
        assertThat(reportDefault(saveId, 2, 100)).as("while committing").isEqualTo(PendingSave.Ack.DUPLICATE);
        assertThat(outbox.commits).hasSize(1);
    }

    @Test
    void replicatedPiecesOfEveryWorkerGoIntoTheManifest() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        machine.shardReport(0, sessions[0], report(saveId, 0, 100, 4, piece("opt/m", 0, 4, 0)));
        machine.shardReport(1, sessions[1], report(saveId, 1, 100, 3, piece("opt/m", 0, 3, 4)));
        machine.shardReport(2, sessions[2], report(saveId, 2, 100, 3, piece("opt/m", 0, 3, 7)));

        assertThat(outbox.aborts(0)).isEmpty();
        assertThat(outbox.commits).singleElement().satisfies(m -> assertThat(m.entries())
                .extracting(Manifest.EntryRef::worker, Manifest.EntryRef::entryOffset, Manifest.EntryRef::length)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(0, 0L, 4L), org.assertj.core.groups.Tuple.tuple(1, 4L, 3L),
                        org.assertj.core.groups.Tuple.tuple(2, 7L, 3L)));
    }

    @Test
    void anEntryOffsetOnAShardedEntryIsAnInvalidShard() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        machine.shardReport(1, sessions[1], report(saveId, 1, 100, 10, entry("w", 0, 10, false).toBuilder().setEntryOffset(5).build()));

        assertThat(outbox.aborts(2)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.INVALID_SHARD);
            assertThat(a.getMessage()).contains("entry_offset 5 but is not replicated");
        });
    }

    @Test
    void anUnsafeEntryNameIsAnInvalidShard() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        machine.shardReport(1, sessions[1], report(saveId, 1, 100, 10, entry("../escape", 0, 10, false)));

        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.INVALID_SHARD);
            assertThat(a.getMessage()).contains("'../escape'");
        });
    }

    // ------------------------------------------------------------------ commit outcomes

    @Test
    void commitAlreadyExistsAbortsAsAlreadyCommitted() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);
        for (int w = 0; w < WORLD; w++) {
            reportDefault(saveId, w, 100);
        }

        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.ALREADY_EXISTS, "");

        assertThat(outbox.aborts(1)).singleElement().extracting(Aborted::getReason).isEqualTo(AbortReason.STEP_ALREADY_COMMITTED);
        assertThat(outbox.deleted).as("our attempt is referenced by no manifest").containsExactly(saveId);
        assertThat(outbox.committed).isEmpty();
        assertThat(machine.latest()).isEmpty();
    }

    @Test
    void commitWithAnUnknownOutcomeAbortsWithoutDeletingTheShards() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);
        for (int w = 0; w < WORLD; w++) {
            reportDefault(saveId, w, 100);
        }

        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.UNKNOWN, "timed out");

        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.COMMIT_FAILED);
            assertThat(a.getMessage()).contains("unknown outcome").contains("timed out");
        });
        assertThat(outbox.deleted).isEmpty();
        assertThat(machine.phase()).isEmpty();
    }

    @Test
    void aCommitResultForAnotherSaveIsIgnored() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.COMMITTED, "");
        machine.onCommitResult("100-00000000", SaveCoordinator.CommitResult.COMMITTED, "");

        assertThat(machine.phase()).contains(PendingSave.Phase.UPLOADING);
        assertThat(machine.latest()).isEmpty();
    }

    // ------------------------------------------------------------------ triggers

    @Test
    void theTimePolicyPushesATargetAheadOfTheFastestWorker() throws Exception {
        start(config(b -> b.saveEvery(Duration.ofSeconds(30)).heartbeatTimeout(Duration.ofMinutes(5))), Optional.empty());
        for (int w = 0; w < WORLD; w++) {
            machine.join(sessions[w], join(w));
        }
        machine.heartbeat(0, sessions[0], 10);
        machine.heartbeat(1, sessions[1], 5);
        machine.heartbeat(2, sessions[2], 8);
        clock.advance(Duration.ofSeconds(1));
        machine.heartbeat(0, sessions[0], 20);  // 10 steps per second
        machine.heartbeat(1, sessions[1], 12);

        clock.advance(Duration.ofMillis(28_000));
        machine.tick();
        assertThat(outbox.targets(0)).as("29 s after the start: not yet").isEmpty();

        clock.advance(Duration.ofSeconds(1));
        machine.tick();

        for (int w = 0; w < WORLD; w++) {
            assertThat(outbox.targets(w)).singleElement().satisfies(t -> {
                // at 10 steps/s the fastest worker (step 20) moves 10 steps per heartbeat interval: the target
                // must lie beyond that, or the worker passes it before it hears of it
                assertThat(t.getStep()).isGreaterThan(20 + 10);
                assertThat(t.getReason()).contains("every 30 s");
            });
        }
        machine.tick();
        assertThat(outbox.targets(0)).as("one target at a time").hasSize(1);
    }

    @Test
    void triggerPushesOneTargetToEveryWorkerAndLateJoiners() throws Exception {
        start(config(b -> b), Optional.empty());
        machine.join(sessions[0], join(0));
        machine.join(sessions[1], join(1));
        machine.heartbeat(0, sessions[0], 41);
        machine.heartbeat(1, sessions[1], 40);

        long target = machine.trigger("operator request");

        assertThat(target).isGreaterThan(41);
        assertThat(machine.trigger("again")).isEqualTo(target);
        machine.join(sessions[2], join(2));
        for (int w = 0; w < WORLD; w++) {
            assertThat(outbox.targets(w)).singleElement().satisfies(t -> {
                assertThat(t.getStep()).isEqualTo(target);
                assertThat(t.getReason()).isEqualTo("operator request");
            });
        }

        prepareAll(target);
        assertThat(machine.inFlightStep()).isEqualTo(target);
        assertThat(machine.trigger("during the save")).isEqualTo(target);
    }

    @Test
    void shutdownAbortsTheSaveInFlightAndRefusesJoins() throws Exception {
        startAndJoinAll();
        String saveId = prepareAll(100);

        machine.shutdown();

        assertThat(outbox.aborts(0)).singleElement().extracting(Aborted::getReason).isEqualTo(AbortReason.COORDINATOR_SHUTDOWN);
        assertThat(outbox.deleted).containsExactly(saveId);
        assertThatThrownBy(() -> machine.join(new Object(), join(0)))
                .isInstanceOfSatisfying(StatusException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
    }

    @Test
    void historyRecordsEverySave() throws Exception {
        startAndJoinAll();
        saveAndCommit(100, 1, 2, 3);
        prepareAll(200);
        machine.sessionLost(2, sessions[2], "gone");

        assertThat(machine.history()).extracting(SaveRecord::step, SaveRecord::outcome)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(100L, dev.cairn.protocol.SaveOutcome.COMMITTED), org.assertj.core.groups.Tuple.tuple(200L, dev.cairn.protocol.SaveOutcome.WORKER_LOST));
        assertThat(outbox.ended).hasSize(2);
    }
}
