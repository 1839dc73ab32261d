package dev.cairn.cli;

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
                    "--saves", "1", "--coord-workers", "1,3", "--coord-rounds", "3", "--coord-warmup", "2", "--memory-shard-mib", "8", "--json");
        } finally {
            System.setOut(stdout);
        }
        assertThat(code).isZero();
        JsonNode json = new ObjectMapper().readTree(captured.toString(StandardCharsets.UTF_8));
        for (String field : new String[] {"stallRatio", "writeRatio", "readRatio", "naiveStallRatio", "stallMs", "copyMs",
                "naiveStallMs", "saveMiBps", "rawWriteMiBps", "restoreMiBps", "rawReadMiBps", "coordP50Ms", "coordP99Ms", "peakHeapMiB"}) {
            assertThat(json.get(field)).as(field).isNotNull();
            assertThat(json.get(field).isNumber()).as(field + " is a number").isTrue();
            assertThat(json.get(field).asDouble()).as(field).isPositive();
        }
        assertThat(json.get("cores").asInt()).isPositive();
        assertThat(json.get("jvm").asText()).isNotBlank();
        assertThat(json.get("backend").asText()).isEqualTo("file");
        assertThat(json.get("coordWorkers").asInt()).isEqualTo(3);
        assertThat(json.get("coordination")).hasSize(2);
        assertThat(json.get("coordination").get(1).get("warmupRounds").asInt()).isEqualTo(2);
        assertThat(json.get("coordination").get(1).get("rounds").asInt()).isEqualTo(3);
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left).as("the benchmark removes its files").isEmpty();
        }
    }

    @Test
    void aRemoteBackendWithoutAStorageUriIsBadInputNamingIt() {
        PrintStream stderr = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        int code;
        try {
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.execute("bench", "--backend", "hdfs", "--json");
        } finally {
            System.setErr(stderr);
        }
        assertThat(code).isEqualTo(Main.EXIT_BAD_INPUT);
        assertThat(captured.toString(StandardCharsets.UTF_8)).contains("--backend hdfs needs --storage").doesNotContain("\tat ");
    }
}
