package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two ranks in one process: a rank that finished its copy must not start uploading into the copy of
 * a rank whose prepare released the barrier but which has not built its snapshot yet (the trainer
 * thread was descheduled right after sending the prepare, which on 2 cores is common).
 */
class SnapshotGateTest {
    @TempDir
    Path storage;

    private TestCluster cluster;

    @AfterEach
    void close() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void aSealedRanksUploadWaitsForARankWhosePrepareIsSentButWhoseSnapshotIsNotBuiltYet() throws Exception {
        CountDownLatch rank1Prepared = new CountDownLatch(1);
        CountDownLatch letRank1Stage = new CountDownLatch(1);
        AtomicBoolean rank1Staging = new AtomicBoolean();
        AtomicReference<Boolean> rank1WasStagingWhenRank0Uploaded = new AtomicReference<>();
        CountDownLatch rank0Uploading = new CountDownLatch(1);
        cluster = TestCluster.start(storage, 2, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).hooks(new AgentHooks() {
            @Override
            public void onPhase(Phase phase, long step) {
                if (i == 1 && phase == Phase.PREPARED) {
                    // the prepare has left, the StagedShard does not exist yet: hold the trainer here
                    rank1Prepared.countDown();
                    await(letRank1Stage);
                    rank1Staging.set(true);
                }
                if (i == 0 && phase == Phase.UPLOAD_HALFWAY) { // bytes flow: past the gate
                    rank1WasStagingWhenRank0Uploaded.compareAndSet(null, rank1Staging.get());
                    rank0Uploading.countDown();
                }
            }
        }).build());

        SaveHandle rank0 = cluster.agent(0).save(10, snap -> snap.put("w", new byte[64 << 10]));
        Thread trainer1 = new Thread(() -> {
            try {
                cluster.agent(1).save(10, snap -> snap.put("w", new byte[64 << 10]));
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, "trainer-1");
        trainer1.start();
        assertThat(rank1Prepared.await(10, TimeUnit.SECONDS)).isTrue();
        // the barrier releases both ranks now; without the gate claim rank 0 would upload at once
        boolean startedEarly = rank0Uploading.await(500, TimeUnit.MILLISECONDS);
        letRank1Stage.countDown();
        trainer1.join(10_000);
        rank0.await(Duration.ofSeconds(20));

        assertThat(startedEarly).as("rank 0 uploaded while rank 1 had not staged its snapshot").isFalse();
        assertThat(rank1WasStagingWhenRank0Uploaded.get()).isTrue();
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
