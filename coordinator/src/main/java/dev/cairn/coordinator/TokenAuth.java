package dev.cairn.coordinator;

import dev.cairn.protocol.BearerToken;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Requires the run's token on every call when one is set: metadata {@code authorization: Bearer
 * <token>} ({@link BearerToken}), compared in constant time. A call with a wrong token, and an admin
 * call without one, ends with UNAUTHENTICATED before any service sees it; nothing of the presented
 * token is logged or echoed.
 *
 * <p>Protocol v1 clients may instead put the token in their {@code Join}: a worker session without
 * the header is let through unauthenticated ({@link #AUTHENTICATED} false), and the session service
 * then requires the join's token (see {@link #joinAdmitted}).
 */
final class TokenAuth implements ServerInterceptor {
    /** Whether the current call carried the right token in its metadata. */
    static final Context.Key<Boolean> AUTHENTICATED = Context.keyWithDefault("cairn-authenticated", false);

    private final String token;
    private final boolean headerOptional;

    private TokenAuth(String token, boolean headerOptional) {
        this.token = token;
        this.headerOptional = headerOptional;
    }

    /** For the admin service: the header is required. */
    static TokenAuth required(String token) {
        return new TokenAuth(token, false);
    }

    /** For the worker session: a missing header defers to the join's token field. */
    static TokenAuth headerOrJoin(String token) {
        return new TokenAuth(token, true);
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String header = headers.get(BearerToken.AUTHORIZATION);
        if (header == null && headerOptional) {
            return next.startCall(call, headers);
        }
        if (!BearerToken.matches(token, BearerToken.fromHeader(header))) {
            call.close(Status.UNAUTHENTICATED.withDescription(header == null
                    ? "this coordinator requires a token (--token or CAIRN_TOKEN)" : "wrong token"), new Metadata());
            return new ServerCall.Listener<>() {};
        }
        return Contexts.interceptCall(Context.current().withValue(AUTHENTICATED, true), call, headers, next);
    }

    /**
     * Whether a join may pass the token check: no token is set; or the join's token field, when
     * not empty, is the token; or (field empty) the session's call carried it in its metadata.
     */
    static boolean joinAdmitted(String token, String joinToken, boolean sessionAuthenticated) {
        if (token.isEmpty()) {
            return true;
        }
        return joinToken.isEmpty() ? sessionAuthenticated : BearerToken.matches(token, joinToken);
    }
}
