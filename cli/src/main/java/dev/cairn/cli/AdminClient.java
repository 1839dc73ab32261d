package dev.cairn.cli;

import dev.cairn.proto.v1.AdminServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** A short-lived admin connection; every call has a 10 s deadline. */
final class AdminClient implements AutoCloseable {
    private final ManagedChannel channel;
    final AdminServiceGrpc.AdminServiceBlockingStub stub;

    AdminClient(String address) {
        if (!address.matches("[^:\\s]+:\\d{1,5}")) {
            throw new UserError("coordinator address '" + address + "' is not host:port");
        }
        String[] hp = address.split(":");
        channel = NettyChannelBuilder.forAddress(hp[0], Integer.parseInt(hp[1])).usePlaintext().build();
        stub = AdminServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }
}
