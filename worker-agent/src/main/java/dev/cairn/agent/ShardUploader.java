package dev.cairn.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.UploadFailed;
import dev.cairn.protocol.SaveOutcome;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Layout;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's upload thread: takes a save when the barrier releases it (not at {@code save()}: it
 * would only wake to wait), streams its staged shard to storage through a {@link ShardWriter} and
 * reports it to the coordinator. Saves upload in order, one at a time.
 */
final class ShardUploader {
    private static final Logger LOG = LoggerFactory.getLogger(ShardUploader.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Opens the agent's store on first use. */
    interface StoreSupplier {
        CheckpointStore get() throws IOException;
    }

    private final AgentConfig config;
    private final CoordinatorSession session;
    private final SaveTracker tracker;
    private final StoreSupplier store;
    private final AgentMetrics metrics;
    private final ExecutorService thread;

    ShardUploader(AgentConfig config, CoordinatorSession session, SaveTracker tracker, StoreSupplier store, AgentMetrics metrics) {
        this.metrics = metrics;
        this.config = config;
        this.session = session;
        this.tracker = tracker;
        this.store = store;
        this.thread = Executors.newSingleThreadExecutor(r -> CairnAgent.daemon(r, "cairn-upload-" + config.workerIndex()));
    }

    /** Hands {@code shard} to the upload thread when {@code ps}'s release completes (or fails). */
    void uploadAtRelease(PendingSave ps, StagedShard shard) {
        ps.release.whenComplete((r, err) -> queue(ps, shard));
    }

    /** Called where the release future completes (usually the network thread): must not block. */
    private void queue(PendingSave ps, StagedShard shard) {
        try {
            thread.execute(() -> upload(ps, shard));
        } catch (RejectedExecutionException e) {
            // the agent was shut down after close() gave up waiting: nothing uploads any more
            LOG.debug("worker {}: upload of step {} not started: agent closed", config.workerIndex(), ps.step);
        } finally {
            ps.uploadQueued.complete(null);
        }
    }

    private void upload(PendingSave ps, StagedShard shard) {
        Release release;
        try {
            release = ps.release.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        } catch (ExecutionException e) {
            drain(shard);
            return;
        }
        config.hooks().onPhase(AgentHooks.Phase.UPLOAD_STARTED, ps.step);
        long start = System.nanoTime();
        String key = Layout.shardKey(release.getSaveId(), config.workerIndex());
        try {
            ShardWriter sw = new ShardWriter(shard, store, key, config.workerIndex(), config.worldSize(), config.hooks());
            if (!sw.run(ps)) {
                return;
            }
            config.hooks().onPhase(AgentHooks.Phase.SHARD_DURABLE, ps.step);
            metrics.uploaded(sw.objectBytes(), System.nanoTime() - start);
            ShardReport.Builder report = ShardReport.newBuilder()
                    .setSaveId(release.getSaveId())
                    .setStep(ps.step)
                    .setObjectKey(sw.objectBytes() > 0 ? key : "")
                    .setLength(sw.objectBytes())
                    .setCrc32C(sw.objectCrc())
                    .addAllEntries(sw.entries())
                    .setStallMicros(ps.stallMicros)
                    .setUploadMicros((System.nanoTime() - start) / 1000);
            Map<String, Object> metadata = shard.metadata();
            if (!metadata.isEmpty()) {
                report.setMetadataJson(JSON.writeValueAsString(metadata));
            }
            session.send(AgentMessage.newBuilder().setShardReport(report).build());
            config.hooks().onPhase(AgentHooks.Phase.REPORTED, ps.step);
        } catch (IOException | RuntimeException | Error e) {
            // an Error too (an OutOfMemoryError from a store's part buffers, say): a silently dead upload
            // would hold the save open until the coordinator's upload deadline
            LOG.warn("worker {}: upload of save {} to {} failed: {}", config.workerIndex(), release.getSaveId(), key, e.toString());
            String why = e.getMessage() == null ? e.toString() : e.getMessage();
            session.send(AgentMessage.newBuilder().setUploadFailed(UploadFailed.newBuilder().setSaveId(release.getSaveId())
                    .setStep(ps.step).setMessage(why)).build());
            tracker.failNow(ps, new SaveAbortedException(ps.step, SaveOutcome.UPLOAD_FAILED, String.valueOf(e.getMessage())));
            drain(shard);
            if (e instanceof Error err && !(err instanceof OutOfMemoryError)) {
                throw err; // reported; the executor replaces the thread, the uncaught handler logs it
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void drain(StagedShard shard) {
        try {
            shard.drainToEnd();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Lets queued uploads finish, waiting up to {@code seconds}. */
    void finish(long seconds) throws InterruptedException {
        thread.shutdown();
        thread.awaitTermination(seconds, TimeUnit.SECONDS);
    }

    void shutdownNow() {
        thread.shutdownNow();
    }
}
