package dev.cairn.coordinator;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * Requires the run's token on every admin call when one is set: metadata
 * {@code authorization: Bearer <token>}, compared in constant time. A call without it or with
 * another one ends with UNAUTHENTICATED before the service sees it.
 */
final class AdminAuth implements ServerInterceptor {
    /** The metadata key the token travels in. */
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    static final String BEARER = "Bearer ";

    private final byte[] expected;

    AdminAuth(String token) {
        this.expected = (BEARER + token).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String presented = headers.get(AUTHORIZATION);
        byte[] got = presented == null ? new byte[0] : presented.getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(expected, got)) {
            call.close(Status.UNAUTHENTICATED.withDescription(presented == null
                    ? "this coordinator requires a token (--token or CAIRN_TOKEN)" : "wrong token"), new Metadata());
            return new ServerCall.Listener<>() {};
        }
        return next.startCall(call, headers);
    }
}
