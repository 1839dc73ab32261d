package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.AgentException;
import dev.cairn.agent.CairnAgent;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.StorageUri;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** A worker started before its coordinator waits for it, logging that it waits, up to its connect timeout. */
class AgentWaitsForCoordinatorTest {
    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private final Logger agentLog = (Logger) LoggerFactory.getLogger(CairnAgent.class);

    private Level levelBefore;

    @BeforeEach
    void captureLogs() {
        logs.start();
        levelBefore = agentLog.getLevel();
        agentLog.setLevel(Level.INFO); // the tests' logback configuration keeps only warnings
        agentLog.addAppender(logs);
    }

    @AfterEach
    void stopCapturing() {
        agentLog.detachAppender(logs);
        agentLog.setLevel(levelBefore);
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private boolean loggedWaiting() {
        return logs.list.stream().anyMatch(e -> e.getFormattedMessage().contains("waiting for coordinator"));
    }

    @Test
    void aWorkerStartedFirstJoinsOnceTheCoordinatorIsUp(@TempDir Path root) throws Exception {
        int port = freePort();
        AgentConfig config = AgentConfig.builder("127.0.0.1:" + port, "run-w", 0, 1).stagingBytes(1 << 20)
                .connectTimeout(Duration.ofSeconds(30)).build();

        CompletableFuture<CairnAgent> joining = CompletableFuture.supplyAsync(() -> {
            try {
                return CairnAgent.connect(config);
            } catch (AgentException e) {
                throw new IllegalStateException(e);
            }
        });
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(this::loggedWaiting);
        assertThat(joining).as("still waiting, not failed").isNotDone();
        assertThat(logs.list).anySatisfy(e -> assertThat(e.getFormattedMessage())
                .contains("worker 0: waiting for coordinator 127.0.0.1:" + port).contains("up to 30 s"));

        try (Coordinator coordinator = Coordinator.start(CoordinatorConfig.builder("run-w", 1, StorageUri.parse(root.toString())).build(),
                "127.0.0.1", port);
             CairnAgent agent = joining.get(30, TimeUnit.SECONDS)) {
            assertThat(agent.workerIndex()).isZero();
            assertThat(coordinator.connectedWorkers()).containsExactly(0);
        }
    }

    @Test
    void withoutACoordinatorTheJoinFailsAfterTheConnectTimeoutNamingIt() throws Exception {
        int port = freePort();
        AgentConfig config = AgentConfig.builder("127.0.0.1:" + port, "run-w", 0, 1).stagingBytes(1 << 20)
                .connectTimeout(Duration.ofSeconds(2)).build();
        long t0 = System.nanoTime();

        Throwable e = catchThrowable(() -> CairnAgent.connect(config));

        double seconds = (System.nanoTime() - t0) / 1e9;
        assertThat(e).isInstanceOf(AgentException.class).hasMessageContaining("coordinator 127.0.0.1:" + port)
                .hasMessageContaining("within 2 s").hasMessageNotContaining("io exception");
        assertThat(seconds).isBetween(1.9, 10.0);
        assertThat(loggedWaiting()).isTrue();
    }
}
