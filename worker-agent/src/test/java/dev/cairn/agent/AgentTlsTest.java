package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.protocol.TestCertificates;
import dev.cairn.storage.StorageUri;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The agent against a mutual-TLS coordinator with a token: it joins and saves; misconfigured agents fail fast with one line. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class AgentTlsTest {
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(20);

    @TempDir
    static Path dir;
    static TestCertificates certs;
    static Coordinator coordinator;
    static String address;

    @BeforeAll
    static void start() throws Exception {
        certs = TestCertificates.generate(dir.resolve("certs"));
        CoordinatorConfig config = CoordinatorConfig.builder(TestCluster.RUN, 1, StorageUri.parse(dir.resolve("store").toString()))
                .heartbeatInterval(Duration.ofMillis(200)).token("s3cret")
                .tls(certs.serverCert, certs.serverKey, certs.caCert).build();
        coordinator = Coordinator.start(config, "127.0.0.1", 0);
        address = "127.0.0.1:" + coordinator.port();
    }

    @AfterAll
    static void stop() {
        coordinator.close();
    }

    private static AgentConfig config(UnaryOperator<AgentConfig.Builder> settings) {
        return settings.apply(AgentConfig.builder(address, TestCluster.RUN, 0, 1).stagingBytes(1 << 20).connectTimeout(CONNECT_TIMEOUT)).build();
    }

    @Test
    void anAgentWithTheCaItsCertificateAndTheTokenSaves() throws Exception {
        try (CairnAgent agent = CairnAgent.connect(config(b -> b.token("s3cret").tlsCa(certs.caCert)
                .tlsClientCert(certs.clientCert, certs.clientKey)))) {
            SavedCheckpoint saved = agent.save(7, snap -> snap.put("model/w", new float[] {1f, 2f})).await(Duration.ofSeconds(20));
            assertThat(saved.step()).isEqualTo(7);
        }
    }

    @Test
    void misconfiguredAgentsFailWellBeforeTheirConnectTimeout() {
        record Case(String what, UnaryOperator<AgentConfig.Builder> settings, String message) {}
        for (Case c : new Case[] {
            new Case("plaintext", b -> b.token("s3cret"), "could not join"),
            new Case("no client certificate", b -> b.token("s3cret").tlsCa(certs.caCert), "could not join"),
            new Case("wrong CA", b -> b.token("s3cret").tlsCa(certs.otherCaCert).tlsClientCert(certs.clientCert, certs.clientKey), "could not join"),
            new Case("wrong token", b -> b.token("wrong").tlsCa(certs.caCert).tlsClientCert(certs.clientCert, certs.clientKey), "wrong token"),
        }) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> CairnAgent.connect(config(c.settings()))).as(c.what())
                    .isInstanceOfSatisfying(AgentException.class, e -> {
                        assertThat(e.getMessage()).contains(c.message()).doesNotContain("s3cret");
                        assertThat(e.getMessage().lines()).hasSize(1);
                    });
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).as(c.what()).isLessThan(CONNECT_TIMEOUT.dividedBy(2));
        }
    }

    @Test
    void badTlsFilesAreRefusedWhenTheConfigIsBuilt() throws Exception {
        Path garbage = Files.writeString(dir.resolve("garbage.pem"), "garbage\n");
        assertThatThrownBy(() -> config(b -> b.tlsCa(garbage))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(garbage.toString());
        assertThatThrownBy(() -> config(b -> b.tlsClientCert(certs.clientCert, null))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("go together");
    }
}
