package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.protocol.TestCertificates;
import dev.cairn.storage.StorageUri;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cairn status/trigger} against a mutual-TLS coordinator with a token, and bad TLS files as one-line errors. */
class CliTlsTest {
    @TempDir
    static Path dir;
    static TestCertificates certs;
    static Coordinator coordinator;
    static String address;

    @BeforeAll
    static void start() throws Exception {
        certs = TestCertificates.generate(dir.resolve("certs"));
        StorageUri uri = StorageUri.parse(dir.resolve("run-1").toUri().toString());
        coordinator = Coordinator.start(CoordinatorConfig.builder("run-1", 1, uri).token("s3cret")
                .tls(certs.serverCert, certs.serverKey, certs.caCert).build(), "127.0.0.1", 0);
        address = "127.0.0.1:" + coordinator.port();
    }

    @AfterAll
    static void stop() {
        coordinator.close();
    }

    private static CliRun.Result cairn(String... args) {
        return CliRun.cairn(args);
    }

    @Test
    void statusAndTriggerOverMutualTls() {
        CliRun.Result r = cairn("status", "--coordinator", address, "--token", "s3cret",
                "--tls-ca", certs.caCert.toString(), "--tls-cert", certs.clientCert.toString(), "--tls-key", certs.clientKey.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("run run-1, world size 1");
        r = cairn("trigger", "--coordinator", address, "--token", "s3cret",
                "--tls-ca", certs.caCert.toString(), "--tls-cert", certs.clientCert.toString(), "--tls-key", certs.clientKey.toString());
        // the call got through TLS and the token: the coordinator answers that no worker is there to save
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("FAILED_PRECONDITION run run-1 has 0 of 1 workers connected");
    }

    @Test
    void refusedConnectionsAreOneLineErrors() {
        for (String[] args : new String[][] {
            {"status", "--coordinator", address, "--token", "s3cret"},                                      // plaintext
            {"status", "--coordinator", address, "--token", "s3cret", "--tls-ca", certs.caCert.toString()},  // no client certificate
            {"status", "--coordinator", address, "--token", "s3cret", "--tls-ca", certs.otherCaCert.toString(),
                "--tls-cert", certs.clientCert.toString(), "--tls-key", certs.clientKey.toString()},          // wrong CA
        }) {
            CliRun.Result r = cairn(args);
            assertThat(r.exit()).isEqualTo(2);
            assertThat(r.err()).startsWith("cairn: error: coordinator " + address + ": UNAVAILABLE").doesNotContain("\tat ");
            assertThat(r.err().strip().lines()).hasSize(1);
        }
        CliRun.Result r = cairn("status", "--coordinator", address, "--token", "wrong",
                "--tls-ca", certs.caCert.toString(), "--tls-cert", certs.clientCert.toString(), "--tls-key", certs.clientKey.toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("UNAUTHENTICATED wrong token").doesNotContain("s3cret");
    }

    @Test
    void badTlsFilesNameTheFile() throws Exception {
        Path garbage = Files.writeString(dir.resolve("garbage.pem"), "garbage\n");
        Path missing = dir.resolve("missing.pem");
        String storage = dir.resolve("other-run").toUri().toString();
        for (String[] args : new String[][] {
            {"coordinator", "--storage", storage, "--world", "1", "--port", "0", "--tls-cert", garbage.toString(), "--tls-key", certs.serverKey.toString()},
            {"coordinator", "--storage", storage, "--world", "1", "--port", "0", "--tls-cert", certs.serverCert.toString(), "--tls-key", missing.toString()},
            {"coordinator", "--storage", storage, "--world", "1", "--port", "0", "--tls-cert", certs.serverCert.toString(),
                "--tls-key", certs.serverKey.toString(), "--tls-client-ca", garbage.toString()},
            {"status", "--coordinator", address, "--tls-ca", garbage.toString()},
            {"trigger", "--coordinator", address, "--tls-ca", certs.caCert.toString(), "--tls-cert", certs.clientCert.toString(), "--tls-key", missing.toString()},
        }) {
            CliRun.Result r = cairn(args);
            assertThat(r.exit()).as(String.join(" ", args)).isEqualTo(2);
            assertThat(r.err()).startsWith("cairn: error: ").containsAnyOf(garbage.toString(), missing.toString()).doesNotContain("\tat ");
            assertThat(r.err().strip().lines()).hasSize(1);
        }
        assertThat(Files.exists(dir.resolve("other-run"))).isFalse();
    }
}
