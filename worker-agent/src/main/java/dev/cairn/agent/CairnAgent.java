package dev.cairn.agent;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Heartbeat;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.PreemptionNotice;
import dev.cairn.proto.v1.Prepare;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.UploadFailed;
import dev.cairn.proto.v1.Welcome;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A training worker's side of Cairn. Typical use:
 *
 * <pre>{@code
 * try (CairnAgent agent = CairnAgent.connect(AgentConfig.builder("chief:7400", "run-1", rank, world).build())) {
 *     long step = agent.restoreLatest().map(r -> load(r)).orElse(0L);
 *     while (step < total) {
 *         train(++step);
 *         if (agent.isSaveDue(step)) {
 *             agent.save(step, snap -> { snap.put("model/w", weights); snap.metadata("loss", loss); });
 *         }
 *     }
 * }   // close() waits for uploads in flight
 * }</pre>
 *
 * <p>{@link #save} blocks only while the state is copied into bounded staging memory; the barrier,
 * the upload (streamed, CRC32C computed on the way) and the commit happen in the background and are
 * observed through the returned {@link SaveHandle}. An aborted save never stops training. When the
 * coordinator connection breaks, saves in flight fail and the agent reconnects with backoff.
 */
public final class CairnAgent implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CairnAgent.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String VERSION = "0.1.0";

    private final AgentConfig config;
    private final ManagedChannel channel;
    private final StagingPool pool;
    private final ScheduledExecutorService scheduler;
    private final ExecutorService uploader;
    /**
     * Completes the futures users chain callbacks on. Inbound messages are handled on the channel's
     * network thread (no hop through gRPC's default executor), and a user's callback must never run
     * there: it could block every connection of that event loop.
     */
    private final ExecutorService events;
    private final Object heartbeatLock = new Object();
    private final Map<Long, PendingSave> pending = new ConcurrentHashMap<>();
    private final Object sendLock = new Object();
    private final Object commitLock = new Object();

    private StreamObserver<AgentMessage> out;
    private volatile Welcome welcome;
    private volatile CompletableFuture<Welcome> joined;
    private volatile boolean connected;
    private volatile boolean closed;
    private volatile long currentStep = -1;
    private volatile long targetStep = -1;
    private volatile long lastSaveStep = -1;
    private long lastCommittedStep = -1;
    private ScheduledFuture<?> heartbeat;
    private CheckpointStore store;
    private long reconnectDelayMillis = 100;

    private CairnAgent(AgentConfig config) {
        this.config = config;
        String[] hostPort = config.coordinator().split(":");
        this.channel = NettyChannelBuilder.forAddress(hostPort[0], Integer.parseInt(hostPort[1]))
                .usePlaintext()
                .keepAliveTime(2, TimeUnit.SECONDS)
                .keepAliveTimeout(2, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true)
                .maxInboundMessageSize(64 << 20)
                // Inbound only updates state and completes internal futures (a Release wakes the upload
                // thread directly); the futures users see are completed on the events thread.
                .directExecutor()
                .build();
        this.pool = new StagingPool(config.stagingBytes(), config.chunkBytes());
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "cairn-agent-" + config.workerIndex()));
        this.uploader = Executors.newSingleThreadExecutor(r -> daemon(r, "cairn-upload-" + config.workerIndex()));
        this.events = Executors.newSingleThreadExecutor(r -> daemon(r, "cairn-agent-events-" + config.workerIndex()));
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * Joins the coordinator and waits for its welcome.
     *
     * @throws AgentException when the coordinator rejects the worker (wrong index, world size, run
     *     id, token; the index is taken) or does not answer within the connect timeout
     */
    public static CairnAgent connect(AgentConfig config) throws AgentException {
        CairnAgent agent = new CairnAgent(config);
        try {
            agent.openSession().get(config.connectTimeout().toMillis(), TimeUnit.MILLISECONDS);
            return agent;
        } catch (ExecutionException e) {
            agent.shutdownNow();
            Status status = Status.fromThrowable(e.getCause());
            boolean bad = switch (status.getCode()) {
                case INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, PERMISSION_DENIED -> true;
                default -> false;
            };
            String why = status.getDescription() != null ? status.getDescription() : status.getCode().toString();
            throw new AgentException("worker " + config.workerIndex() + " could not join coordinator " + config.coordinator() + ": " + why, bad, e.getCause());
        } catch (TimeoutException e) {
            agent.shutdownNow();
            throw new AgentException("worker " + config.workerIndex() + " got no answer from coordinator " + config.coordinator()
                    + " within " + config.connectTimeout().toSeconds() + " s", false, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            agent.shutdownNow();
            throw new AgentException("interrupted while joining " + config.coordinator(), false, e);
        }
    }

    // ------------------------------------------------------------------ session

    private CompletableFuture<Welcome> openSession() {
        CompletableFuture<Welcome> future = new CompletableFuture<>();
        joined = future;
        StreamObserver<AgentMessage> stream = WorkerSessionServiceGrpc.newStub(channel).session(new Inbound(future));
        synchronized (sendLock) {
            out = stream;
            stream.onNext(AgentMessage.newBuilder().setJoin(Join.newBuilder()
                    .setRunId(config.runId())
                    .setWorkerIndex(config.workerIndex())
                    .setWorldSize(config.worldSize())
                    .setAgentVersion(VERSION)
                    .setToken(config.token())).build());
        }
        return future;
    }

    private final class Inbound implements StreamObserver<CoordinatorMessage> {
        private final CompletableFuture<Welcome> joinFuture;

        Inbound(CompletableFuture<Welcome> joinFuture) {
            this.joinFuture = joinFuture;
        }

        @Override
        public void onNext(CoordinatorMessage msg) {
            switch (msg.getKindCase()) {
                case WELCOME -> onWelcome(msg.getWelcome(), joinFuture);
                case SAVE_TARGET -> {
                    targetStep = msg.getSaveTarget().getStep();
                    LOG.info("worker {}: coordinator asks for a save at step {} ({})", config.workerIndex(),
                            targetStep, msg.getSaveTarget().getReason());
                    if (currentStep >= targetStep) {
                        // already past it: tell the coordinator now so it picks a new target at once
                        send(AgentMessage.newBuilder().setHeartbeat(Heartbeat.newBuilder().setStep(currentStep)).build());
                    }
                }
                case RELEASE -> {
                    Release r = msg.getRelease();
                    PendingSave ps = pending.get(r.getStep());
                    if (ps != null) {
                        ps.saveId = r.getSaveId();
                        ps.release.complete(r);
                    }
                }
                case COMMITTED -> onCommitted(msg.getCommitted().getCheckpoint());
                case ABORTED -> {
                    var a = msg.getAborted();
                    PendingSave ps = pending.get(a.getStep());
                    if (ps != null && (a.getSaveId().isEmpty() || ps.saveId == null || a.getSaveId().equals(ps.saveId))) {
                        pending.remove(a.getStep(), ps);
                        failOffNetworkThread(ps, new SaveAbortedException(a.getStep(), a.getReason().name(), a.getMessage()));
                        LOG.warn("worker {}: save of step {} aborted: {}: {}", config.workerIndex(), a.getStep(), a.getReason(), a.getMessage());
                    }
                }
                default -> LOG.warn("worker {}: unknown message from coordinator {}", config.workerIndex(), config.coordinator());
            }
        }

        @Override
        public void onError(Throwable t) {
            ended(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            ended(Status.UNAVAILABLE.withDescription("coordinator closed the session"));
        }

        private void ended(Status status) {
            if (!joinFuture.isDone()) {
                joinFuture.completeExceptionally(status.asRuntimeException());
            }
            boolean wasConnected = connected;
            connected = false;
            stopHeartbeat();
            failAllPending("COORDINATOR_LOST", "connection to coordinator " + config.coordinator() + " lost: " + status);
            if (wasConnected && !closed) {
                LOG.warn("worker {}: lost coordinator {} ({}); reconnecting", config.workerIndex(), config.coordinator(), status);
                scheduleReconnect();
            } else if (!closed && welcome != null) {
                scheduleReconnect();
            }
        }
    }

    private void onWelcome(Welcome w, CompletableFuture<Welcome> joinFuture) {
        welcome = w;
        connected = true;
        reconnectDelayMillis = 100;
        synchronized (commitLock) {
            if (w.hasLatest()) {
                lastCommittedStep = Math.max(lastCommittedStep, w.getLatest().getStep());
            }
        }
        long interval = Math.max(50, w.getHeartbeatIntervalMillis());
        synchronized (heartbeatLock) {
            if (!closed) {
                heartbeat = scheduler.scheduleWithFixedDelay(
                        () -> send(AgentMessage.newBuilder().setHeartbeat(Heartbeat.newBuilder().setStep(currentStep)).build()),
                        0, interval, TimeUnit.MILLISECONDS);
            }
        }
        LOG.info("worker {} joined run {} (world size {}), latest checkpoint: {}", config.workerIndex(), w.getRunId(), w.getWorldSize(),
                w.hasLatest() ? "step " + w.getLatest().getStep() : "none");
        joinFuture.complete(w);
    }

    private void stopHeartbeat() {
        synchronized (heartbeatLock) {
            if (heartbeat != null) {
                heartbeat.cancel(false);
                heartbeat = null;
            }
        }
    }

    private void scheduleReconnect() {
        long delay = reconnectDelayMillis;
        reconnectDelayMillis = Math.min(5_000, reconnectDelayMillis * 2);
        try {
            scheduler.schedule(() -> {
                if (!closed) {
                    openSession();
                }
            }, delay, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // closing
        }
    }

    private boolean send(AgentMessage msg) {
        synchronized (sendLock) {
            if (out == null || closed && !msg.hasShardReport()) {
                return false;
            }
            try {
                out.onNext(msg);
                return true;
            } catch (RuntimeException e) {
                LOG.debug("worker {}: send failed: {}", config.workerIndex(), e.toString());
                return false;
            }
        }
    }

    private void onCommitted(CheckpointRef ref) {
        PendingSave ps = pending.remove(ref.getStep());
        if (ps != null) {
            SavedCheckpoint saved = new SavedCheckpoint(ref.getStep(), ref.getSaveId(), ref.getManifestKey());
            offNetworkThread(() -> ps.committed.complete(saved));
        }
        synchronized (commitLock) {
            lastCommittedStep = Math.max(lastCommittedStep, ref.getStep());
            commitLock.notifyAll();
        }
    }

    private void failAllPending(String reason, String message) {
        for (Map.Entry<Long, PendingSave> e : pending.entrySet()) {
            if (pending.remove(e.getKey(), e.getValue())) {
                failOffNetworkThread(e.getValue(), new SaveAbortedException(e.getKey(), reason, message));
            }
        }
    }

    /**
     * Fails a save from the network thread: the upload thread learns it at once, the handle's future
     * (users' callbacks) on the events thread.
     */
    private void failOffNetworkThread(PendingSave ps, Throwable t) {
        ps.release.completeExceptionally(t);
        offNetworkThread(() -> ps.committed.completeExceptionally(t));
    }

    /** Runs {@code task} on the events thread, or in place when that thread is gone. */
    private void offNetworkThread(Runnable task) {
        try {
            events.execute(task);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // shut down: nothing the user chained can still be waited for by this agent; complete in place
            task.run();
        }
    }

    // ------------------------------------------------------------------ restore and policy

    public int workerIndex() {
        return config.workerIndex();
    }

    public int worldSize() {
        return config.worldSize();
    }

    /**
     * Opens the checkpoint the coordinator chose for every worker (the newest committed one at
     * join time), or empty when the run has none. Later saves must use steps after it.
     *
     * @throws ManifestException when its manifest does not validate
     */
    public Optional<RestoredCheckpoint> restoreLatest() throws IOException {
        Welcome w = welcome;
        if (!w.hasLatest()) {
            return Optional.empty();
        }
        CheckpointCatalog catalog = new CheckpointCatalog(store());
        Manifest m = catalog.read(w.getLatest().getStep());
        if (!m.saveId().equals(w.getLatest().getSaveId())) {
            throw new ManifestException("manifest " + store().uri().resolve(Layout.manifestKey(m.step())) + " names save " + m.saveId()
                    + " but the coordinator announced " + w.getLatest().getSaveId());
        }
        lastSaveStep = Math.max(lastSaveStep, m.step());
        noteStep(m.step());
        return Optional.of(new RestoredCheckpoint(catalog, m, config.workerIndex()));
    }

    private synchronized CheckpointStore store() throws IOException {
        if (store == null) {
            String uri = config.storageOverride() != null ? config.storageOverride() : welcome.getStorageUri();
            store = CheckpointStores.open(StorageUri.parse(uri), false);
        }
        return store;
    }

    /**
     * Records the trainer's progress and says whether a save is due at {@code step}: at every
     * multiple of the coordinator's save-every-steps, or at the step the coordinator asked for
     * (time policy, operator trigger, preemption). Cheap: no I/O.
     */
    public boolean isSaveDue(long step) {
        noteStep(step);
        if (step <= lastSaveStep) {
            return false;
        }
        Welcome w = welcome;
        long every = w == null ? 0 : w.getSaveEverySteps();
        return (every > 0 && step % every == 0) || step == targetStep;
    }

    private void noteStep(long step) {
        if (step > currentStep) {
            currentStep = step;
        }
    }

    // ------------------------------------------------------------------ save

    private static final class PendingSave {
        final long step;
        final CompletableFuture<Release> release = new CompletableFuture<>();
        final CompletableFuture<SavedCheckpoint> committed = new CompletableFuture<>();
        /** Completes once this save's upload (or drain) task is queued on the upload thread. */
        final CompletableFuture<Void> uploadQueued = new CompletableFuture<>();
        volatile String saveId;
        volatile long stallMicros;

        PendingSave(long step) {
            this.step = step;
        }

        void fail(Throwable t) {
            release.completeExceptionally(t);
            committed.completeExceptionally(t);
        }

        boolean aborted() {
            return release.isCompletedExceptionally() || committed.isCompletedExceptionally();
        }
    }

    /**
     * Saves the trainer's state at {@code step}. Returns once {@code writer} has copied everything
     * into staging memory (or, for state larger than the staging budget, once the part beyond it has
     * been uploaded); the rest happens in the background.
     *
     * @throws IllegalArgumentException for a step not after the last save or restore, or an invalid
     *     or repeated entry name (the save is aborted for every worker)
     */
    public SaveHandle save(long step, SnapshotWriter writer) throws IOException {
        if (closed) {
            throw new IllegalStateException("agent of worker " + config.workerIndex() + " is closed");
        }
        if (step <= lastSaveStep) {
            throw new IllegalArgumentException("worker " + config.workerIndex() + ": save steps must increase; step " + step
                    + " is not after " + lastSaveStep);
        }
        noteStep(step);
        long start = System.nanoTime();
        PendingSave ps = new PendingSave(step);
        pending.put(step, ps);
        lastSaveStep = step;
        if (targetStep == step) {
            targetStep = -1;
        }
        if (!connected || !send(AgentMessage.newBuilder().setPrepare(Prepare.newBuilder().setStep(step)).build())) {
            pending.remove(step, ps);
            ps.uploadQueued.complete(null);
            ps.fail(new SaveAbortedException(step, "COORDINATOR_LOST", "not connected to coordinator " + config.coordinator()));
            return new SaveHandle(step, 0, ps.committed);
        }
        config.hooks().onPhase(AgentHooks.Phase.PREPARED, step);
        StagedShard shard = new StagedShard(pool, step);
        // The upload thread is handed this save when the barrier releases it (or it fails), not now:
        // it would only wake to wait for the release. Releases come in save order (one save in flight).
        ps.release.whenComplete((r, err) -> queueUpload(ps, shard));
        try {
            writer.write(shard);
        } catch (IOException | RuntimeException e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage();
            send(AgentMessage.newBuilder().setUploadFailed(UploadFailed.newBuilder().setStep(step).setMessage("snapshot failed: " + why)).build());
            pending.remove(step, ps);
            ps.fail(new SaveAbortedException(step, "SNAPSHOT_FAILED", why));
            throw e;
        } finally {
            shard.seal();
        }
        ps.stallMicros = (System.nanoTime() - start) / 1000;
        config.hooks().onPhase(AgentHooks.Phase.SNAPSHOT_DONE, step);
        return new SaveHandle(step, ps.stallMicros, ps.committed);
    }

    /** Called where the release future completes (usually the network thread): must not block. */
    private void queueUpload(PendingSave ps, StagedShard shard) {
        try {
            uploader.execute(() -> upload(ps, shard));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // the agent was shut down after close() gave up waiting: nothing uploads any more
            LOG.debug("worker {}: upload of step {} not started: agent closed", config.workerIndex(), ps.step);
        } finally {
            ps.uploadQueued.complete(null);
        }
    }

    /** Upload thread: takes the barrier's release, streams the staged shard, reports it. */
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
        boolean writesReplicated = release.getReplicatedWriter() == config.workerIndex();
        ShardWriter sw = new ShardWriter(shard, key, writesReplicated);
        try {
            boolean complete = sw.run(ps);
            if (!complete) {
                return;
            }
            config.hooks().onPhase(AgentHooks.Phase.SHARD_DURABLE, ps.step);
            ShardReport.Builder report = ShardReport.newBuilder()
                    .setSaveId(release.getSaveId())
                    .setStep(ps.step)
                    .setObjectKey(sw.objectBytes > 0 ? key : "")
                    .setLength(sw.objectBytes)
                    .setCrc32C(sw.objectCrc)
                    .addAllEntries(sw.infos)
                    .setStallMicros(ps.stallMicros)
                    .setUploadMicros((System.nanoTime() - start) / 1000);
            Map<String, Object> metadata = shard.metadata();
            if (!metadata.isEmpty()) {
                report.setMetadataJson(JSON.writeValueAsString(metadata));
            }
            send(AgentMessage.newBuilder().setShardReport(report).build());
            config.hooks().onPhase(AgentHooks.Phase.REPORTED, ps.step);
        } catch (IOException | RuntimeException | Error e) {
            // an Error too (an OutOfMemoryError from a store's part buffers, say): a silently dead upload
            // would hold the save open until the coordinator's upload deadline
            LOG.warn("worker {}: upload of save {} to {} failed: {}", config.workerIndex(), release.getSaveId(), key, e.toString());
            send(AgentMessage.newBuilder().setUploadFailed(UploadFailed.newBuilder().setSaveId(release.getSaveId())
                    .setStep(ps.step).setMessage(e.getMessage() == null ? e.toString() : e.getMessage())).build());
            pending.remove(ps.step, ps);
            ps.fail(new SaveAbortedException(ps.step, "UPLOAD_FAILED", String.valueOf(e.getMessage())));
            drain(shard);
            if (e instanceof Error err && !(err instanceof OutOfMemoryError)) {
                throw err; // reported; the executor replaces the thread, the uncaught handler logs it
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void drain(StagedShard shard) {
        try {
            shard.drainToEnd();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Streams staged chunks into one object, skipping replicated entries this worker does not write. */
    private final class ShardWriter {
        final StagedShard shard;
        final String key;
        final boolean writesReplicated;
        /** Derived from the entries' CRCs: every byte is checksummed once, per entry. */
        int objectCrc;
        final CRC32C entryCrc = new CRC32C();
        final List<EntryInfo> infos = new ArrayList<>();
        ObjectWriter out;
        long objectBytes;
        int index = -1;
        int finished = -1;
        long remaining;
        long entryStart;
        boolean include;
        boolean halfwaySignalled;

        ShardWriter(StagedShard shard, String key, boolean writesReplicated) {
            this.shard = shard;
            this.key = key;
            this.writesReplicated = writesReplicated;
        }

        /** Returns false when the save was aborted meanwhile (nothing committed). */
        boolean run(PendingSave ps) throws IOException, InterruptedException {
            try {
                StagedShard.Chunk chunk;
                while ((chunk = shard.take()) != StagedShard.END) {
                    try {
                        if (ps.aborted()) {
                            // the chunk goes back in the finally below: releasing it here too put one
                            // buffer twice in the pool, so two later chunks shared (and overwrote) memory
                            discard();
                            drain(shard);
                            return false;
                        }
                        consume(chunk);
                    } finally {
                        shard.release(chunk);
                    }
                    if (!halfwaySignalled && objectBytes * 2 >= shard.stagedBytes() && objectBytes > 0) {
                        halfwaySignalled = true;
                        config.hooks().onPhase(AgentHooks.Phase.UPLOAD_HALFWAY, ps.step);
                    }
                }
                while (index + 1 < shard.entryCount()) {
                    next();
                }
                finish();
                if (!halfwaySignalled) {
                    config.hooks().onPhase(AgentHooks.Phase.UPLOAD_HALFWAY, ps.step);
                }
                if (ps.aborted()) {
                    discard();
                    return false;
                }
                if (out != null) {
                    out.commit();
                }
                return true;
            } finally {
                discard();
            }
        }

        private void consume(StagedShard.Chunk chunk) throws IOException {
            ByteBuffer data = chunk.data();
            int p = 0;
            while (p < chunk.length()) {
                while (remaining == 0) {
                    next();
                }
                int n = (int) Math.min(remaining, chunk.length() - p);
                if (include) {
                    if (out == null) {
                        out = store().create(key);
                    }
                    entryCrc.update(data.limit(p + n).position(p));
                    out.write(data.limit(p + n).position(p));
                    objectBytes += n;
                }
                p += n;
                remaining -= n;
            }
        }

        private void next() {
            finish();
            index++;
            StagedShard.StagedEntry e = shard.entry(index);
            remaining = e.length();
            include = !e.replicated() || writesReplicated;
            entryStart = objectBytes;
            entryCrc.reset();
        }

        private void finish() {
            if (index < 0 || finished == index) {
                return;
            }
            finished = index;
            StagedShard.StagedEntry e = shard.entry(index);
            if (include) {
                int crc = (int) entryCrc.getValue();
                objectCrc = Crc32cCombine.combine(objectCrc, crc, e.length());
                infos.add(EntryInfo.newBuilder().setName(e.name()).setOffset(entryStart).setLength(e.length())
                        .setCrc32C(crc).setReplicated(e.replicated()).build());
            }
        }

        private void discard() {
            if (out != null) {
                try {
                    out.close();
                } catch (IOException e) {
                    LOG.debug("discarding {}: {}", key, e.toString());
                }
            }
        }
    }

    // ------------------------------------------------------------------ preemption and close

    /**
     * On SIGTERM (a preemption notice), asks the coordinator for an emergency save at the next step
     * boundary and holds JVM shutdown until it commits or {@code grace} passes. The training loop
     * must keep calling {@link #isSaveDue} and {@link #save} meanwhile, as it does.
     */
    public void installPreemptionHook(Duration grace) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (closed || !connected) {
                return;
            }
            long step = currentStep;
            LOG.warn("worker {}: preemption signal at step {}; asking for an emergency save", config.workerIndex(), step);
            send(AgentMessage.newBuilder().setPreemption(PreemptionNotice.newBuilder().setStep(step)).build());
            long deadline = System.nanoTime() + grace.toNanos();
            synchronized (commitLock) {
                while (lastCommittedStep <= step && System.nanoTime() < deadline) {
                    try {
                        commitLock.wait(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
        }, "cairn-preemption-" + config.workerIndex()));
    }

    /** The step of the newest checkpoint this agent knows to be committed, or -1. */
    public long lastCommittedStep() {
        synchronized (commitLock) {
            return lastCommittedStep;
        }
    }

    /** Peak staging memory in use so far, in bytes. */
    public long peakStagingBytes() {
        return pool.peakBytes();
    }

    /**
     * Waits (up to 60 s) for uploads in flight and their commits, then leaves the run. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            // a save still in its barrier has no upload task yet: wait until it is queued (or failed)
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            for (PendingSave ps : List.copyOf(pending.values())) {
                try {
                    ps.uploadQueued.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (ExecutionException | TimeoutException e) {
                    // closing anyway
                }
            }
            uploader.shutdown();
            uploader.awaitTermination(60, TimeUnit.SECONDS);
            for (PendingSave ps : List.copyOf(pending.values())) {
                try {
                    ps.committed.get(30, TimeUnit.SECONDS);
                } catch (ExecutionException | TimeoutException e) {
                    // reported through the save's handle
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closed = true;
        stopHeartbeat();
        synchronized (sendLock) {
            if (out != null) {
                try {
                    out.onCompleted();
                } catch (RuntimeException e) {
                    LOG.debug("completing session: {}", e.toString());
                }
            }
        }
        shutdownNow();
    }

    private void shutdownNow() {
        closed = true;
        scheduler.shutdownNow();
        uploader.shutdownNow();
        channel.shutdown();
        try {
            if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
                channel.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            channel.shutdownNow();
        }
        // after the channel: completions its last inbound messages queued still run
        events.shutdown();
        synchronized (this) {
            if (store != null) {
                try {
                    store.close();
                } catch (IOException e) {
                    LOG.debug("closing store: {}", e.toString());
                }
            }
        }
    }

    static String json(Object o) throws JsonProcessingException {
        return JSON.writeValueAsString(o);
    }
}
