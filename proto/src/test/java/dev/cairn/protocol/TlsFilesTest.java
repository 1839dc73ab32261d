package dev.cairn.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TlsFilesTest {
    @TempDir
    static Path dir;
    static TestCertificates certs;

    @BeforeAll
    static void generate() throws Exception {
        certs = TestCertificates.generate(dir.resolve("certs"));
    }

    @Test
    void validFilesMakeTlsCredentialsAndNoFilesPlaintext() {
        assertThat(TlsFiles.server(null, null, null)).isInstanceOf(InsecureServerCredentials.class);
        assertThat(TlsFiles.client(null, null, null)).isInstanceOf(InsecureChannelCredentials.class);
        assertThat(TlsFiles.server(certs.serverCert, certs.serverKey, null)).isInstanceOf(TlsServerCredentials.class);
        TlsServerCredentials mutual = (TlsServerCredentials) TlsFiles.server(certs.serverCert, certs.serverKey, certs.caCert);
        assertThat(mutual.getClientAuth()).isEqualTo(TlsServerCredentials.ClientAuth.REQUIRE);
        assertThat(TlsFiles.client(certs.caCert, null, null)).isInstanceOf(TlsChannelCredentials.class);
        TlsChannelCredentials client = (TlsChannelCredentials) TlsFiles.client(certs.caCert, certs.clientCert, certs.clientKey);
        assertThat(client.getCertificateChain()).isNotNull();
    }

    @Test
    void badFilesAreNamed() throws Exception {
        Path missing = dir.resolve("missing.pem");
        Path empty = Files.writeString(dir.resolve("empty.pem"), "");
        Path garbage = Files.writeString(dir.resolve("garbage.pem"), "not a certificate at all\n");
        Path truncated = Files.writeString(dir.resolve("truncated.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        assertThatThrownBy(() -> TlsFiles.server(missing, certs.serverKey, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(missing.toString()).hasMessageContaining("does not exist");
        assertThatThrownBy(() -> TlsFiles.server(certs.serverCert, empty, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(empty.toString()).hasMessageContaining("empty");
        assertThatThrownBy(() -> TlsFiles.client(garbage, null, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(garbage.toString()).hasMessageContaining("not PEM");
        assertThatThrownBy(() -> TlsFiles.client(truncated, null, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(truncated.toString());
        // a certificate where the key belongs, and the key of another certificate
        assertThatThrownBy(() -> TlsFiles.server(certs.serverCert, certs.serverCert, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("private key " + certs.serverCert);
        assertThatThrownBy(() -> TlsFiles.server(certs.serverCert, certs.clientKey, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not belong to the certificate in " + certs.serverCert);
        assertThatThrownBy(() -> TlsFiles.server(certs.serverCert, certs.serverKey, garbage))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(garbage.toString());
    }

    @Test
    void halfAPairIsRefused() {
        assertThatThrownBy(() -> TlsFiles.server(certs.serverCert, null, null)).hasMessageContaining("--tls-cert and --tls-key go together");
        assertThatThrownBy(() -> TlsFiles.server(null, null, certs.caCert)).hasMessageContaining("--tls-client-ca needs");
        assertThatThrownBy(() -> TlsFiles.client(certs.caCert, null, certs.clientKey)).hasMessageContaining("go together");
    }
}
