package dev.cairn.agent;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.PreemptionNotice;
import dev.cairn.proto.v1.Prepare;
import dev.cairn.proto.v1.Welcome;
import dev.cairn.protocol.SaveOutcome;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.StorageUri;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
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
 *
 * <p>Inside, a facade over a {@link CoordinatorSession} (stream, join, heartbeats, reconnects), a
 * {@link SaveTracker} (saves in flight and their futures) and a {@link ShardUploader} (the upload
 * thread).
 */
public final class CairnAgent implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CairnAgent.class);
    public static final String VERSION = "0.1.0";

    private final AgentConfig config;
    /** The channel this agent built and must shut down, or null when it was handed one. */
    private final ManagedChannel ownedChannel;
    private final StagingPool pool;
    private final AgentMetrics metrics;
    private final SaveTracker tracker;
    private final CoordinatorSession session;
    private final ShardUploader uploader;

    private volatile boolean closed;
    private volatile long lastSaveStep = -1;
    private CheckpointStore store;

    private CairnAgent(AgentConfig config, Channel channel, ManagedChannel ownedChannel) {
        this.config = config;
        this.ownedChannel = ownedChannel;
        this.pool = new StagingPool(config.stagingBytes(), config.chunkBytes());
        this.metrics = new AgentMetrics(pool::inUseBytes, config.stagingBytes());
        this.tracker = new SaveTracker(config.workerIndex());
        this.session = new CoordinatorSession(config, channel, tracker);
        this.uploader = new ShardUploader(config, session, tracker, this::store, metrics);
    }

    static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * Connects to {@code config.coordinator()} over a channel of its own (closed with the agent),
     * joins and waits for the welcome.
     *
     * @throws AgentException when the coordinator rejects the worker (wrong index, world size, run
     *     id, token; the index is taken) or does not answer within the connect timeout
     */
    public static CairnAgent connect(AgentConfig config) throws AgentException {
        ManagedChannel channel = CoordinatorSession.nettyChannel(config);
        return join(new CairnAgent(config, channel, channel));
    }

    /**
     * Joins over {@code channel}, which the caller owns (the agent never shuts it down): an
     * in-process channel in tests, or one the caller configured itself. Inbound messages are handled
     * on the channel's executor; a direct executor keeps the release-to-upload hand-off short.
     *
     * @throws AgentException as {@link #connect(AgentConfig)}
     */
    public static CairnAgent connect(AgentConfig config, Channel channel) throws AgentException {
        return join(new CairnAgent(config, channel, null));
    }

    /** How long a join waits quietly before it logs that it waits for the coordinator. */
    private static final long JOIN_PATIENCE_MILLIS = 1_000;

    private static CairnAgent join(CairnAgent agent) throws AgentException {
        AgentConfig config = agent.config;
        try {
            long deadline = System.nanoTime() + config.connectTimeout().toNanos();
            long start = System.nanoTime();
            long backoff = 100;
            boolean told = false;
            while (true) {
                CompletableFuture<?> welcome = agent.session.open();
                try {
                    welcome.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                    return agent;
                } catch (ExecutionException e) {
                    // a coordinator that is not listening yet (connection refused) is waited for up to the
                    // connect timeout; anything else (a TLS or plaintext mismatch, a refused join) fails at once
                    if (!refusedConnection(e.getCause())) {
                        throw e;
                    }
                    if (System.nanoTime() >= deadline) {
                        throw new TimeoutException("connection refused until the connect timeout");
                    }
                }
                if (!told && System.nanoTime() - start >= JOIN_PATIENCE_MILLIS * 1_000_000L) {
                    told = true;
                    LOG.info("worker {}: waiting for coordinator {} (not reachable yet), up to {} s", config.workerIndex(),
                            config.coordinator(), config.connectTimeout().toSeconds());
                }
                Thread.sleep(Math.max(1, Math.min(backoff, (deadline - System.nanoTime()) / 1_000_000L)));
                backoff = Math.min(1_000, backoff * 2);
            }
        } catch (ExecutionException e) {
            agent.abandon();
            Status status = Status.fromThrowable(e.getCause());
            boolean bad = switch (status.getCode()) {
                case INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED -> true;
                default -> false;
            };
            String why = status.getDescription() != null ? status.getDescription().lines().findFirst().orElse("") : status.getCode().toString();
            Throwable root = e.getCause();
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            if (root != e.getCause() && root.getMessage() != null) {
                // a refused TLS handshake: "io exception" alone would not say why
                why += " (" + root.getMessage().lines().findFirst().orElse("") + ")";
            }
            throw new AgentException("worker " + config.workerIndex() + " could not join coordinator " + config.coordinator() + ": " + why, bad, e.getCause());
        } catch (TimeoutException e) {
            agent.abandon();
            throw new AgentException("worker " + config.workerIndex() + " got no answer from coordinator " + config.coordinator()
                    + " within " + config.connectTimeout().toSeconds() + " s", false, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            agent.abandon();
            throw new AgentException("interrupted while joining " + config.coordinator(), false, e);
        }
    }

    private static boolean refusedConnection(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof java.net.ConnectException) {
                return true;
            }
        }
        return false;
    }

    // ------------------------------------------------------------------ restore and policy

    public int workerIndex() {
        return config.workerIndex();
    }

    public int worldSize() {
        return config.worldSize();
    }

    /** The coordinator's save-every-steps policy (0: none), as announced at the last join. */
    public long saveEverySteps() {
        Welcome w = session.welcome();
        return w == null ? 0 : w.getSaveEverySteps();
    }

    /**
     * Opens the checkpoint the coordinator chose for every worker (the newest committed one at
     * join time), or empty when the run has none. Later saves must use steps after it.
     *
     * @throws ManifestException when its manifest does not validate
     */
    public Optional<RestoredCheckpoint> restoreLatest() throws IOException {
        Welcome w = session.welcome();
        if (!w.hasLatest()) {
            return Optional.empty();
        }
        CheckpointCatalog catalog = new CheckpointCatalog(store());
        Manifest m = catalog.read(w.getLatest().getStep());
        if (!m.saveId().equals(w.getLatest().getSaveId())) {
            throw new ManifestException("manifest " + store().uri().resolve(Layout.manifestKey(m.step())) + " names save " + m.saveId()
                    + " but the coordinator announced " + w.getLatest().getSaveId());
        }
        noteRestored(m.step());
        return Optional.of(new RestoredCheckpoint(catalog, m, config.workerIndex()));
    }

    /**
     * Opens the committed checkpoint of {@code step} (not necessarily the latest), or empty when
     * storage holds no manifest for it. Later saves must use steps after it.
     *
     * @throws ManifestException when its manifest does not validate
     */
    public Optional<RestoredCheckpoint> restore(long step) throws IOException {
        CheckpointCatalog catalog = new CheckpointCatalog(store());
        if (!catalog.steps().contains(step)) {
            return Optional.empty();
        }
        Manifest m = catalog.read(step);
        noteRestored(m.step());
        return Optional.of(new RestoredCheckpoint(catalog, m, config.workerIndex()));
    }

    /** Every step with a committed checkpoint in this run's storage, ascending (lists storage). */
    public List<Long> committedSteps() throws IOException {
        return new CheckpointCatalog(store()).steps();
    }

    private void noteRestored(long step) {
        lastSaveStep = Math.max(lastSaveStep, step);
        session.noteStep(step);
    }

    private synchronized CheckpointStore store() throws IOException {
        if (store == null) {
            String uri = config.storageOverride() != null ? config.storageOverride() : session.welcome().getStorageUri();
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
        session.noteStep(step);
        if (step <= lastSaveStep) {
            return false;
        }
        long every = saveEverySteps();
        return (every > 0 && step % every == 0) || step == session.targetStep();
    }

    // ------------------------------------------------------------------ save

    /**
     * Saves the trainer's state at {@code step}. Returns once {@code writer} has copied everything
     * into staging memory (or, for state larger than the staging budget, once the part beyond it has
     * been uploaded); the rest happens in the background.
     *
     * @throws IllegalArgumentException for a step not after the last save or restore, or an invalid
     *     or repeated entry name (the save is aborted for every worker)
     */
    public SaveHandle save(long step, SnapshotWriter writer) throws IOException {
        long start = System.nanoTime();
        PendingSave ps = prepare(step);
        if (ps == null) {
            SnapshotGate.end(); // no snapshot follows: release prepare()'s claim
            PendingSave failed = new PendingSave(step);
            failed.fail(notConnected(step));
            return new SaveHandle(step, 0, failed.committed);
        }
        SaveInProgress save = stage(ps, start);
        try {
            writer.write(save.snapshot());
        } catch (IOException | RuntimeException e) {
            save.abort(e.getMessage() == null ? e.toString() : e.getMessage());
            throw e;
        }
        return save.finish();
    }

    /**
     * Starts a save at {@code step}: sends the prepare and returns the save, to be filled and then
     * finished (or aborted). When the coordinator is not connected, the save is already failed
     * ({@link SaveOutcome#COORDINATOR_LOST}) and empty: finishing it returns its failed handle.
     *
     * @throws IllegalArgumentException for a step not after the last save or restore
     */
    public SaveInProgress beginSave(long step) {
        long start = System.nanoTime();
        PendingSave ps = prepare(step);
        if (ps == null) {
            // already failed: the upload thread drains (and frees) whatever is put into it
            ps = new PendingSave(step);
            ps.fail(notConnected(step));
        }
        return stage(ps, start);
    }

    /** Sends the prepare; null when not connected (nothing registered). */
    private PendingSave prepare(long step) {
        if (closed) {
            throw new IllegalStateException("agent of worker " + config.workerIndex() + " is closed");
        }
        if (step <= lastSaveStep) {
            throw new IllegalArgumentException("worker " + config.workerIndex() + ": save steps must increase; step " + step
                    + " is not after " + lastSaveStep);
        }
        session.noteStep(step);
        PendingSave ps = new PendingSave(step);
        tracker.register(ps);
        lastSaveStep = step;
        session.clearTarget(step);
        // Claim the snapshot gate before the prepare leaves: the barrier may release the other ranks of
        // this process before this thread has built its StagedShard, and a sealed rank's upload must not
        // start into this rank's copy. stage() hands the claim over to the shard.
        SnapshotGate.begin();
        if (!session.connected() || !session.send(AgentMessage.newBuilder().setPrepare(Prepare.newBuilder().setStep(step)).build())) {
            tracker.failNow(ps, notConnected(step));
            return null;
        }
        config.hooks().onPhase(AgentHooks.Phase.PREPARED, step);
        return ps;
    }

    private SaveAbortedException notConnected(long step) {
        return new SaveAbortedException(step, SaveOutcome.COORDINATOR_LOST, "not connected to coordinator " + config.coordinator());
    }

    private SaveInProgress stage(PendingSave ps, long start) {
        StagedShard shard = new StagedShard(pool, ps.step);
        SnapshotGate.end(); // the shard holds its own claim from here on
        // The upload thread is handed this save when the barrier releases it (or it fails), not now:
        // it would only wake to wait for the release. Releases come in save order (one save in flight).
        uploader.uploadAtRelease(ps, shard);
        return new SaveInProgress(session, tracker, ps, shard, config.hooks(), start, metrics);
    }

    // ------------------------------------------------------------------ preemption and close

    /**
     * On SIGTERM (a preemption notice), asks the coordinator for an emergency save at the next step
     * boundary and holds JVM shutdown until it commits or {@code grace} passes; callbacks chained on
     * that save's {@link SaveHandle#committed()} future have run by then. The training loop
     * must keep calling {@link #isSaveDue} and {@link #save} meanwhile, as it does.
     */
    public void installPreemptionHook(Duration grace) {
        PreemptionHook.install(session, tracker, config.workerIndex(), grace, () -> closed);
    }

    /**
     * Asks the coordinator for an emergency save after {@code step} now (what the preemption hook
     * does on SIGTERM, for a caller that handles the signal itself); {@link #isSaveDue} turns true
     * at the step the coordinator picks.
     */
    public void requestEmergencySave(long step) {
        session.noteStep(step);
        session.send(AgentMessage.newBuilder().setPreemption(PreemptionNotice.newBuilder().setStep(step)).build());
    }

    /** The step of the newest checkpoint this agent knows to be committed, or -1. */
    public long lastCommittedStep() {
        return session.lastCommittedStep();
    }

    /** Peak staging memory in use so far, in bytes. */
    /**
     * This agent's Prometheus metrics (stall per save, staging bytes in use, upload bytes and
     * durations): serve them with the Prometheus HTTP exporter, as {@code cairn agent --metrics-port} does.
     */
    public PrometheusRegistry metrics() {
        return metrics.registry();
    }

    public long peakStagingBytes() {
        return pool.peakBytes();
    }

    /**
     * Waits (up to 60 s) for uploads in flight and their commits, then leaves the run; callbacks
     * chained on the saves' {@link SaveHandle#committed()} futures have run when it returns (it waits
     * up to 5 s more for them, and not at all when called from one). Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            // a save still in its barrier has no upload task yet: wait until it is queued (or failed)
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            for (PendingSave ps : tracker.inFlight()) {
                try {
                    ps.uploadQueued.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (ExecutionException | TimeoutException e) {
                    // closing anyway
                }
            }
            uploader.finish(60);
            for (PendingSave ps : tracker.inFlight()) {
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
        session.leave();
        shutdownNow();
    }

    /**
     * Leaves the run at once, without waiting for uploads: the coordinator aborts saves not yet
     * fully reported (WORKER_LOST). Idempotent.
     */
    public void closeNow() {
        if (closed) {
            return;
        }
        closed = true;
        session.leave();
        shutdownNow();
    }

    private void abandon() {
        session.abandon();
        shutdownNow();
    }

    private void shutdownNow() {
        closed = true;
        session.shutdown();
        uploader.shutdownNow();
        if (ownedChannel != null) {
            ownedChannel.shutdown();
            try {
                if (!ownedChannel.awaitTermination(5, TimeUnit.SECONDS)) {
                    ownedChannel.shutdownNow();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                ownedChannel.shutdownNow();
            }
        }
        // after the channel: completions its last inbound messages queued still run
        tracker.shutdown();
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
}
