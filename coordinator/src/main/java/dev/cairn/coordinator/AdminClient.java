package dev.cairn.coordinator;

import dev.cairn.proto.v1.AdminServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** A short-lived connection to a coordinator's admin service (the CLI's {@code status}/{@code trigger}, chaos campaigns). */
public final class AdminClient implements AutoCloseable {
    private final ManagedChannel channel;
    /** The admin stub; every call made through it has a 10 s deadline. */
    public final AdminServiceGrpc.AdminServiceBlockingStub stub;

    /** Connects to {@code host:port} in plaintext, without a token. */
    public AdminClient(String address) {
        this(address, "");
    }

    /**
     * Connects to {@code host:port} in plaintext; a non-empty {@code token} is sent with every call
     * (a coordinator started with a token refuses admin calls without it).
     */
    public AdminClient(String address, String token) {
        if (!address.matches("[^:\\s]+:\\d{1,5}")) {
            throw new IllegalArgumentException("coordinator address '" + address + "' is not host:port");
        }
        String[] hp = address.split(":");
        channel = NettyChannelBuilder.forAddress(hp[0], Integer.parseInt(hp[1])).usePlaintext().build();
        AdminServiceGrpc.AdminServiceBlockingStub s = AdminServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
        if (token != null && !token.isEmpty()) {
            Metadata headers = new Metadata();
            headers.put(AdminAuth.AUTHORIZATION, AdminAuth.BEARER + token);
            s = s.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
        }
        stub = s;
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }
}
