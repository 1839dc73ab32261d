package dev.cairn.protocol;

import io.grpc.ClientInterceptor;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;

/**
 * The run's shared secret on the wire: gRPC metadata {@code authorization: Bearer <token>} on every
 * call (worker sessions and admin calls alike). Both sides use this class, so the header's spelling
 * and the comparison exist once.
 */
public final class BearerToken {
    /** The metadata key the token travels in. */
    public static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final String SCHEME = "bearer ";

    private BearerToken() {}

    /**
     * A client interceptor that sends {@code token} with every call of the channel or stub it is
     * attached to; {@code null} or empty sends nothing.
     *
     * @throws IllegalArgumentException when the token is not printable ASCII (it could not travel in a header)
     */
    public static ClientInterceptor clientInterceptor(String token) {
        Metadata headers = new Metadata();
        if (token != null && !token.isEmpty()) {
            if (!token.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
                throw new IllegalArgumentException("the token must be printable ASCII without spaces");
            }
            headers.put(AUTHORIZATION, "Bearer " + token);
        }
        return MetadataUtils.newAttachHeadersInterceptor(headers);
    }

    /**
     * The token of an {@code authorization} header value ({@code Bearer <token>}, scheme
     * case-insensitive), or null when the value is absent or not a bearer token.
     */
    public static String fromHeader(String headerValue) {
        if (headerValue == null || headerValue.length() < SCHEME.length()
                || !headerValue.substring(0, SCHEME.length()).toLowerCase(Locale.ROOT).equals(SCHEME)) {
            return null;
        }
        return headerValue.substring(SCHEME.length()).strip();
    }

    /**
     * Whether {@code presented} is {@code expected}, in time independent of where they differ and of
     * their lengths (both are hashed first, the digests compared with {@link MessageDigest#isEqual}).
     * A null {@code presented} never matches.
     */
    public static boolean matches(String expected, String presented) {
        if (presented == null) {
            return false;
        }
        return MessageDigest.isEqual(sha256(expected), sha256(presented));
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
