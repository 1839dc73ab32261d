package dev.cairn.cli;

import dev.cairn.harness.BenchScale;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Functional only: the benchmark runs with tiny sizes and prints every field; no timing is asserted. */
class BenchCommandTest {

    @Test
    void jsonHasEveryRatioRawFigureAndMachineFact(@TempDir Path dir) throws Exception {
        PrintStream stdout = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute("bench", "--storage", dir.toString(), "--workers", "2", "--shard-mib", "1", "--entry-kib", "256",
                    "--saves", "1", "--coord-workers", "1,3", "--coord-rounds", "3", "--coord-warmup", "2", "--jit-warmup", "2", "--warmup-saves", "1", "--memory-shard-mib", "8",
                    "--reshard", "3:2", "--reshard-mib", "1", "--json");
        } finally {
            System.setOut(stdout);
        }
        assertThat(code).isZero();
        JsonNode json = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8));
        for (String field : new String[] {"stallRatio", "writeRatio", "readRatio", "naiveStallRatio", "stallMs", "copyMs",
                "naiveStallMs", "saveMiBps", "rawWriteMiBps", "restoreMiBps", "rawReadMiBps", "channelReadMiBps", "coordP50Ms", "coordP99Ms",
                "peakHeapMiB", "reshardReadMiBps", "reshardRawReadMiBps", "reshardReadRatio", "reshardCheckedRawReadMiBps"}) {
            assertThat(json.get(field)).as(field).isNotNull();
            assertThat(json.get(field).isNumber()).as(field + " is a number").isTrue();
            assertThat(json.get(field).asDouble()).as(field).isPositive();
        }
        assertThat(json.get("cores").asInt()).isPositive();
        assertThat(json.get("jvm").asText()).isNotBlank();
        assertThat(json.get("backend").asText()).isEqualTo("file");
        assertThat(json.get("coordWorkers").asInt()).isEqualTo(3);
        assertThat(json.get("jitQuietMs").asInt()).isEqualTo(100);
        assertThat(json.get("rounds").get("stallCopyMs")).hasSize(1);
        assertThat(json.get("coordination")).hasSize(2);
        assertThat(json.get("coordination").get(1).get("warmupRounds").asInt()).isEqualTo(2);
        assertThat(json.get("coordination").get(1).get("rounds").asInt()).isEqualTo(3);
        assertThat(json.get("coordination").get(1).get("workersAre").asText()).startsWith("agents");
        assertThat(json.get("reshard").get("savedBy").asInt()).isEqualTo(3);
        assertThat(json.get("reshard").get("restoredBy").asInt()).isEqualTo(2);
        assertThat(json.get("reshardBytesRead").asLong()).isEqualTo(json.get("reshardBytesNeeded").asLong()).isEqualTo(1L << 20);
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left).as("the benchmark removes its files").isEmpty();
        }
    }

    @Test
    void worldsAboveSixtyFourRunSimulatedWorkers(@TempDir Path dir) throws Exception {
        PrintStream stdout = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute("bench", "--storage", dir.toString(), "--only", "coordination", "--jit-quiet-ms", "0", "--coord-workers", "2,65", "--coord-rounds", "3",
                    "--coord-warmup", "2", "--json");
        } finally {
            System.setOut(stdout);
        }
        assertThat(code).isZero();
        JsonNode rows = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8)).get("coordination");
        assertThat(rows.get(0).get("workersAre").asText()).startsWith("agents");
        assertThat(rows.get(1).get("workers").asInt()).isEqualTo(65);
        assertThat(rows.get(1).get("workersAre").asText()).startsWith("simulated");
        assertThat(rows.get(1).get("phaseMediansMs").get("commitMs").asDouble()).isPositive();
        assertThat(rows.get(1).get("cpuMsPerRoundMedians").get("coordinatorLoop").asDouble()).isPositive();
        // the slowest measured rounds, slowest first, the first one being the maximum
        JsonNode slowest = rows.get(1).get("slowestRounds");
        assertThat(slowest).hasSize(3);
        assertThat(slowest.get(0).get("ms").asDouble()).isEqualTo(rows.get(1).get("maxMs").asDouble());
        assertThat(slowest.get(0).get("ms").asDouble()).isGreaterThanOrEqualTo(slowest.get(2).get("ms").asDouble());
        assertThat(slowest.get(0).get("round").asInt()).isBetween(1, 3);
        assertThat(slowest.get(0).has("jitCompilerCpuMs")).isTrue();
    }

    @Test
    void sweepsReportARowPerShardSizeAndPerKeptCount(@TempDir Path dir) throws Exception {
        PrintStream stdout = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute("bench", "--storage", dir.toString(), "--only", "sizes,kept", "--jit-warmup", "2", "--jit-quiet-ms", "0", "--warmup-saves", "1", "--workers", "2", "--entry-kib", "256",
                    "--shard-sizes", "1,2", "--saves", "1", "--kept", "3,1", "--kept-rounds", "2", "--json");
        } finally {
            System.setOut(stdout);
        }
        assertThat(code).isZero();
        JsonNode json = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8));
        JsonNode sizes = json.get("shardSizes");
        assertThat(sizes.isArray()).isTrue();
        assertThat(sizes).hasSize(2);
        assertThat(sizes.get(0).get("shardMiB").asInt()).isEqualTo(1);
        assertThat(sizes.get(1).get("shardMiB").asInt()).isEqualTo(2);
        for (JsonNode row : sizes) {
            for (String field : new String[] {"stallMs", "copyMs", "stallRatio", "saveMiBps", "rawWriteMiBps", "writeRatio", "restoreMiBps",
                    "rawReadMiBps", "readRatio"}) {
                assertThat(row.get(field)).as(field).isNotNull();
                assertThat(row.get(field).isNumber()).as(field + " is a number").isTrue();
                assertThat(row.get(field).asDouble()).as(field).isPositive();
            }
        }
        assertThat(json.get("stallRatio")).as("the headline figures were not selected").isNull();
        JsonNode kept = json.get("kept");
        assertThat(kept.isArray()).isTrue();
        assertThat(kept).hasSize(2);
        assertThat(kept.get(0).get("kept").asInt()).as("ascending").isEqualTo(1);
        assertThat(kept.get(1).get("kept").asInt()).isEqualTo(3);
        for (JsonNode row : kept) {
            assertThat(row.get("rounds").asInt()).isEqualTo(2);
            for (String field : new String[] {"commitP50Ms", "commitP99Ms", "manifestCreateP50Ms", "manifestCreateP99Ms", "latestP50Ms",
                    "latestP99Ms", "agentReadP50Ms", "agentReadP99Ms", "coordinatorStartMs"}) {
                assertThat(row.get(field)).as(field).isNotNull();
                assertThat(row.get(field).isNumber()).as(field + " is a number").isTrue();
                assertThat(row.get(field).asDouble()).as(field).isPositive();
            }
        }
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left).as("the benchmark removes its files").isEmpty();
        }
    }

    @Test
    void aRemoteBackendWithoutAStorageUriRunsOnTheEmbeddedServer() throws Exception {
        PrintStream stdout = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute("bench", "--backend", "s3", "--only", "kept", "--kept", "2", "--kept-rounds", "1", "--json");
        } finally {
            System.setOut(stdout);
        }
        assertThat(code).isZero();
        JsonNode json = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8));
        assertThat(json.get("backend").asText()).isEqualTo("s3");
        assertThat(json.get("storageServer").asText()).startsWith("embedded S3Proxy");
        assertThat(json.get("storage").asText()).startsWith("s3://").doesNotContain("secret");
        assertThat(json.get("kept")).hasSize(1);
    }

    @Test
    void aStorageUriOfAnotherBackendIsBadInputNamingIt() {
        assertThat(badInput("bench", "--backend", "hdfs", "--storage", "s3://bucket/prefix", "--shard-mib", "1", "--json"))
                .contains("cairn: error: --storage s3://bucket/prefix is not a hdfs URI").doesNotContain("\tat ");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "--shard-sizes|1,0|--shard-sizes: every size must be between 1 and 2047 MiB, was 0",
        "--shard-sizes|4096|was 4096",
        "--kept|10,-1|--kept: every count must be between 1 and 1000000, was -1",
        "--only|sizes,bogus|was 'bogus'",
        "--reshard|4-3|--reshard must be N:M with 1 <= N, M <= 64 (e.g. 4:3), was 4-3",
        "--jit-quiet-ms|-1|--jit-quiet-ms must not be negative, was -1",
    })
    void badSweepInputIsOneLineNamingTheValue(String option, String value, String message) {
        String err = badInput("bench", option, value, "--json");
        assertThat(err).contains("cairn: error: ").contains(message).doesNotContain("\tat ");
        assertThat(err.strip().lines()).hasSize(1);
    }

    @Test
    void aSweepTooLargeForTheHeapIsBadInputNamingTheSize() {
        long tooLarge = Math.min(BenchScale.MAX_SHARD_MIB, (Runtime.getRuntime().maxMemory() >> 20) / 4 + 1);
        org.junit.jupiter.api.Assumptions.assumeTrue(2 * 2 * tooLarge + 256 > Runtime.getRuntime().maxMemory() >> 20,
                "this test JVM's heap holds every allowed size");
        String err = badInput("bench", "--only", "sizes", "--workers", "2", "--shard-sizes", "1," + tooLarge, "--json");
        assertThat(err).contains("cairn: error: --shard-sizes " + tooLarge + " with 2 workers needs a heap of at least")
                .contains("-Xmx").doesNotContain("\tat ");
    }

    private static String badInput(String... args) {
        PrintStream stderr = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute(args);
        } finally {
            System.setErr(stderr);
        }
        assertThat(code).isEqualTo(Main.EXIT_BAD_INPUT);
        return captured.toString(StandardCharsets.UTF_8);
    }
}
