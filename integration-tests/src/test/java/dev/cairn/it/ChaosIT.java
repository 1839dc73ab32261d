package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Runs {@code cairn chaos} against a local cluster of real processes. The campaign length comes
 * from {@code -Dchaos.rounds} (default 11: every fault kind once); the {@code chaos-long} profile
 * of this module runs hundreds of rounds.
 */
class ChaosIT {
    private static final ObjectMapper JSON = new ObjectMapper();

    record Run(int exitCode, JsonNode report) {}

    private static Run chaos(String... args) throws Exception {
        List<String> argv = new ArrayList<>(List.of("chaos", "--json"));
        argv.addAll(List.of(args));
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute(argv.toArray(String[]::new));
        } finally {
            System.setOut(out);
        }
        String text = captured.toString(StandardCharsets.UTF_8).trim();
        String last = text.substring(text.lastIndexOf('\n') + 1);
        System.out.println("cairn " + String.join(" ", argv) + " -> exit " + code + ": " + last);
        return new Run(code, JSON.readTree(last));
    }

    @Test
    void campaignOnLocalStorageHoldsEveryInvariant() throws Exception {
        int rounds = Integer.getInteger("chaos.rounds", 11);
        long seed = Long.getLong("chaos.seed", 7);
        Run run = chaos("--rounds", Integer.toString(rounds), "--seed", Long.toString(seed), "--workers", "3");

        assertThat(run.report().get("violationMessages").toString()).isEqualTo("[]");
        assertThat(run.report().get("violations").asInt()).isZero();
        assertThat(run.exitCode()).isZero();
        assertThat(run.report().get("rounds").asInt()).isEqualTo(rounds);
        assertThat(run.report().get("seed").asLong()).isEqualTo(seed);
        assertThat(run.report().get("committed").asInt()).isGreaterThanOrEqualTo(rounds);
        assertThat(run.report().get("aborted").asInt()).isPositive();
        assertThat(run.report().get("maxDetectMs").asLong()).isBetween(0L, 10_000L);
        JsonNode faults = run.report().get("faults");
        int kinds = 0;
        for (JsonNode count : faults) {
            if (count.asInt() > 0) {
                kinds++;
            }
        }
        // the schedule deals every kind once per 11 rounds
        assertThat(kinds).isGreaterThanOrEqualTo(Math.min(11, rounds));
    }

    @Test
    void brokenCommitPathMakesTheCampaignFail() throws Exception {
        // a coordinator that commits before every shard is durable: the checker must catch it
        Run run = chaos("--rounds", "1", "--seed", "3", "--workers", "2", "--faults", "worker-kill-mid-upload",
                "--unsafe-commit-before-durable");

        assertThat(run.exitCode()).isEqualTo(1);
        assertThat(run.report().get("violations").asInt()).isPositive();
        // the early manifest names a shard that was not durable: it does not verify / restore
        assertThat(run.report().get("violationMessages").toString()).contains("does not restore byte for byte");
    }

    /**
     * A short seeded campaign on an embedded MiniDFSCluster / S3Proxy: one round each of the
     * backend's storage fault (hdfs: a DataNode stopped mid-save; s3: resets, 5xx and unanswered
     * PUTs through a relay), a worker killed mid-upload, the coordinator killed right after the
     * manifest write, and a split-brain commit race.
     */
    @ParameterizedTest
    @ValueSource(strings = {"hdfs", "s3"})
    void shortCampaignOnEmbeddedBackendHoldsEveryInvariant(String backend) throws Exception {
        long started = System.nanoTime();
        Run run = chaos("--backend", backend, "--rounds", "4", "--seed", "5", "--workers", "2",
                "--faults", "storage-read-only,worker-kill-mid-upload,coordinator-kill-after-manifest,split-brain");
        System.out.printf("chaos --backend %s: %.1f s%n", backend, (System.nanoTime() - started) / 1e9);

        assertThat(run.report().get("violationMessages").toString()).isEqualTo("[]");
        assertThat(run.exitCode()).isZero();
        assertThat(run.report().get("backend").asText()).isEqualTo(backend);
        assertThat(run.report().get("faults").get("storage-read-only").asInt()).isEqualTo(1);
        assertThat(run.report().get("storageFaultsInjected").asInt()).isPositive();
        assertThat(run.report().get("aborted").asInt()).isPositive();
    }

    @Test
    void unavailableBackendIsABadOption() throws Exception {
        assertThat(Main.execute("chaos", "--backend", "ftp")).isEqualTo(2);
        assertThat(Main.execute("chaos", "--workers", "1")).isEqualTo(2);
        assertThat(Main.execute("chaos", "--faults", "meteor-strike")).isEqualTo(2);
    }
}
