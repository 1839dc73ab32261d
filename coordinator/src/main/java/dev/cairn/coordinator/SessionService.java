package dev.cairn.coordinator;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker-session gRPC service: one bidirectional stream per worker, every message handed to the
 * state machine on the event loop. Sends are serialized by the loop thread.
 */
final class SessionService extends WorkerSessionServiceGrpc.WorkerSessionServiceImplBase {
    private static final Logger LOG = LoggerFactory.getLogger(SessionService.class);

    private final CoordinatorConfig config;
    private final EventLoop loop;
    private final SaveCoordinator machine;
    /** A session that has not joined this long after it opened is closed. */
    static final long JOIN_DEADLINE_MILLIS = 5_000;

    private final Map<Integer, Session> sessions = new ConcurrentHashMap<>();
    private final AtomicInteger open = new AtomicInteger();

    SessionService(CoordinatorConfig config, EventLoop loop, SaveCoordinator machine) {
        this.config = config;
        this.loop = loop;
        this.machine = machine;
    }

    @Override
    public StreamObserver<AgentMessage> session(StreamObserver<CoordinatorMessage> responseObserver) {
        int max = maxSessions(config.worldSize());
        if (open.incrementAndGet() > max) {
            open.decrementAndGet();
            responseObserver.onError(Status.RESOURCE_EXHAUSTED.withDescription("coordinator of run " + config.runId()
                    + " has " + max + " sessions open, the most it accepts").asRuntimeException());
            return new NoOp();
        }
        ServerCallStreamObserver<CoordinatorMessage> out = (ServerCallStreamObserver<CoordinatorMessage>) responseObserver;
        // flow control: one message of a session in the event loop at a time, the next read only once
        // it was handled, so a client flooding its stream is held back by HTTP/2 flow control instead
        // of filling the loop's queue ahead of every other worker's messages
        out.disableAutoRequest();
        Session s = new Session(out, TokenAuth.AUTHENTICATED.get());
        out.request(1);
        loop.schedule(JOIN_DEADLINE_MILLIS, () -> {
            if (s.worker < 0 && !s.ended) {
                s.close(Status.DEADLINE_EXCEEDED.withDescription("no join within " + JOIN_DEADLINE_MILLIS + " ms of opening the session"));
            }
        });
        return s;
    }

    /** Sessions open at once, joined or not: four per worker (reconnects overlap) and 16 more. */
    static int maxSessions(int worldSize) {
        return 4 * worldSize + 16;
    }

    private static final class NoOp implements StreamObserver<AgentMessage> {
        @Override
        public void onNext(AgentMessage value) {}

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {}
    }

    void send(int worker, CoordinatorMessage message) {
        Session s = sessions.get(worker);
        if (s != null) {
            s.send(message);
        }
    }

    void close(int worker, Status status) {
        Session s = sessions.get(worker);
        if (s != null) {
            s.close(status);
        }
    }

    /** Ends every session (loop thread). */
    void closeAll(Status status) {
        for (Session s : List.copyOf(sessions.values())) {
            s.close(status);
        }
    }

    /** One worker's stream. */
    private final class Session implements StreamObserver<AgentMessage> {
        private final ServerCallStreamObserver<CoordinatorMessage> out;
        /** The call carried the run's token in its metadata. */
        private final boolean authenticated;
        private int worker = -1;
        private boolean ended;
        private final java.util.concurrent.atomic.AtomicBoolean counted = new java.util.concurrent.atomic.AtomicBoolean(true);

        Session(ServerCallStreamObserver<CoordinatorMessage> out, boolean authenticated) {
            this.out = out;
            this.authenticated = authenticated;
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

        /** The stream is over (closed by either side): it no longer counts against the cap. */
        private void release() {
            if (counted.compareAndSet(true, false)) {
                open.decrementAndGet();
            }
        }

        void close(Status status) {
            release();
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
            String violation = ProtocolLimits.violation(msg);
            if (violation != null) {
                loop.post(() -> violation(Status.INVALID_ARGUMENT.withDescription(
                        (worker >= 0 ? "worker " + worker + ": " : "") + violation)));
                return;
            }
            loop.post(() -> {
                handle(msg);
                if (!ended) {
                    requestNext();
                }
            });
        }

        private void requestNext() {
            try {
                out.request(1);
            } catch (RuntimeException e) {
                LOG.debug("worker {} stream: {}", worker, e.toString());
            }
        }

        private void handle(AgentMessage msg) {
            if (ended) {
                return;
            }
            if (worker < 0) {
                join(msg);
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
                case JOIN -> violation(Status.FAILED_PRECONDITION.withDescription("worker " + worker + " sent a second join on one session"));
                default -> violation(Status.INVALID_ARGUMENT.withDescription("worker " + worker + " sent an unknown message"));
            }
        }

        private void join(AgentMessage msg) {
            if (!msg.hasJoin()) {
                close(Status.FAILED_PRECONDITION.withDescription("the first message of a session must be a join"));
                return;
            }
            if (!TokenAuth.joinAdmitted(config.token(), msg.getJoin().getToken(), authenticated)) {
                LOG.warn("rejected join of worker {} to run {}: wrong or missing token", msg.getJoin().getWorkerIndex(), config.runId());
                close(Status.UNAUTHENTICATED.withDescription("worker " + msg.getJoin().getWorkerIndex() + ": wrong or missing token for run " + config.runId()));
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
        }

        /** A protocol violation ends the session, and the worker is lost at once. */
        private void violation(Status status) {
            if (ended) {
                return;
            }
            LOG.warn("closing the session of worker {} of run {}: {}", worker, config.runId(), status.getDescription());
            close(status);
            lost("protocol violation: " + status.getDescription());
        }

        @Override
        public void onError(Throwable t) {
            release();
            loop.postUrgent(() -> lost("stream broken: " + Status.fromThrowable(t)));
        }

        @Override
        public void onCompleted() {
            release();
            loop.postUrgent(() -> {
                left();
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

        private void left() {
            if (worker >= 0) {
                sessions.remove(worker, this);
                machine.sessionLeft(worker, this);
            }
        }

        private void lost(String cause) {
            if (worker >= 0) {
                sessions.remove(worker, this);
                machine.sessionLost(worker, this, cause);
            }
        }
    }
}
