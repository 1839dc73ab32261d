package dev.cairn.coordinator;

import dev.cairn.proto.v1.CheckpointRef;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.protobuf.services.HealthStatusManager;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
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
 * <p>This class is the lifecycle and the listeners; the work is done by the protocol state
 * machine ({@link SaveCoordinator}, confined to one event-loop thread), the worker-session and
 * admin gRPC services, the committed-checkpoint bookkeeping ({@link CheckpointBook}) and the
 * manifest committer, whose storage I/O runs on a separate I/O executor and posts its result back
 * to the loop. Lifecycle: {@link #start} → running → {@link #close} (idempotent), which aborts a
 * save in flight and ends every session.
 */
public final class Coordinator implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);
    /**
     * Largest message a session accepts: a shard report at the protocol's limits (1,000,000
     * entries, 64 KiB of metadata; see docs/protocol.md, "Limits").
     */
    public static final int MAX_MESSAGE_BYTES = ProtocolLimits.MAX_INBOUND_MESSAGE_BYTES;
    /** Concurrent calls on one connection: an agent needs one stream, the CLI one call. */
    static final int MAX_CALLS_PER_CONNECTION = 16;

    private final CoordinatorConfig config;
    private final CheckpointStore store;
    private final EventLoop loop;
    private final CheckpointBook book;
    private final ManifestCommitter committer;
    private final SaveCoordinator machine;
    private final SessionService sessions;
    private final CoordinatorLease lease;
    private final ScheduledExecutorService leaseTimer;
    private final Optional<Instant> takeoverSweepAt;
    private final Clock clock;
    private final CompletableFuture<String> deposed = new CompletableFuture<>();
    private final java.util.concurrent.atomic.AtomicBoolean deposing = new java.util.concurrent.atomic.AtomicBoolean();
    private final List<Consumer<SaveRecord>> listeners = new CopyOnWriteArrayList<>();
    private Server server;
    /** grpc.health.v1 on the coordinator's port: SERVING once recovery is done and the server runs. */
    private final HealthStatusManager health = new HealthStatusManager();
    private volatile boolean closed;

    private Coordinator(CoordinatorConfig config, CheckpointStore store, Clock clock, CoordinatorLease lease) throws IOException {
        this.config = config;
        this.store = store;
        this.lease = lease;
        this.loop = new EventLoop(config.runId());
        CheckpointCatalog catalog = new CheckpointCatalog(store);
        this.book = new CheckpointBook(config, catalog, loop, this::fence);
        this.committer = new ManifestCommitter(config, catalog, this::fence);
        // sweep only attempts older than the previous holder's last renewal: a deposed (--force) or
        // just-expired holder's save in flight is left for a later start or gc
        Instant cutoff = clock.instant();
        if (lease.previous().isPresent() && lease.previous().get().renewedAt().isBefore(cutoff)) {
            cutoff = lease.previous().get().renewedAt();
        }
        // ... and swept once that holder's lease has expired (plus one lease of margin for clock skew
        // and its last fence check racing its commit): it can commit nothing after that
        this.takeoverSweepAt = lease.previous().filter(p -> !p.released() && p.renewedAt().isBefore(clock.instant()))
                .map(p -> p.expiresAt().plus(config.lease()));
        this.clock = clock;
        Optional<CheckpointRef> latest = book.recover(cutoff);
        this.machine = new SaveCoordinator(config, clock, new LoopOutbox(), latest);
        book.onRetentionDelete(machine.metrics()::retentionDeleted);
        this.sessions = new SessionService(config, loop, machine);
        this.leaseTimer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "cairn-coordinator-lease");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Starts a coordinator serving on {@code host:port} (port 0 picks a free one), with TLS when
     * the config has server credentials ({@link CoordinatorConfig.Builder#tls}).
     */
    public static Coordinator start(CoordinatorConfig config, String host, int port) throws IOException {
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(host, port), config.serverCredentials())
                .keepAliveTime(2, TimeUnit.SECONDS)
                .keepAliveTimeout(2, TimeUnit.SECONDS)
                .permitKeepAliveTime(1, TimeUnit.SECONDS)
                .permitKeepAliveWithoutCalls(true)
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .maxInboundMetadataSize(16 << 10)
                .maxConcurrentCallsPerConnection(MAX_CALLS_PER_CONNECTION)
                .handshakeTimeout(10, TimeUnit.SECONDS)
                // a connection with no call for this long is closed (an agent always has its stream open)
                .maxConnectionIdle(2, TimeUnit.MINUTES)
                // every handler only posts to the event loop and never blocks: run it on the network
                // thread instead of handing each message to gRPC's default executor first
                .directExecutor();
        return start(config, builder, Clock.systemUTC());
    }

    /**
     * Starts a coordinator on the given server builder (in-process servers in tests).
     *
     * @throws dev.cairn.storage.StorageUnavailableException when the storage root cannot be used
     * @throws CoordinatorLease.LeaseHeldException when a live coordinator holds the storage root's
     *     lease (and {@link CoordinatorConfig#forceTakeover()} is off)
     */
    public static Coordinator start(CoordinatorConfig config, ServerBuilder<?> serverBuilder, Clock clock) throws IOException {
        CheckpointStore opened = CheckpointStores.open(config.storage(), true);
        CheckpointStore store = config.storeDecorator().apply(opened);
        Coordinator c;
        try {
            // the lease is between processes, so it runs on the wall clock, never on a test's protocol clock
            CoordinatorLease lease = CoordinatorLease.acquire(store, Clock.systemUTC(), config.lease(), config.runId(), config.forceTakeover());
            c = new Coordinator(config, store, clock, lease);
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
        try {
            AdminService admin = new AdminService(config, c.loop, c.machine, c.book);
            // recovery ran in the constructor: the health service may say SERVING as soon as the server runs
            serverBuilder.addService(c.health.getHealthService());
            if (config.token().isEmpty()) {
                serverBuilder.addService(c.sessions).addService(admin);
            } else {
                serverBuilder.addService(ServerInterceptors.intercept(c.sessions, TokenAuth.headerOrJoin(config.token())))
                        .addService(ServerInterceptors.intercept(admin, TokenAuth.required(config.token())));
            }
            c.server = serverBuilder.build().start();
        } catch (IOException e) {
            c.close();
            throw new IOException("cannot serve run " + config.runId() + ": " + e.getMessage(), e);
        }
        c.health.setStatus("", HealthCheckResponse.ServingStatus.SERVING);
        c.health.setStatus(WorkerSessionServiceGrpc.SERVICE_NAME, HealthCheckResponse.ServingStatus.SERVING);
        long tick = Math.max(20, Math.min(200, config.heartbeatInterval().toMillis() / 4));
        c.loop.every(tick, c.machine::tick);
        long renew = config.lease().toMillis() / 3;
        c.leaseTimer.scheduleWithFixedDelay(c::renewLease, renew, renew, TimeUnit.MILLISECONDS);
        c.takeoverSweepAt.ifPresent(at -> c.loop.schedule(Math.max(0, Duration.between(clock.instant(), at).toMillis()), c::sweepAfterTakeover));
        LOG.info("coordinator of run {} serving world size {} on port {} with storage {}", config.runId(), config.worldSize(), c.port(), config.storage());
        return c;
    }

    /**
     * The coordinator's Prometheus metrics (saves by outcome, phase durations, bytes, workers,
     * latest checkpoint and its age, retention): serve them with the Prometheus HTTP exporter.
     */
    public PrometheusRegistry metrics() {
        return machine.metrics().registry();
    }

    /** Loop thread: the save in flight now is kept; anything released later is newer than the cutoff. */
    private void sweepAfterTakeover() {
        String inFlight = machine.inFlightSaveId();
        Set<String> keep = inFlight.isEmpty() ? Set.of() : Set.of(inFlight);
        book.sweepAfterTakeover(keep, clock.instant(), lease.previous().map(CoordinatorLease.Holder::epoch).orElse(0L));
    }

    private void renewLease() {
        try {
            lease.renew();
        } catch (CoordinatorLease.DeposedException e) {
            depose(e.getMessage());
        } catch (IOException | RuntimeException e) {
            LOG.warn("coordinator of run {}: lease renewal on {} failed (retried; the coordinator stops if the lease expires): {}",
                    config.runId(), store.uri(), e.toString());
        }
    }

    /** The fence before every commit and delete; a failed check deposes this coordinator. */
    private void fence() throws IOException {
        try {
            lease.check();
        } catch (CoordinatorLease.DeposedException e) {
            depose(e.getMessage());
            throw e;
        }
    }

    private void depose(String reason) {
        if (deposing.compareAndSet(false, true)) {
            LOG.error("coordinator of run {} stops: {}; the save in flight is aborted, nothing more is committed or deleted in {}",
                    config.runId(), reason, store.uri());
            Thread stopper = new Thread(() -> {
                close();
                deposed.complete(reason);
            }, "cairn-coordinator-deposed");
            stopper.setDaemon(true);
            stopper.start();
        }
    }

    /**
     * Completed with the reason once this coordinator, having lost its storage root's lease (another
     * one took over, or the lease expired unrenewed), has closed itself.
     */
    public CompletableFuture<String> deposition() {
        return deposed;
    }

    /** The epoch of the storage root this coordinator holds. */
    public long epoch() {
        return lease.epoch();
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
        return loop.call(machine::latest);
    }

    /** The outcomes of recent saves, oldest first. */
    public List<SaveRecord> history() {
        return loop.call(machine::history);
    }

    /** Workers with a live session. */
    public Set<Integer> connectedWorkers() {
        return loop.call(machine::connected);
    }

    /**
     * Asks every worker to save at a step just ahead of the fastest; returns that step, or -1 when
     * it would pass the protocol's largest step (2^62).
     */
    public long triggerSave(String reason) {
        return loop.call(() -> machine.trigger(reason));
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        health.enterTerminalState();
        loop.startClosing();
        CompletableFuture<Void> done = new CompletableFuture<>();
        try {
            loop.postUrgent(() -> {
                try {
                    machine.shutdown();
                } finally {
                    if (sessions != null) {
                        sessions.closeAll(Status.UNAVAILABLE.withDescription("coordinator of run " + config.runId() + " is shutting down"));
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
        loop.shutdown();
        committer.close();
        // let a renewal in progress finish: interrupted, its create may take effect with its answer lost
        leaseTimer.shutdown();
        try {
            if (!leaseTimer.awaitTermination(10, TimeUnit.SECONDS)) {
                leaseTimer.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            leaseTimer.shutdownNow();
        }
        if (!deposing.get()) {
            lease.release();
        }
        try {
            store.close();
        } catch (IOException e) {
            LOG.warn("closing {}: {}", store.uri(), e.toString());
        }
        LOG.info("coordinator of run {} stopped", config.runId());
    }

    /** The state machine's side effects: gRPC sends, storage I/O, listeners. */
    private final class LoopOutbox implements Outbox {
        @Override
        public void send(int worker, CoordinatorMessage message) {
            sessions.send(worker, message);
        }

        @Override
        public void closeSession(int worker, Status status) {
            sessions.close(worker, status);
        }

        @Override
        public void commit(Manifest manifest) {
            loop.io(() -> committer.commit(manifest, (result, message) -> {
                loop.postUrgent(() -> machine.onCommitResult(manifest.saveId(), result, message));
                if (result == SaveCoordinator.CommitResult.COMMITTED) {
                    // after the commit point and its announcement: the hint is best effort and off the save's latency
                    book.updateHintMonotonic(manifest.step());
                }
            }));
        }

        @Override
        public void deleteAttempt(String saveId) {
            book.deleteAttempt(saveId);
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
            book.committed(manifest, machine.recentlyAborted());
        }
    }

    /** For tests: how long the coordinator waits before it declares a silent worker lost. */
    Duration heartbeatTimeout() {
        return config.heartbeatTimeout();
    }
}
