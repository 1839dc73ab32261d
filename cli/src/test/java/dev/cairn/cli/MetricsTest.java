package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.StorageUri;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator's /metrics after real saves by a real agent on loopback: the values, that every
 * metric the shipped dashboard and alert rules use is exposed, and promtool's checks.
 */
class MetricsTest {
    private static final Path DEPLOY = Path.of(System.getProperty("user.dir")).getParent().resolve("deploy");

    @TempDir
    static Path root;

    private static Coordinator coordinator;
    private static HTTPServer server;
    private static String scrape;
    private static String agentScrape;

    @BeforeAll
    static void saveTwiceAndScrape() throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder("run-m", 1, StorageUri.parse(root.toString()))
                .retention(RetentionPolicy.keepLast(1)).build();
        coordinator = Coordinator.start(config, "127.0.0.1", 0);
        server = HTTPServer.builder().hostname("127.0.0.1").port(0).registry(coordinator.metrics()).buildAndStart();
        String address = "127.0.0.1:" + coordinator.port();
        try (CairnAgent agent = CairnAgent.connect(AgentConfig.builder(address, "run-m", 0, 1).stagingBytes(1 << 20).build())) {
            for (long step : new long[] {10, 20}) {
                agent.save(step, s -> s.put("model/w", new byte[4096])).await(Duration.ofSeconds(30));
            }
            try (HTTPServer agentServer = HTTPServer.builder().hostname("127.0.0.1").port(0).registry(agent.metrics()).buildAndStart()) {
                agentScrape = get(agentServer.getPort(), "/metrics");
            }
        }
        // retention of step 10 runs after the commit of step 20, on the I/O executor
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> {
            scrape = get(server.getPort(), "/metrics");
            return scrape.contains("cairn_retention_deleted_checkpoints_total 1.0");
        });
    }

    @AfterAll
    static void stop() {
        server.close();
        coordinator.close();
    }

    private static String get(int port, String path) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + path)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        return r.body();
    }

    @Test
    void metricsCountTheSavesBytesWorkersAndRetention() {
        assertThat(scrape).contains("cairn_saves_total{outcome=\"COMMITTED\"} 2.0")
                .contains("cairn_saves_total{outcome=\"WORKER_LOST\"} 0.0")
                .contains("cairn_save_barrier_duration_seconds_count 2")
                .contains("cairn_save_upload_duration_seconds_count 2")
                .contains("cairn_save_commit_duration_seconds_count 2")
                .contains("cairn_save_max_worker_stall_seconds_count 2")
                .contains("cairn_latest_committed_step 20.0")
                .contains("cairn_world_size 1.0")
                .contains("cairn_retention_deleted_checkpoints_total 1.0")
                .contains("cairn_latest_committed_age_seconds ");
        Matcher bytes = Pattern.compile("(?m)^cairn_committed_bytes_total (\\S+)").matcher(scrape);
        assertThat(bytes.find()).isTrue();
        assertThat(Double.parseDouble(bytes.group(1))).isGreaterThanOrEqualTo(2 * 4096);
        // the agent closed its session: no worker connected now
        assertThat(scrape).contains("cairn_connected_workers 0.0");
    }

    @Test
    void theAgentExposesItsStallStagingAndUploads() {
        assertThat(agentScrape).contains("cairn_agent_stall_seconds_count 2")
                .contains("cairn_agent_upload_duration_seconds_count 2")
                .contains("cairn_agent_staging_in_use_bytes ")
                .contains("cairn_agent_staging_limit_bytes 1048576.0");
        Matcher bytes = Pattern.compile("(?m)^cairn_agent_uploaded_bytes_total (\\S+)").matcher(agentScrape);
        assertThat(bytes.find()).isTrue();
        assertThat(Double.parseDouble(bytes.group(1))).isGreaterThanOrEqualTo(2 * 4096);
    }

    @Test
    void everyMetricTheDashboardAndTheAlertRulesUseIsExposed() throws Exception {
        Set<String> used = new TreeSet<>();
        for (Path file : new Path[] {DEPLOY.resolve("grafana/cairn-dashboard.json"), DEPLOY.resolve("prometheus/cairn-alerts.yml")}) {
            Matcher m = Pattern.compile("cairn_[a-z_]+").matcher(Files.readString(file));
            while (m.find()) {
                used.add(m.group());
            }
        }
        assertThat(used).contains("cairn_saves_total", "cairn_latest_committed_age_seconds", "cairn_save_barrier_duration_seconds_bucket");
        for (String name : used) {
            assertThat(scrape + agentScrape).as("metric %s used by deploy/ is exposed", name).containsPattern("(?m)^" + name + "[{ ]");
        }
    }

    @Test
    void promtoolAcceptsTheExpositionAndTheRules() throws Exception {
        assumeTrue(onPath("promtool"), "promtool is not installed (Debian package prometheus; .ci/run installs it)");
        for (String exposition : new String[] {scrape, agentScrape}) {
            Process metrics = new ProcessBuilder("promtool", "check", "metrics").redirectErrorStream(true).start();
            metrics.getOutputStream().write(exposition.getBytes(StandardCharsets.UTF_8));
            metrics.getOutputStream().close();
            String metricsOut = new String(metrics.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(metrics.waitFor()).as(metricsOut).isZero();
        }

        Process rules = new ProcessBuilder("promtool", "check", "rules", DEPLOY.resolve("prometheus/cairn-alerts.yml").toString())
                .redirectErrorStream(true).start();
        String rulesOut = new String(rules.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(rules.waitFor()).as(rulesOut).isZero();
        assertThat(rulesOut).contains("SUCCESS");
    }

    @Test
    void theHealthServiceSaysServingAfterRecovery() {
        ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", coordinator.port()).usePlaintext().build();
        try {
            HealthCheckResponse r = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());
            assertThat(r.getStatus()).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
            HealthCheckResponse session = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.newBuilder().setService("cairn.v1.WorkerSessionService").build());
            assertThat(session.getStatus()).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
        } finally {
            channel.shutdownNow();
        }
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }
}
