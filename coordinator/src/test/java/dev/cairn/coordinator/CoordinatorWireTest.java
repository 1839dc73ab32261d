package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Prepare;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.StorageUri;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A client speaking protocol v1 over an in-process channel, without the agent library, against a
 * coordinator on a real local store: the commit checks against storage and the bounds on input.
 * The clock never moves, so anything that happens happens at once, not by a heartbeat timeout.
 */
class CoordinatorWireTest {
    private static final String RUN = "run-1";

    @TempDir
    Path dir;

    private final SaveCoordinatorTest.ManualClock clock = new SaveCoordinatorTest.ManualClock();
    private final List<AutoCloseable> closing = new ArrayList<>();
    private Coordinator coordinator;
    private ManagedChannel channel;
    private CheckpointStore store;

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : closing) {
            try {
                c.close();
            } catch (IllegalStateException e) {
                // the stream already ended
            }
        }
        if (channel != null) {
            channel.shutdownNow();
        }
        if (coordinator != null) {
            coordinator.close();
        }
        if (store != null) {
            store.close();
        }
    }

    private void start(int world, int keepLast) throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve(RUN).toUri().toString());
        String name = "cairn-" + System.nanoTime();
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, world, uri)
                .retention(RetentionPolicy.keepLast(keepLast)).build();
        coordinator = Coordinator.start(config, InProcessServerBuilder.forName(name).directExecutor(), clock);
        channel = InProcessChannelBuilder.forName(name).directExecutor().build();
        store = CheckpointStores.open(uri, true);
    }

    /** One raw session: what the coordinator sent, and how the stream ended. */
    final class Raw implements StreamObserver<CoordinatorMessage> {
        final LinkedBlockingQueue<CoordinatorMessage> received = new LinkedBlockingQueue<>();
        final CompletableFuture<Status> ended = new CompletableFuture<>();
        final StreamObserver<AgentMessage> out = WorkerSessionServiceGrpc.newStub(channel).session(this);

        Raw send(AgentMessage m) {
            out.onNext(m);
            return this;
        }

        CoordinatorMessage await(Predicate<CoordinatorMessage> p) throws InterruptedException {
            while (true) {
                CoordinatorMessage m = received.poll(10, TimeUnit.SECONDS);
                assertThat(m).as("a message from the coordinator").isNotNull();
                if (p.test(m)) {
                    return m;
                }
            }
        }

        Status end() throws Exception {
            return ended.get(10, TimeUnit.SECONDS);
        }

        @Override
        public void onNext(CoordinatorMessage value) {
            received.add(value);
        }

        @Override
        public void onError(Throwable t) {
            ended.complete(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            ended.complete(Status.OK);
        }
    }

    private Raw join(int worker, int world) throws Exception {
        Raw r = new Raw();
        closing.add(() -> r.out.onCompleted());
        r.send(AgentMessage.newBuilder().setJoin(Join.newBuilder().setRunId(RUN).setWorkerIndex(worker).setWorldSize(world)).build());
        r.await(CoordinatorMessage::hasWelcome);
        return r;
    }

    private static AgentMessage prepare(long step) {
        return AgentMessage.newBuilder().setPrepare(Prepare.newBuilder().setStep(step)).build();
    }

    private static AgentMessage report(ShardReport.Builder r) {
        return AgentMessage.newBuilder().setShardReport(r).build();
    }

    /** Prepares {@code step} on a one-worker run and writes a shard of {@code bytes} bytes. */
    private Release releaseAndWrite(Raw w, long step, int bytes) throws Exception {
        w.send(prepare(step));
        Release rel = w.await(CoordinatorMessage::hasRelease).getRelease();
        store.write(Layout.shardKey(rel.getSaveId(), 0), new byte[bytes]);
        return rel;
    }

    private static ShardReport.Builder shard(Release rel, long length) {
        return ShardReport.newBuilder().setSaveId(rel.getSaveId()).setStep(rel.getStep())
                .setObjectKey(Layout.shardKey(rel.getSaveId(), 0)).setLength(length)
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(Math.max(0, length)));
    }

    private void assertAbortedInvalidShard(Raw w, String... parts) throws Exception {
        var aborted = w.await(CoordinatorMessage::hasAborted).getAborted();
        assertThat(aborted.getReason()).isEqualTo(AbortReason.INVALID_SHARD);
        assertThat(aborted.getMessage()).contains(parts);
    }

    @Test
    void aValidReportCommits() throws Exception {
        start(1, 5);
        Raw w = join(0, 1);
        Release rel = releaseAndWrite(w, 10, 64);

        w.send(report(shard(rel, 64)));

        assertThat(w.await(CoordinatorMessage::hasCommitted).getCommitted().getCheckpoint().getStep()).isEqualTo(10);
        assertThat(new CheckpointCatalog(store).read(10).saveId()).isEqualTo(rel.getSaveId());
    }

    @Test
    void aLengthThatIsNotTheObjectsSizeIsNotCommitted() throws Exception {
        start(1, 5);
        Raw w = join(0, 1);
        Release rel = releaseAndWrite(w, 10, 64);

        w.send(report(shard(rel, 100)));

        assertAbortedInvalidShard(w, "reported length 100", "the object has 64 bytes");
        assertThat(new CheckpointCatalog(store).steps()).as("no manifest").isEmpty();
    }

    @Test
    void anObjectThatWasNeverWrittenIsNotCommitted() throws Exception {
        start(1, 5);
        Raw w = join(0, 1);
        w.send(prepare(10));
        Release rel = w.await(CoordinatorMessage::hasRelease).getRelease();

        w.send(report(shard(rel, 64)));

        assertAbortedInvalidShard(w, "does not exist");
        assertThat(new CheckpointCatalog(store).steps()).isEmpty();
    }

    @Test
    void aNegativeLengthAndAnEscapingKeyAreNotCommittedAndRetentionKeepsTheOnlyValidCheckpoint() throws Exception {
        start(1, 2);
        Raw w = join(0, 1);
        Release good = releaseAndWrite(w, 10, 64);
        w.send(report(shard(good, 64)));
        w.await(CoordinatorMessage::hasCommitted);

        for (long step : new long[] {20, 30}) {
            Release bad = releaseAndWrite(w, step, 64);
            w.send(report(shard(bad, -1).setObjectKey("../../x").clearEntries()));
            assertAbortedInvalidShard(w, "length -1 is negative");
        }
        // a third valid save: with keep-last 2 only valid checkpoints count, so step 10 stays
        Release next = releaseAndWrite(w, 40, 8);
        w.send(report(shard(next, 8)));
        w.await(CoordinatorMessage::hasCommitted);

        CheckpointCatalog catalog = new CheckpointCatalog(store);
        assertThat(catalog.steps()).containsExactly(10L, 40L);
        assertThat(catalog.read(10).saveId()).isEqualTo(good.getSaveId());
    }

    @Test
    void aNegativeStepEndsTheSessionAtOnceAndAbortsTheSaveInFlight() throws Exception {
        start(2, 5);
        Raw w0 = join(0, 2);
        Raw w1 = join(1, 2);
        w0.send(prepare(10));

        w1.send(prepare(-5));

        assertThat(w1.end().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(w1.end().getDescription()).contains("prepare.step -5");
        var aborted = w0.await(CoordinatorMessage::hasAborted).getAborted();
        assertThat(aborted.getReason()).isEqualTo(AbortReason.WORKER_LOST);
        assertThat(coordinator.connectedWorkers()).containsExactly(0);
    }

    @Test
    void aHugeHeartbeatStepEndsTheSession() throws Exception {
        start(1, 5);
        Raw w = join(0, 1);

        w.send(AgentMessage.newBuilder().setHeartbeat(dev.cairn.proto.v1.Heartbeat.newBuilder().setStep(Long.MAX_VALUE)).build());

        assertThat(w.end().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(coordinator.connectedWorkers()).isEmpty();
    }

    @Test
    void anOverlongOrForgingRunIdIsRefusedAtOnce() throws Exception {
        start(1, 5);
        for (String runId : new String[] {"x".repeat(1 << 20), "run-1\n[main] INFO forged"}) {
            Raw r = new Raw();
            r.send(AgentMessage.newBuilder().setJoin(Join.newBuilder().setRunId(runId).setWorkerIndex(0).setWorldSize(1)).build());

            Status s = r.end();
            assertThat(s.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(s.getDescription()).contains("join.run_id").doesNotContain("\n").hasSizeLessThan(400);
        }
    }

    @Test
    void anOverlongTokenOrMetadataIsRefused() throws Exception {
        start(1, 5);
        Raw r = new Raw();
        r.send(AgentMessage.newBuilder().setJoin(Join.newBuilder().setRunId(RUN).setWorldSize(1).setToken("t".repeat(2000))).build());
        assertThat(r.end().getDescription()).contains("join.token");

        Raw w = join(0, 1);
        Release rel = releaseAndWrite(w, 10, 64);
        w.send(report(shard(rel, 64).setMetadataJson("{\"a\":\"" + "x".repeat(70_000) + "\"}")));
        assertThat(w.end().getDescription()).contains("metadata_json");
        assertThat(new CheckpointCatalog(store).steps()).isEmpty();
    }

    @Test
    void aSessionThatNeverJoinsIsClosed() throws Exception {
        start(1, 5);
        Raw r = new Raw();

        Status s = r.end();

        assertThat(s.getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
        assertThat(s.getDescription()).contains("no join within");
    }

    @Test
    void sessionsPerCoordinatorAreCapped() throws Exception {
        start(1, 5);
        int max = SessionService.maxSessions(1);
        List<Raw> open = new ArrayList<>();
        for (int i = 0; i < max; i++) {
            open.add(new Raw());
        }
        Raw extra = new Raw();

        assertThat(extra.end().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
        assertThat(open.get(0).ended).isNotDone();
        open.get(0).out.onCompleted();
        open.get(0).end();
        // a closed session frees its place
        Raw again = new Raw();
        again.send(AgentMessage.newBuilder().setJoin(Join.newBuilder().setRunId(RUN).setWorkerIndex(0).setWorldSize(1)).build());
        again.await(CoordinatorMessage::hasWelcome);
        again.out.onCompleted();
        open.subList(1, open.size()).forEach(o -> o.out.onCompleted());
    }
}
