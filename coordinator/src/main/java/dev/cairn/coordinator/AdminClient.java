package dev.cairn.coordinator;

import dev.cairn.proto.v1.AdminServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** A short-lived connection to a coordinator's admin service (the CLI's {@code status}/{@code trigger}, chaos campaigns). */
public final class AdminClient implements AutoCloseable {
    private final ManagedChannel channel;
    /** The admin stub; every call made through it has a 10 s deadline. */
    public final AdminServiceGrpc.AdminServiceBlockingStub stub;

    /** Connects to {@code host:port} in plaintext. */
    public AdminClient(String address) {
        if (!address.matches("[^:\\s]+:\\d{1,5}")) {
            throw new IllegalArgumentException("coordinator address '" + address + "' is not host:port");
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
