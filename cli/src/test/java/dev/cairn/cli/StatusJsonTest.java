package dev.cairn.cli;

import static dev.cairn.cli.CliRun.cairn;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.cli.CliRun.Result;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code status --json} and {@code trigger --json} against a real coordinator on loopback with one real agent. */
class StatusJsonTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void statusAndTriggerPrintOneObject(@TempDir Path root) throws Exception {
        CoordinatorConfig config = CoordinatorConfig.builder("run-s", 1, StorageUri.parse(root.toString())).build();
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
            String address = "127.0.0.1:" + coordinator.port();

            JsonNode before = JSON.readTree(cairn("status", "--coordinator", address, "--json").out());
            assertThat(before.get("runId").asText()).isEqualTo("run-s");
            assertThat(before.get("worldSize").asInt()).isEqualTo(1);
            assertThat(before.get("coordinator").asText()).isEqualTo(address);
            assertThat(before.get("storage").asText()).isEqualTo("file://" + root);
            assertThat(before.get("connectedWorkers")).isEmpty();
            assertThat(before.get("latest").isNull()).isTrue();
            assertThat(before.get("inFlight").isNull()).isTrue();
            assertThat(before.get("recentSaves").isArray()).isTrue();

            try (CairnAgent agent = CairnAgent.connect(AgentConfig.builder(address, "run-s", 0, 1).stagingBytes(1 << 20).build())) {
                Result trigger = cairn("trigger", "--coordinator", address, "--reason", "test", "--json");
                assertThat(trigger.exit()).as(trigger.err()).isZero();
                JsonNode t = JSON.readTree(trigger.out());
                assertThat(t.get("targetStep").asLong()).isPositive();
                assertThat(t.get("reason").asText()).isEqualTo("test");

                Result status = cairn("status", "--coordinator", address, "--json");
                assertThat(status.exit()).as(status.err()).isZero();
                JsonNode s = JSON.readTree(status.out());
                assertThat(s.get("connectedWorkers")).hasSize(1);
                assertThat(s.get("connectedWorkers").get(0).asInt()).isZero();
            }
        }
    }
}
