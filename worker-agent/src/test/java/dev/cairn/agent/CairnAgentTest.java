package dev.cairn.agent;

import static dev.cairn.agent.TestCluster.state;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.cairn.proto.v1.AdminServiceGrpc;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CairnAgentTest {
    private static final Duration WAIT = Duration.ofSeconds(20);

    @TempDir
    Path storage;

    private TestCluster cluster;

    @AfterEach
    void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static SnapshotWriter trainerState(int worker, long step, int size) {
        return snap -> {
            snap.put("model/w", state("model/w", worker, step, size));
            snap.put("model/b", state("model/b", worker, step, 100));
            snap.putReplicated("optimizer/step", state("optimizer/step", 0, step, 64));
            snap.metadata("loss", 1.0 / step);
            snap.metadata("epoch", step / 10);
        };
    }

    private static void awaitAll(List<SaveHandle> handles) throws Exception {
        for (SaveHandle h : handles) {
            assertThat(h.await(WAIT).step()).isEqualTo(h.step());
        }
    }

    private Manifest manifest(long step) throws IOException {
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            return new CheckpointCatalog(store).read(step);
        }
    }

    private List<Long> committedSteps() throws IOException {
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            return new CheckpointCatalog(store).steps();
        }
    }

    @Test
    void savedEntriesReadBackByteForByteOnAFreshCluster() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();
        for (long step : new long[] {10, 20, 30}) {
            awaitAll(cluster.saveAll(step, w -> trainerState(w, step, 5000 + w)));
        }
        assertThat(committedSteps()).containsExactly(10L, 20L, 30L);
        cluster.close();

        cluster = TestCluster.start(storage, 2, b -> b).connectAll();

        for (int w = 0; w < 2; w++) {
            RestoredCheckpoint r = cluster.agent(w).restoreLatest().orElseThrow();
            assertThat(r.step()).isEqualTo(30);
            assertThat(r.entryNames()).containsExactlyInAnyOrder("model/w", "model/b", "optimizer/step");
            assertThat(r.read("model/w")).isEqualTo(state("model/w", w, 30, 5000 + w));
            assertThat(r.read("model/b")).isEqualTo(state("model/b", w, 30, 100));
            assertThat(r.read("optimizer/step")).isEqualTo(state("optimizer/step", 0, 30, 64));
            assertThat(r.open("model/w").readAllBytes()).isEqualTo(state("model/w", w, 30, 5000 + w));
            assertThat(r.metadata()).containsEntry("epoch", 3L);
        }
        // the restore point is a floor for later saves
        assertThatThrownBy(() -> cluster.agent(0).save(30, s -> { }))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("step 30 is not after 30");
    }

    @Test
    void replicatedEntriesAreWrittenExactlyOnceSplitAcrossWorkers() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();
        awaitAll(cluster.saveAll(10, w -> trainerState(w, 10, 1000)));

        Manifest m = manifest(10);

        assertThat(m.entries()).filteredOn(Manifest.EntryRef::replicated)
                .extracting(Manifest.EntryRef::name, Manifest.EntryRef::worker, Manifest.EntryRef::entryOffset, Manifest.EntryRef::length)
                .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple("optimizer/step", 0, 0L, 32L),
                        org.assertj.core.groups.Tuple.tuple("optimizer/step", 1, 32L, 32L));
        assertThat(m.shard(0).length()).isEqualTo(1000 + 100 + 32);
        assertThat(m.shard(1).length()).isEqualTo(1000 + 100 + 32);
        assertThat(m.entries()).filteredOn(e -> !e.replicated()).hasSize(4);
        assertThat(m.entries()).allSatisfy(e -> assertThat(m.entry(0, e.name())).isPresent());
    }

    @Test
    void aShardLargerThanTheStagingBudgetSavesWithinIt() throws Exception {
        long budget = 64 << 10;
        cluster = TestCluster.start(storage, 2, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).stagingBytes(budget).build());
        int size = 6 * (int) budget + 123;

        awaitAll(cluster.saveAll(10, w -> trainerState(w, 10, size)));

        for (int w = 0; w < 2; w++) {
            assertThat(cluster.agent(w).peakStagingBytes()).isPositive().isLessThanOrEqualTo(budget);
        }
        assertThat(manifest(10).shard(0).length()).isGreaterThan(5 * budget);
        cluster.close();
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();
        assertThat(cluster.agent(1).restoreLatest().orElseThrow().read("model/w")).isEqualTo(state("model/w", 1, 10, size));
    }

    @Test
    void anOutOfMemoryErrorInTheUploadAbortsTheSaveAtOnceAndTheRunGoesOn() throws Exception {
        AtomicBoolean thrown = new AtomicBoolean();
        cluster = TestCluster.start(storage, 2, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).hooks(new AgentHooks() {
            @Override
            public void onPhase(Phase phase, long step) {
                if (i == 0 && phase == Phase.UPLOAD_HALFWAY && step == 10 && thrown.compareAndSet(false, true)) {
                    throw new OutOfMemoryError("Java heap space (injected)");
                }
            }
        }).build());

        List<SaveHandle> first = cluster.saveAll(10, w -> trainerState(w, 10, 1000));

        for (SaveHandle h : first) {
            assertThatThrownBy(() -> h.await(WAIT)).isInstanceOf(SaveAbortedException.class).hasMessageContaining("UPLOAD_FAILED");
        }
        assertThat(thrown).isTrue();
        awaitAll(cluster.saveAll(20, w -> trainerState(w, 20, 1000)));
        assertThat(committedSteps()).containsExactly(20L);
    }

    @Test
    void anInvalidEntryNameAbortsTheSaveForEveryWorker() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();

        SaveHandle other = cluster.agent(1).save(10, trainerState(1, 10, 100));
        awaitBarrier(10);

        assertThatThrownBy(() -> cluster.agent(0).save(10, snap -> snap.put("../escape", new byte[10])))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'../escape'");

        assertThatThrownBy(() -> other.await(WAIT)).isInstanceOf(SaveAbortedException.class);
        assertThat(other.committed()).isCompletedExceptionally();
        assertThat(committedSteps()).isEmpty();

        // the run goes on: the next save commits
        awaitAll(cluster.saveAll(20, w -> trainerState(w, 20, 100)));
        assertThat(committedSteps()).containsExactly(20L);
    }

    @Test
    void callbacksOnACommitOrAbortRunOnTheAgentsEventsThreadNotOnTheNetworkThread() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();
        // worker 1 has not prepared yet, so neither future can be complete when the callback is chained
        CompletableFuture<Thread> committedOn = new CompletableFuture<>();
        cluster.agent(0).save(10, s -> { }).committed().whenComplete((ok, err) -> committedOn.complete(Thread.currentThread()));
        cluster.agent(1).save(10, s -> { }).await(WAIT);
        assertEventsThreadOfWorker0(committedOn.get(20, TimeUnit.SECONDS));

        CompletableFuture<Thread> abortedOn = new CompletableFuture<>();
        SaveHandle aborted = cluster.agent(0).save(20, s -> { });
        aborted.committed().whenComplete((ok, err) -> abortedOn.complete(Thread.currentThread()));
        awaitBarrier(20);
        SaveHandle next = cluster.agent(1).save(30, s -> { }); // skips step 20: the save of step 20 aborts (STEP_MISMATCH)
        // wait on the callback's own future first: a thread blocked in the handle's get() may itself
        // run the dependents of the future it waits on when it wakes (CompletableFuture helps complete)
        assertEventsThreadOfWorker0(abortedOn.get(20, TimeUnit.SECONDS));
        assertThatThrownBy(() -> aborted.await(WAIT)).isInstanceOf(SaveAbortedException.class).hasMessageContaining("STEP_MISMATCH");
        awaitAll(List.of(next, cluster.agent(0).save(30, s -> { })));
    }

    private static void assertEventsThreadOfWorker0(Thread t) {
        assertThat(t).isNotInstanceOf(io.netty.util.concurrent.FastThreadLocalThread.class);
        assertThat(t.getName()).isEqualTo("cairn-agent-events-0");
    }

    /** Waits until the coordinator reports a barrier open at {@code step} (admin API). */
    private void awaitBarrier(long step) {
        ManagedChannel ch = ManagedChannelBuilder.forAddress("127.0.0.1", cluster.coordinator.port()).usePlaintext().build();
        try {
            var admin = AdminServiceGrpc.newBlockingStub(ch);
            await().atMost(WAIT).until(() -> {
                var s = admin.withDeadlineAfter(5, TimeUnit.SECONDS).status(StatusRequest.getDefaultInstance());
                return s.getInFlightPhase().equals("BARRIER") && s.getInFlightStep() == step;
            });
        } finally {
            ch.shutdownNow();
        }
    }

    @Test
    void isSaveDueFollowsSaveEveryStepsAndTriggers() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b.saveEverySteps(5)).connectAll();
        CairnAgent a = cluster.agent(0);

        assertThat(a.isSaveDue(4)).isFalse();
        assertThat(a.isSaveDue(5)).isTrue();
        assertThat(a.isSaveDue(6)).isFalse();
        assertThat(a.isSaveDue(10)).isTrue();

        awaitAll(cluster.saveAll(10, w -> trainerState(w, 10, 10)));
        assertThat(a.isSaveDue(10)).as("already saved").isFalse();

        // no worker is past step 10: the operator's target lies after it and every agent hears of it
        long target = cluster.coordinator.triggerSave("test");
        assertThat(target).isGreaterThan(10);
        await().atMost(WAIT).until(() -> a.isSaveDue(target));
        await().atMost(WAIT).until(() -> cluster.agent(1).isSaveDue(target));
        awaitAll(cluster.saveAll(target, w -> trainerState(w, target, 10)));
        assertThat(a.isSaveDue(target)).isFalse();
        long nextMultiple = (target / 5 + 1) * 5;
        assertThat(a.isSaveDue(nextMultiple)).isTrue();
    }

    @Test
    void closeWaitsForTheUploadInFlightAndItsCommit() throws Exception {
        CountDownLatch uploadMayStart = new CountDownLatch(1);
        CountDownLatch uploadStarted = new CountDownLatch(1);
        AgentHooks slow = new AgentHooks() {
            @Override
            public void onPhase(Phase phase, long step) {
                if (phase == Phase.UPLOAD_STARTED) {
                    uploadStarted.countDown();
                    try {
                        uploadMayStart.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        };
        cluster = TestCluster.start(storage, 2, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).hooks(i == 0 ? slow : AgentHooks.NONE).build());
        List<SaveHandle> handles = cluster.saveAll(10, w -> trainerState(w, 10, 4000));
        assertThat(uploadStarted.await(20, TimeUnit.SECONDS)).isTrue();

        CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> cluster.agent(0).close());
        assertThat(closing).as("close() waits while the upload is held").isNotDone();
        assertThat(committedSteps()).isEmpty();
        uploadMayStart.countDown();
        closing.get(30, TimeUnit.SECONDS);

        assertThat(handles.get(0).committed()).isCompleted();
        assertThat(handles.get(0).await(Duration.ZERO).saveId()).isEqualTo(manifest(10).saveId());
        assertThat(committedSteps()).containsExactly(10L);
        assertThat(Files.exists(storage.resolve(Layout.manifestKey(10)))).isTrue();
    }

    @Test
    void closeWaitsForASaveStillInItsBarrierToUploadAndCommit() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b).connectAll();
        SaveHandle first = cluster.agent(0).save(10, trainerState(0, 10, 3000));
        awaitBarrier(10);

        // worker 1 has not prepared: the save cannot be released, so close() must still be waiting
        CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> cluster.agent(0).close());
        assertThat(closing).as("close() waits for the save at the barrier").isNotDone();
        SaveHandle second = cluster.agent(1).save(10, trainerState(1, 10, 3000));
        closing.get(30, TimeUnit.SECONDS);

        assertThat(first.committed()).isCompleted();
        awaitAll(List.of(first, second));
        assertThat(manifest(10).shards()).hasSize(2);
    }

    @Test
    void connectWithATakenIndexIsBadInputNamingTheProblem() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b);
        cluster.agents.add(CairnAgent.connect(cluster.agentConfig(0).build()));

        assertThatThrownBy(() -> CairnAgent.connect(cluster.agentConfig(0).build()))
                .isInstanceOfSatisfying(AgentException.class, e -> {
                    assertThat(e.badInput()).isTrue();
                    assertThat(e).hasMessageContaining("worker 0 could not join").hasMessageContaining("already joined");
                });
    }

    @Test
    void connectWithAnIndexOutsideTheWorldIsBadInputNamingTheProblem() throws Exception {
        cluster = TestCluster.start(storage, 2, b -> b);
        String address = "127.0.0.1:" + cluster.coordinator.port();

        // the agent refuses an index outside its own world before it connects
        assertThatThrownBy(() -> AgentConfig.builder(address, TestCluster.RUN, 2, 2).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("worker index 2 is outside the world size 2");
        // an index inside the agent's world but outside the coordinator's is refused by the coordinator
        assertThatThrownBy(() -> CairnAgent.connect(AgentConfig.builder(address, TestCluster.RUN, 2, 3)
                        .connectTimeout(Duration.ofSeconds(10)).build()))
                .isInstanceOfSatisfying(AgentException.class, e -> {
                    assertThat(e.badInput()).isTrue();
                    assertThat(e).hasMessageContaining("world size");
                });
        assertThatThrownBy(() -> CairnAgent.connect(AgentConfig.builder(address, "other-run", 0, 2)
                        .connectTimeout(Duration.ofSeconds(10)).build()))
                .isInstanceOfSatisfying(AgentException.class, e -> {
                    assertThat(e.badInput()).isTrue();
                    assertThat(e).hasMessageContaining("'other-run'");
                });
        assertThat(cluster.coordinator.connectedWorkers()).isEmpty();
    }
}
