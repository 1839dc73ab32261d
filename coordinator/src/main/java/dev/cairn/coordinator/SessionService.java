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
    private final Map<Integer, Session> sessions = new ConcurrentHashMap<>();

    SessionService(CoordinatorConfig config, EventLoop loop, SaveCoordinator machine) {
        this.config = config;
        this.loop = loop;
        this.machine = machine;
    }

    @Override
    public StreamObserver<AgentMessage> session(StreamObserver<CoordinatorMessage> responseObserver) {
        return new Session((ServerCallStreamObserver<CoordinatorMessage>) responseObserver);
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
            loop.post(() -> handle(msg));
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
            LOG.warn("closing the session of worker {} of run {}: {}", worker, config.runId(), status.getDescription());
            close(status);
            lost("protocol violation: " + status.getDescription());
        }

        @Override
        public void onError(Throwable t) {
            loop.postUrgent(() -> lost("stream broken: " + Status.fromThrowable(t)));
        }

        @Override
        public void onCompleted() {
            loop.postUrgent(() -> {
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
}
