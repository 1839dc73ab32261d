package dev.cairn.coordinator;

import dev.cairn.proto.v1.AdminServiceGrpc;
import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.ListCheckpointsRequest;
import dev.cairn.proto.v1.ListCheckpointsResponse;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.StatusResponse;
import dev.cairn.proto.v1.TriggerSaveRequest;
import dev.cairn.proto.v1.TriggerSaveResponse;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.NoSuchObjectException;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The chief: runs barrier-synchronized saves for one training run over gRPC and commits their
 * manifests. At start it rebuilds its state from storage alone: the newest valid manifest becomes
 * the checkpoint every joining worker restores, and attempts without a manifest are swept.
 *
 * <p>Threading: every protocol event runs on one event-loop thread ({@link SaveCoordinator} is
 * confined to it); storage I/O (manifest writes, deletes, retention) runs on a separate I/O
 * executor and posts its result back to the loop. Lifecycle: {@link #start} → running →
 * {@link #close} (idempotent), which aborts a save in flight and ends every session.
 */
public final class Coordinator implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);
    /** Largest message a session accepts: a shard report indexes every entry of a shard. */
    public static final int MAX_MESSAGE_BYTES = 64 << 20;

    private final CoordinatorConfig config;
    private final CheckpointStore store;
    private final CheckpointCatalog catalog;
    private final ScheduledExecutorService loop;
    private final ExecutorService io;
    private final SaveCoordinator machine;
    private final Map<Integer, Session> sessions = new ConcurrentHashMap<>();
    private final List<Consumer<SaveRecord>> listeners = new CopyOnWriteArrayList<>();
    /** Committed checkpoints retention may delete, by step. Touched on the loop only. */
    private final TreeMap<Long, RetentionPolicy.Kept> kept = new TreeMap<>();
    private final Set<Long> corruptSteps = new HashSet<>();
    private Server server;
    private volatile boolean closed;

    private Coordinator(CoordinatorConfig config, CheckpointStore store, Clock clock) throws IOException {
        this.config = config;
        this.store = store;
        this.catalog = new CheckpointCatalog(store);
        this.loop = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "cairn-coordinator-loop"));
        this.io = Executors.newFixedThreadPool(2, r -> daemon(r, "cairn-coordinator-io"));
        Optional<CheckpointRef> latest = recover();
        this.machine = new SaveCoordinator(config, clock, new LoopOutbox(), latest);
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /** Starts a coordinator serving on {@code host:port} (port 0 picks a free one). */
    public static Coordinator start(CoordinatorConfig config, String host, int port) throws IOException {
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .keepAliveTime(2, TimeUnit.SECONDS)
                .keepAliveTimeout(2, TimeUnit.SECONDS)
                .permitKeepAliveTime(1, TimeUnit.SECONDS)
                .permitKeepAliveWithoutCalls(true)
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                // every handler only posts to the event loop and never blocks: run it on the network
                // thread instead of handing each message to gRPC's default executor first
                .directExecutor();
        return start(config, builder, Clock.systemUTC());
    }

    /**
     * Starts a coordinator on the given server builder (in-process servers in tests).
     *
     * @throws dev.cairn.storage.StorageUnavailableException when the storage root cannot be used
     */
    public static Coordinator start(CoordinatorConfig config, ServerBuilder<?> serverBuilder, Clock clock) throws IOException {
        CheckpointStore store = CheckpointStores.open(config.storage(), true);
        Coordinator c;
        try {
            c = new Coordinator(config, store, clock);
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
        try {
            c.server = serverBuilder.addService(c.new SessionService()).addService(c.new AdminService()).build().start();
        } catch (IOException e) {
            c.close();
            throw new IOException("cannot serve run " + config.runId() + ": " + e.getMessage(), e);
        }
        long tick = Math.max(20, Math.min(200, config.heartbeatInterval().toMillis() / 4));
        c.loop.scheduleWithFixedDelay(() -> c.machine.tick(), tick, tick, TimeUnit.MILLISECONDS);
        LOG.info("coordinator of run {} serving world size {} on port {} with storage {}", config.runId(), config.worldSize(), c.port(), config.storage());
        return c;
    }

    /** Reads every manifest, keeps the valid ones for retention and sweeps attempts without one. */
    private Optional<CheckpointRef> recover() throws IOException {
        Set<String> committedIds = new HashSet<>();
        Manifest newest = null;
        for (long step : catalog.steps()) {
            try {
                Manifest m = catalog.read(step);
                committedIds.add(m.saveId());
                kept.put(step, new RetentionPolicy.Kept(step, m.saveId(), m.createdAt(), m.metadata()));
                newest = m;
            } catch (ManifestException e) {
                corruptSteps.add(step);
                LOG.error("{} — skipped; restore uses the newest valid checkpoint", e.getMessage());
            } catch (NoSuchObjectException e) {
                // deleted while reading
            }
        }
        int swept = catalog.sweepAbandonedCommitWrites(java.time.Instant.now());
        for (String saveId : catalog.attemptIds()) {
            if (!committedIds.contains(saveId) && !corruptSteps.contains(Layout.stepOfSaveId(saveId))) {
                swept += catalog.deleteAttempt(saveId);
                LOG.info("swept orphaned attempt {} of run {} in {}", saveId, config.runId(), store.uri());
            }
        }
        if (newest == null) {
            LOG.info("run {} has no checkpoint in {} yet", config.runId(), store.uri());
            return Optional.empty();
        }
        if (catalog.latestStep().orElse(-1L) != newest.step() && !corruptSteps.contains(catalog.latestStep().orElse(-1L))) {
            catalog.updateHint(newest.step());
        }
        LOG.info("run {} resumes from step {} (save {}) in {}; {} checkpoints kept, {} orphaned objects swept",
                config.runId(), newest.step(), newest.saveId(), store.uri(), kept.size(), swept);
        return Optional.of(ref(newest));
    }

    private static CheckpointRef ref(Manifest m) {
        return CheckpointRef.newBuilder().setStep(m.step()).setSaveId(m.saveId()).setManifestKey(Layout.manifestKey(m.step())).build();
    }

    /** The port the server listens on (-1 for in-process servers). */
    public int port() {
        return server.getPort();
    }

    public CoordinatorConfig config() {
        return config;
    }

    /** Called with every save's outcome, on the coordinator's thread. */
    public void addListener(Consumer<SaveRecord> listener) {
        listeners.add(listener);
    }

    /** The newest committed checkpoint. */
    public Optional<CheckpointRef> latest() {
        return call(machine::latest);
    }

    /** The outcomes of recent saves, oldest first. */
    public List<SaveRecord> history() {
        return call(machine::history);
    }

    /** Workers with a live session. */
    public Set<Integer> connectedWorkers() {
        return call(machine::connected);
    }

    /** Asks every worker to save at a step just ahead of the fastest; returns that step. */
    public long triggerSave(String reason) {
        return call(() -> machine.trigger(reason));
    }

    private <T> T call(java.util.concurrent.Callable<T> task) {
        try {
            return loop.submit(task).get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (Exception e) {
            throw new IllegalStateException("coordinator of run " + config.runId() + " did not answer: " + e, e);
        }
    }

    private void post(Runnable r) {
        if (closed && !(r instanceof Urgent)) {
            return;
        }
        try {
            loop.execute(() -> {
                try {
                    r.run();
                } catch (RuntimeException e) {
                    LOG.error("coordinator of run {}: unexpected error in event handling", config.runId(), e);
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // closing
        }
    }

    /** Marker for tasks that run even while closing. */
    private interface Urgent extends Runnable {}

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        CompletableFuture<Void> done = new CompletableFuture<>();
        try {
            loop.execute(() -> {
                try {
                    machine.shutdown();
                } finally {
                    for (Session s : sessions.values()) {
                        s.close(Status.UNAVAILABLE.withDescription("coordinator of run " + config.runId() + " is shutting down"));
                    }
                    done.complete(null);
                }
            });
            done.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.warn("coordinator of run {}: shutdown of sessions incomplete: {}", config.runId(), e.toString());
        }
        if (server != null) {
            server.shutdown();
            try {
                if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
                    server.shutdownNow();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                server.shutdownNow();
            }
        }
        io.shutdown();
        try {
            io.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        loop.shutdownNow();
        try {
            store.close();
        } catch (IOException e) {
            LOG.warn("closing {}: {}", store.uri(), e.toString());
        }
        LOG.info("coordinator of run {} stopped", config.runId());
    }

    // ------------------------------------------------------------------ outbox: the loop's side effects

    private final class LoopOutbox implements Outbox {
        @Override
        public void send(int worker, CoordinatorMessage message) {
            Session s = sessions.get(worker);
            if (s != null) {
                s.send(message);
            }
        }

        @Override
        public void closeSession(int worker, Status status) {
            Session s = sessions.get(worker);
            if (s != null) {
                s.close(status);
            }
        }

        @Override
        public void commit(Manifest manifest) {
            io.execute(() -> {
                SaveCoordinator.CommitResult result;
                String message = "";
                try {
                    result = catalog.commitManifest(manifest) == CheckpointCatalog.CommitOutcome.COMMITTED
                            ? SaveCoordinator.CommitResult.COMMITTED : SaveCoordinator.CommitResult.ALREADY_EXISTS;
                    if (result == SaveCoordinator.CommitResult.COMMITTED) {
                        config.hooks().onPhase(CoordinatorHooks.Phase.MANIFEST_WRITTEN, manifest.step(), manifest.saveId());
                    }
                } catch (CommitStateUnknownException e) {
                    result = recheck(manifest);
                    message = e.getMessage();
                } catch (IOException | RuntimeException e) {
                    result = SaveCoordinator.CommitResult.FAILED;
                    message = e.getMessage();
                }
                SaveCoordinator.CommitResult r = result;
                String m = message;
                post((Urgent) () -> machine.onCommitResult(manifest.saveId(), r, m));
                if (r == SaveCoordinator.CommitResult.COMMITTED) {
                    // after the commit point and its announcement: the hint is best effort and off the save's latency
                    updateHintMonotonic(manifest.step());
                }
            });
        }

        /** After an unknown outcome, the manifest itself says who won. */
        private SaveCoordinator.CommitResult recheck(Manifest manifest) {
            try {
                Manifest found = catalog.read(manifest.step());
                return found.saveId().equals(manifest.saveId()) ? SaveCoordinator.CommitResult.COMMITTED : SaveCoordinator.CommitResult.ALREADY_EXISTS;
            } catch (NoSuchObjectException e) {
                return SaveCoordinator.CommitResult.UNKNOWN;
            } catch (IOException e) {
                return SaveCoordinator.CommitResult.UNKNOWN;
            }
        }

        @Override
        public void deleteAttempt(String saveId) {
            io.execute(() -> {
                try {
                    int n = catalog.deleteAttempt(saveId);
                    LOG.debug("deleted {} objects of aborted save {} in {}", n, saveId, store.uri());
                } catch (IOException | RuntimeException e) {
                    LOG.warn("could not delete aborted save {} in {} (swept at next start): {}", saveId, store.uri(), e.toString());
                }
            });
        }

        @Override
        public void saveEnded(SaveRecord record) {
            for (Consumer<SaveRecord> l : listeners) {
                try {
                    l.accept(record);
                } catch (RuntimeException e) {
                    LOG.warn("save listener failed on save {}: {}", record.saveId(), e.toString());
                }
            }
        }

        @Override
        public void committed(Manifest manifest) {
            kept.put(manifest.step(), new RetentionPolicy.Kept(manifest.step(), manifest.saveId(), manifest.createdAt(), manifest.metadata()));
            Set<Long> delete = config.retention().toDelete(new ArrayList<>(kept.values()));
            List<RetentionPolicy.Kept> victims = new ArrayList<>();
            for (long step : delete) {
                victims.add(kept.remove(step));
            }
            Set<String> aborted = machine.recentlyAborted();
            if (victims.isEmpty() && aborted.isEmpty()) {
                return;
            }
            io.execute(() -> applyRetention(victims, aborted));
        }
    }

    private long hintedStep = -1;

    /** Hint updates of consecutive commits may run on different I/O threads: never move the hint back. */
    private synchronized void updateHintMonotonic(long step) {
        if (step > hintedStep) {
            catalog.updateHint(step);
            hintedStep = step;
        }
    }

    private void applyRetention(List<RetentionPolicy.Kept> victims, Set<String> abortedAttempts) {
        for (RetentionPolicy.Kept k : victims) {
            try {
                store.delete(Layout.manifestKey(k.step()));
                catalog.deleteAttempt(k.saveId());
                LOG.info("retention deleted step {} (save {}) of run {} from {}", k.step(), k.saveId(), config.runId(), store.uri());
            } catch (IOException | RuntimeException e) {
                LOG.warn("retention could not delete step {} of run {} from {}: {}", k.step(), config.runId(), store.uri(), e.toString());
            }
        }
        // an agent may still have been finishing an aborted attempt when it was deleted: sweep again
        for (String saveId : abortedAttempts) {
            try {
                catalog.deleteAttempt(saveId);
            } catch (IOException | RuntimeException e) {
                LOG.debug("sweep of aborted save {} in {}: {}", saveId, store.uri(), e.toString());
            }
        }
    }

    // ------------------------------------------------------------------ gRPC: worker sessions

    /** One worker's stream. Sends are serialized by the loop thread. */
    private final class Session implements StreamObserver<AgentMessage> {
        private final ServerCallStreamObserver<CoordinatorMessage> out;
        private int worker = -1;
        private boolean ended;

        Session(ServerCallStreamObserver<CoordinatorMessage> out) {
            this.out = out;
        }

        void send(CoordinatorMessage message) {
            if (ended) {
                return;
            }
            try {
                out.onNext(message);
            } catch (RuntimeException e) {
                LOG.debug("send to worker {} failed: {}", worker, e.toString());
            }
        }

        void close(Status status) {
            if (ended) {
                return;
            }
            ended = true;
            sessions.remove(worker, this);
            try {
                out.onError(status.asRuntimeException());
            } catch (RuntimeException e) {
                LOG.debug("close of worker {} session: {}", worker, e.toString());
            }
        }

        @Override
        public void onNext(AgentMessage msg) {
            post(() -> handle(msg));
        }

        private void handle(AgentMessage msg) {
            if (ended) {
                return;
            }
            if (worker < 0) {
                if (!msg.hasJoin()) {
                    close(Status.FAILED_PRECONDITION.withDescription("the first message of a session must be a join"));
                    return;
                }
                try {
                    var welcome = machine.join(this, msg.getJoin());
                    worker = msg.getJoin().getWorkerIndex();
                    sessions.put(worker, this);
                    send(CoordinatorMessage.newBuilder().setWelcome(welcome).build());
                } catch (StatusException e) {
                    LOG.warn("rejected join of worker {} to run {}: {}", msg.getJoin().getWorkerIndex(), config.runId(), e.getStatus().getDescription());
                    close(e.getStatus());
                }
                return;
            }
            switch (msg.getKindCase()) {
                case HEARTBEAT -> machine.heartbeat(worker, this, msg.getHeartbeat().getStep());
                case PREPARE -> machine.prepare(worker, this, msg.getPrepare().getStep());
                case SHARD_REPORT -> machine.shardReport(worker, this, msg.getShardReport());
                case UPLOAD_FAILED -> machine.uploadFailed(worker, this, msg.getUploadFailed().getSaveId(),
                        msg.getUploadFailed().getStep(), msg.getUploadFailed().getMessage());
                case PREEMPTION -> {
                    LOG.warn("worker {} of run {} is being preempted at step {}: emergency save", worker, config.runId(), msg.getPreemption().getStep());
                    machine.heartbeat(worker, this, msg.getPreemption().getStep());
                    machine.trigger("preemption of worker " + worker);
                }
                case JOIN -> close(Status.FAILED_PRECONDITION.withDescription("worker " + worker + " sent a second join on one session"));
                default -> close(Status.INVALID_ARGUMENT.withDescription("worker " + worker + " sent an unknown message"));
            }
        }

        @Override
        public void onError(Throwable t) {
            post((Urgent) () -> lost("stream broken: " + Status.fromThrowable(t)));
        }

        @Override
        public void onCompleted() {
            post((Urgent) () -> {
                lost("session closed by the worker");
                if (!ended) {
                    ended = true;
                    try {
                        out.onCompleted();
                    } catch (RuntimeException e) {
                        LOG.debug("completing worker {} session: {}", worker, e.toString());
                    }
                }
            });
        }

        private void lost(String cause) {
            if (worker >= 0) {
                sessions.remove(worker, this);
                machine.sessionLost(worker, this, cause);
            }
        }
    }

    private final class SessionService extends WorkerSessionServiceGrpc.WorkerSessionServiceImplBase {
        @Override
        public StreamObserver<AgentMessage> session(StreamObserver<CoordinatorMessage> responseObserver) {
            return new Session((ServerCallStreamObserver<CoordinatorMessage>) responseObserver);
        }
    }

    // ------------------------------------------------------------------ gRPC: admin

    private final class AdminService extends AdminServiceGrpc.AdminServiceImplBase {
        @Override
        public void status(StatusRequest request, StreamObserver<StatusResponse> out) {
            post(() -> {
                StatusResponse.Builder b = StatusResponse.newBuilder()
                        .setRunId(config.runId())
                        .setWorldSize(config.worldSize())
                        .setStorageUri(config.storage().toString())
                        .addAllConnectedWorkers(machine.connected())
                        .setInFlightPhase(machine.phase().map(Enum::name).orElse(""))
                        .setInFlightStep(machine.inFlightStep());
                machine.latest().ifPresent(b::setLatest);
                for (SaveRecord r : machine.history()) {
                    b.addRecentSaves(dev.cairn.proto.v1.SaveRecord.newBuilder().setStep(r.step()).setSaveId(r.saveId())
                            .setOutcome(r.outcome()).setMessage(r.message()).setBytes(r.bytes())
                            .setMaxStallMicros(r.maxStallMicros()).setMaxUploadMicros(r.maxUploadMicros()));
                }
                out.onNext(b.build());
                out.onCompleted();
            });
        }

        @Override
        public void listCheckpoints(ListCheckpointsRequest request, StreamObserver<ListCheckpointsResponse> out) {
            post(() -> {
                ListCheckpointsResponse.Builder b = ListCheckpointsResponse.newBuilder();
                for (RetentionPolicy.Kept k : kept.values()) {
                    b.addCheckpoints(CheckpointRef.newBuilder().setStep(k.step()).setSaveId(k.saveId()).setManifestKey(Layout.manifestKey(k.step())));
                }
                out.onNext(b.build());
                out.onCompleted();
            });
        }

        @Override
        public void triggerSave(TriggerSaveRequest request, StreamObserver<TriggerSaveResponse> out) {
            post(() -> {
                if (machine.connected().size() < config.worldSize()) {
                    out.onError(Status.FAILED_PRECONDITION.withDescription("run " + config.runId() + " has "
                            + machine.connected().size() + " of " + config.worldSize() + " workers connected").asRuntimeException());
                    return;
                }
                long step = machine.trigger(request.getReason().isEmpty() ? "operator request" : request.getReason());
                out.onNext(TriggerSaveResponse.newBuilder().setTargetStep(step).build());
                out.onCompleted();
            });
        }
    }

    /** For tests: how long the coordinator waits before it declares a silent worker lost. */
    Duration heartbeatTimeout() {
        return config.heartbeatTimeout();
    }
}
