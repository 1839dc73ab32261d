package dev.cairn.coordinator;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.protocol.BearerToken;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** One worker session over a real (Netty) connection, made with the generated stub only. */
final class WireClient implements AutoCloseable {
    private final ManagedChannel channel;
    private final CompletableFuture<CoordinatorMessage> first = new CompletableFuture<>();
    private final CompletableFuture<Status> ended = new CompletableFuture<>();
    private final StreamObserver<AgentMessage> out;

    WireClient(int port, ChannelCredentials credentials, String headerToken) {
        channel = NettyChannelBuilder.forAddress("127.0.0.1", port, credentials).build();
        var stub = WorkerSessionServiceGrpc.newStub(channel).withInterceptors(BearerToken.clientInterceptor(headerToken))
                .withDeadlineAfter(20, TimeUnit.SECONDS);
        out = stub.session(new StreamObserver<>() {
            @Override
            public void onNext(CoordinatorMessage m) {
                first.complete(m);
            }

            @Override
            public void onError(Throwable t) {
                Status s = Status.fromThrowable(t);
                first.completeExceptionally(s.asRuntimeException());
                ended.complete(s);
            }

            @Override
            public void onCompleted() {
                ended.complete(Status.OK);
            }
        });
    }

    static Join join(String run, int world, int index, String token) {
        return Join.newBuilder().setRunId(run).setWorldSize(world).setWorkerIndex(index).setToken(token).build();
    }

    /** Sends the join; returns the coordinator's first answer or the status the session ended with. */
    Object joinAndAwait(Join join) throws Exception {
        out.onNext(AgentMessage.newBuilder().setJoin(join).build());
        try {
            return first.get(15, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            return Status.fromThrowable(e.getCause());
        }
    }

    @Override
    public void close() {
        try {
            out.onCompleted();
        } catch (RuntimeException e) {
            // already ended
        }
        channel.shutdownNow();
    }
}
