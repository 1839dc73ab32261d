package dev.cairn.agent;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.Heartbeat;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Welcome;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.protocol.BearerToken;
import dev.cairn.protocol.SaveOutcome;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's session with its coordinator over a channel it is handed (and does not own): the
 * stream, the join, heartbeats carrying the trainer's progress, and reconnects with backoff when
 * the stream breaks. Inbound messages are handled on whatever executor the channel runs them on
 * (the agent's own channel uses the network thread); save messages go to the {@link SaveTracker}.
 */
final class CoordinatorSession {
    private static final Logger LOG = LoggerFactory.getLogger(CoordinatorSession.class);

    private final AgentConfig config;
    private final Channel channel;
    private final SaveTracker tracker;
    private final ScheduledExecutorService scheduler;
    private final Object sendLock = new Object();
    private final Object heartbeatLock = new Object();
    private final Object commitLock = new Object();

    private StreamObserver<AgentMessage> out;
    private volatile Welcome welcome;
    private volatile boolean connected;
    private volatile boolean closed;
    private volatile long currentStep = -1;
    private volatile long targetStep = -1;
    private long lastCommittedStep = -1;
    private ScheduledFuture<?> heartbeat;
    private long reconnectDelayMillis = 100;

    CoordinatorSession(AgentConfig config, Channel channel, SaveTracker tracker) {
        this.config = config;
        this.channel = channel;
        this.tracker = tracker;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> CairnAgent.daemon(r, "cairn-agent-" + config.workerIndex()));
    }

    /** The channel {@link CairnAgent#connect(AgentConfig)} builds (and owns) for {@code config.coordinator()}. */
    static ManagedChannel nettyChannel(AgentConfig config) {
        String[] hostPort = config.coordinator().split(":");
        return NettyChannelBuilder.forAddress(hostPort[0], Integer.parseInt(hostPort[1]), config.channelCredentials())
                .keepAliveTime(2, TimeUnit.SECONDS)
                .keepAliveTimeout(2, TimeUnit.SECONDS)
                .keepAliveWithoutCalls(true)
                .maxInboundMessageSize(64 << 20)
                // Inbound only updates state and completes internal futures (a Release wakes the upload
                // thread directly); the futures users see are completed on the events thread.
                .directExecutor()
                .build();
    }

    /** Opens a stream and sends the join; the future completes with the welcome or the stream's error. */
    CompletableFuture<Welcome> open() {
        CompletableFuture<Welcome> future = new CompletableFuture<>();
        // the token as call metadata (every call carries it), and in the join for coordinators that read it there
        WorkerSessionServiceGrpc.WorkerSessionServiceStub stub = WorkerSessionServiceGrpc.newStub(channel)
                .withInterceptors(BearerToken.clientInterceptor(config.token()));
        StreamObserver<AgentMessage> stream = stub.session(new Inbound(future));
        synchronized (sendLock) {
            out = stream;
            stream.onNext(AgentMessage.newBuilder().setJoin(Join.newBuilder()
                    .setRunId(config.runId())
                    .setWorkerIndex(config.workerIndex())
                    .setWorldSize(config.worldSize())
                    .setAgentVersion(CairnAgent.VERSION)
                    .setToken(config.token())).build());
        }
        return future;
    }

    /** Sends on the current stream; false when there is none or it failed. While closing, only shard reports go out. */
    boolean send(AgentMessage msg) {
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

    boolean connected() {
        return connected;
    }

    /** The last welcome (null before the first join). */
    Welcome welcome() {
        return welcome;
    }

    long currentStep() {
        return currentStep;
    }

    long targetStep() {
        return targetStep;
    }

    /** Forgets the coordinator's target once a save at it started. */
    void clearTarget(long step) {
        if (targetStep == step) {
            targetStep = -1;
        }
    }

    /** Records the trainer's progress (heartbeats carry it). */
    void noteStep(long step) {
        if (step > currentStep) {
            currentStep = step;
        }
    }

    long lastCommittedStep() {
        synchronized (commitLock) {
            return lastCommittedStep;
        }
    }

    /** Waits until a checkpoint after {@code step} is committed, or the deadline ({@link System#nanoTime}) passes. */
    void awaitCommitAfter(long step, long deadlineNanos) throws InterruptedException {
        synchronized (commitLock) {
            while (lastCommittedStep <= step && System.nanoTime() < deadlineNanos) {
                commitLock.wait(Math.max(1, (deadlineNanos - System.nanoTime()) / 1_000_000));
            }
        }
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
                case RELEASE -> tracker.onRelease(msg.getRelease());
                case COMMITTED -> {
                    tracker.onCommitted(msg.getCommitted().getCheckpoint());
                    noteCommitted(msg.getCommitted().getCheckpoint().getStep());
                }
                case ABORTED -> tracker.onAborted(msg.getAborted());
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
            tracker.failAll(SaveOutcome.COORDINATOR_LOST, "connection to coordinator " + config.coordinator() + " lost: " + status);
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
        if (w.hasLatest()) {
            noteCommitted(w.getLatest().getStep());
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

    private void noteCommitted(long step) {
        synchronized (commitLock) {
            lastCommittedStep = Math.max(lastCommittedStep, step);
            commitLock.notifyAll();
        }
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
                    open();
                }
            }, delay, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            // closing
        }
    }

    /** Leaves the run: no more heartbeats or reconnects, the stream half-closed. Shard reports may still be sent. */
    void leave() {
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
    }

    /** Stops the scheduler; the channel is its owner's to shut down. */
    void shutdown() {
        closed = true;
        scheduler.shutdownNow();
    }

    /** Cancels the stream (a join that failed or timed out on a channel this agent does not own). */
    void abandon() {
        synchronized (sendLock) {
            if (out instanceof ClientCallStreamObserver<AgentMessage> call) {
                try {
                    call.cancel("agent gave up joining", null);
                } catch (RuntimeException e) {
                    LOG.debug("cancelling session: {}", e.toString());
                }
            }
        }
        shutdown();
    }
}
