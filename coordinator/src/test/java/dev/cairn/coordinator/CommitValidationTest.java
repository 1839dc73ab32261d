package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.coordinator.SaveCoordinatorTest.ManualClock;
import dev.cairn.coordinator.SaveCoordinatorTest.RecordingOutbox;
import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.protocol.SaveOutcome;
import dev.cairn.storage.DType;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The state machine refuses reports that would not restore, and never overflows a step. */
class CommitValidationTest {
    private static final int WORLD = 2;
    private final ManualClock clock = new ManualClock();
    private final RecordingOutbox outbox = new RecordingOutbox();
    private final Object[] sessions = {new Object(), new Object()};
    private SaveCoordinator machine;
    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path dir;

    @BeforeEach
    void joinAll() throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder("run-1", WORLD, StorageUri.parse("file:///ckpt/run-1"))
                .heartbeatInterval(Duration.ofSeconds(1)).heartbeatTimeout(Duration.ofSeconds(6)).build();
        machine = new SaveCoordinator(config, clock, outbox, Optional.empty());
        for (int w = 0; w < WORLD; w++) {
            machine.join(sessions[w], Join.newBuilder().setRunId("run-1").setWorkerIndex(w).setWorldSize(WORLD).build());
        }
    }

    private String release(long step) {
        for (int w = 0; w < WORLD; w++) {
            machine.prepare(w, sessions[w], step);
        }
        return machine.inFlightSaveId();
    }

    private static ShardReport.Builder good(String saveId, int worker, long step) {
        return ShardReport.newBuilder().setSaveId(saveId).setStep(step).setObjectKey(Layout.shardKey(saveId, worker)).setLength(100)
                .addEntries(EntryInfo.newBuilder().setName("w" + worker).setOffset(0).setLength(100));
    }

    private void assertInvalidShard(String saveId, String... messageParts) {
        assertThat(outbox.commits).as("nothing is committed").isEmpty();
        assertThat(outbox.aborts(0)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.INVALID_SHARD);
            assertThat(a.getMessage()).contains(messageParts);
        });
        assertThat(outbox.deleted).containsExactly(saveId);
        assertThat(machine.history()).singleElement().extracting(SaveRecord::outcome).isEqualTo(SaveOutcome.INVALID_SHARD);
    }

    @Test
    void aNegativeLengthWithAnEscapingKeyIsAnInvalidShard() {
        String saveId = release(10);
        machine.shardReport(0, sessions[0], good(saveId, 0, 10).build());

        var ack = machine.shardReport(1, sessions[1], good(saveId, 1, 10).setLength(-1).setObjectKey("../../x").clearEntries().build());

        assertThat(ack).isEqualTo(PendingSave.Ack.DISCARDED);
        assertInvalidShard(saveId, "worker 1", "length -1 is negative");
    }

    @Test
    void anyKeyButTheLayoutsKeyIsAnInvalidShard() {
        String saveId = release(10);

        machine.shardReport(0, sessions[0], good(saveId, 0, 10).setObjectKey("/etc/passwd").build());

        assertInvalidShard(saveId, "object_key '/etc/passwd' is not " + Layout.shardKey(saveId, 0));
    }

    @Test
    void anEntryWhoseEndOverflowsIsAnInvalidShard() {
        String saveId = release(10);

        machine.shardReport(0, sessions[0], good(saveId, 0, 10).clearEntries()
                .addEntries(EntryInfo.newBuilder().setName("x").setOffset(Long.MAX_VALUE - 5).setLength(10)).build());

        assertInvalidShard(saveId, "entries.offset/length", "lies outside the shard");
    }

    @Test
    void aReportForAnotherStepThanTheReleasedOneIsAnInvalidShard() {
        String saveId = release(10);

        machine.shardReport(0, sessions[0], good(saveId, 0, 11).build());

        assertInvalidShard(saveId, "step 11 is not the released step 10");
    }

    @Test
    void aManifestThatFailsTheCommitChecksAbortsAsInvalidShard() {
        String saveId = release(10);
        machine.shardReport(0, sessions[0], good(saveId, 0, 10).build());
        machine.shardReport(1, sessions[1], good(saveId, 1, 10).build());
        assertThat(outbox.commits).hasSize(1);

        machine.onCommitResult(saveId, SaveCoordinator.CommitResult.INVALID, "worker 1 reported length 100 but the object has 99 bytes");

        assertThat(outbox.aborts(1)).singleElement().satisfies(a -> {
            assertThat(a.getReason()).isEqualTo(AbortReason.INVALID_SHARD);
            assertThat(a.getMessage()).contains("has 99 bytes");
        });
        assertThat(outbox.deleted).containsExactly(saveId);
        assertThat(machine.latest()).isEmpty();
    }

    @Test
    void typedEntriesReachTheManifest() {
        String saveId = release(10);
        machine.shardReport(0, sessions[0], good(saveId, 0, 10).clearEntries()
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(96).setDtype("float32").addAllShape(List.of(4L, 6L))
                        .addAllGlobalShape(List.of(8L, 6L)).addAllGlobalOffsets(List.of(0L, 0L)))
                .addEntries(EntryInfo.newBuilder().setName("raw").setOffset(96).setLength(4)).build());
        machine.shardReport(1, sessions[1], good(saveId, 1, 10).clearEntries()
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(96).setDtype("float32").addAllShape(List.of(4L, 6L))
                        .addAllGlobalShape(List.of(8L, 6L)).addAllGlobalOffsets(List.of(4L, 0L))).build());

        assertThat(outbox.commits).singleElement().satisfies(m -> {
            assertThat(m.formatVersion()).isEqualTo(2);
            assertThat(m.entry(1, "w").orElseThrow().tensor())
                    .isEqualTo(Manifest.Tensor.of(DType.FLOAT32, 4, 6).withGlobal(new long[] {8, 6}, new long[] {4, 0}));
            assertThat(m.entry(0, "raw").orElseThrow().tensor()).isEqualTo(Manifest.Tensor.bytes(4));
        });
    }

    @Test
    void piecesOfOneTensorThatOverlapAreAnInvalidShard() {
        // each report is valid alone; together rows [2, 4) are stored twice: not restorable onto another world size
        String saveId = release(10);
        machine.shardReport(0, sessions[0], good(saveId, 0, 10).clearEntries()
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(96).setDtype("float32").addAllShape(List.of(4L, 6L))
                        .addAllGlobalShape(List.of(8L, 6L)).addAllGlobalOffsets(List.of(0L, 0L))).build());
        machine.shardReport(1, sessions[1], good(saveId, 1, 10).clearEntries()
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(96).setDtype("float32").addAllShape(List.of(4L, 6L))
                        .addAllGlobalShape(List.of(8L, 6L)).addAllGlobalOffsets(List.of(2L, 0L))).build());
        // the state machine hands the manifest to the committer, which runs the reader's validation before the create
        Manifest handed = outbox.commits.get(0);
        java.util.concurrent.atomic.AtomicReference<String> outcome = new java.util.concurrent.atomic.AtomicReference<>();
        try (dev.cairn.storage.CheckpointStore store = dev.cairn.storage.CheckpointStores.open(dir.toUri().toString())) {
            CoordinatorConfig config = CoordinatorConfig.builder("run-1", WORLD, StorageUri.parse(dir.toUri().toString())).build();
            new ManifestCommitter(config, new dev.cairn.storage.CheckpointCatalog(store), () -> { })
                    .commit(handed, (result, message) -> outcome.set(result + ": " + message));
            assertThat(outcome.get()).startsWith("INVALID: ").contains("pieces of entry 'w' overlap");
            assertThat(store.stat(Layout.manifestKey(10))).as("nothing committed").isEmpty();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private void assertTypedEntryRefused(EntryInfo.Builder entry, String... messageParts) {
        String saveId = release(10);
        machine.shardReport(0, sessions[0], good(saveId, 0, 10).clearEntries().addEntries(entry.setName("t").setOffset(0)).build());
        assertInvalidShard(saveId, messageParts);
    }

    @Test
    void anUnknownDtypeIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(8).setDtype("float8").addShape(8), "entries.dtype/shape", "unknown dtype 'float8'");
    }

    @Test
    void aLengthThatIsNotItemsizeTimesShapeIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(10).setDtype("float32").addShape(3), "length 10 is not float32[3] = 12 bytes");
    }

    @Test
    void aShapeWhoseProductOverflowsIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(8).setDtype("int64").addShape(1L << 40).addShape(1L << 40), "exceeds 2^63 bytes");
    }

    @Test
    void aNegativeDimensionIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(0).setDtype("int8").addShape(-2), "negative dimension -2");
    }

    @Test
    void moreThan32DimensionsIsAnInvalidShard() {
        EntryInfo.Builder e = EntryInfo.newBuilder().setLength(1).setDtype("uint8");
        for (int d = 0; d < 33; d++) {
            e.addShape(1);
        }
        assertTypedEntryRefused(e, "more than 32 dimensions");
    }

    @Test
    void aPieceOutsideItsGlobalShapeIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(8).setDtype("float32").addShape(2).addGlobalShape(4).addGlobalOffsets(3),
                "does not lie inside globalShape [4]");
    }

    @Test
    void aGlobalShapeWithoutOffsetsIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(8).setDtype("float32").addShape(2).addGlobalShape(4),
                "globalShape and globalOffsets go together");
    }

    @Test
    void aShapeWithoutADtypeIsAnInvalidShard() {
        assertTypedEntryRefused(EntryInfo.newBuilder().setLength(8).addShape(8), "shape without a dtype");
    }

    @Test
    void aTriggerNearTheLargestStepIsRefusedInsteadOfOverflowing() {
        long nearTop = ProtocolLimits.MAX_STEP_EXCLUSIVE - 1;
        machine.heartbeat(0, sessions[0], nearTop);

        assertThat(machine.trigger("operator")).isEqualTo(-1);
        assertThat(outbox.targets(0)).as("no target at or past 2^62 is pushed").isEmpty();
        assertThat(outbox.targets(1)).isEmpty();
    }

    @Test
    void aTriggerBelowTheTopStillWorks() {
        machine.heartbeat(0, sessions[0], 1000);

        assertThat(machine.trigger("operator")).isEqualTo(1001);
        assertThat(outbox.targets(1)).singleElement().extracting(t -> t.getStep()).isEqualTo(1001L);
    }
}
