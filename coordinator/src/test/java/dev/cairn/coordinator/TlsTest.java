package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.protocol.TestCertificates;
import dev.cairn.protocol.TlsFiles;
import dev.cairn.storage.StorageUri;
import io.grpc.ChannelCredentials;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The coordinator serving TLS and mutual TLS on a real socket, with certificates the test makes itself. */
class TlsTest {
    private static final String RUN = "run-1";
    /** A refused handshake must fail well within the admin client's 10 s deadline, not by it. */
    private static final Duration FAILS_WITHIN = Duration.ofSeconds(5);

    @TempDir
    static Path dir;
    static TestCertificates certs;

    @BeforeAll
    static void generate() throws Exception {
        certs = TestCertificates.generate(dir.resolve("certs"));
    }

    private Coordinator start(UnaryOperator<CoordinatorConfig.Builder> tls) throws Exception {
        StorageUri uri = StorageUri.parse(dir.resolve("store-" + System.nanoTime()).resolve(RUN).toUri().toString());
        return Coordinator.start(tls.apply(CoordinatorConfig.builder(RUN, 1, uri).token("s3cret")).build(), "127.0.0.1", 0);
    }

    private static String status(int port, ChannelCredentials credentials) {
        try (AdminClient client = new AdminClient("127.0.0.1:" + port, "s3cret", credentials)) {
            return client.stub.status(StatusRequest.getDefaultInstance()).getRunId();
        }
    }

    private static void assertRefusedQuickly(int port, ChannelCredentials credentials) {
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> status(port, credentials)).isInstanceOfSatisfying(StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(FAILS_WITHIN);
    }

    @Test
    void tlsServesClientsThatTrustItsCa() throws Exception {
        try (Coordinator c = start(b -> b.tls(certs.serverCert, certs.serverKey, null))) {
            assertThat(status(c.port(), TlsFiles.client(certs.caCert, null, null))).isEqualTo(RUN);
            // a worker session over TLS, the token in its metadata
            try (WireClient w = new WireClient(c.port(), TlsFiles.client(certs.caCert, null, null), "s3cret")) {
                assertThat(w.joinAndAwait(WireClient.join(RUN, 1, 0, ""))).isInstanceOfSatisfying(CoordinatorMessage.class,
                        m -> assertThat(m.hasWelcome()).isTrue());
            }
        }
    }

    @Test
    void plaintextAndWrongCaClientsFailFastNotByTheirDeadline() throws Exception {
        try (Coordinator c = start(b -> b.tls(certs.serverCert, certs.serverKey, null))) {
            assertRefusedQuickly(c.port(), TlsFiles.client(null, null, null));
            assertRefusedQuickly(c.port(), TlsFiles.client(certs.otherCaCert, null, null));
        }
    }

    @Test
    void aTlsClientOfAPlaintextCoordinatorFailsFast() throws Exception {
        try (Coordinator c = start(b -> b)) {
            assertRefusedQuickly(c.port(), TlsFiles.client(certs.caCert, null, null));
            assertThat(status(c.port(), TlsFiles.client(null, null, null))).isEqualTo(RUN);
        }
    }

    @Test
    void mutualTlsRefusesClientsWithoutACertificateItsCaSigned() throws Exception {
        try (Coordinator c = start(b -> b.tls(certs.serverCert, certs.serverKey, certs.caCert))) {
            assertRefusedQuickly(c.port(), TlsFiles.client(certs.caCert, null, null));
            assertRefusedQuickly(c.port(), TlsFiles.client(certs.caCert, certs.strangerCert, certs.strangerKey));
            assertThat(status(c.port(), TlsFiles.client(certs.caCert, certs.clientCert, certs.clientKey))).isEqualTo(RUN);
        }
    }
}
