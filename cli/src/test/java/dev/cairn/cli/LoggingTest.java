package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The cairn command's logs, seen from outside: CAIRN_LOG errors and where lines go. */
class LoggingTest {
    @Test
    void theCairnCommandRejectsAnInvalidCairnLog() throws Exception {
        ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx64m", "-cp", System.getProperty("java.class.path"), Main.class.getName(), "list", "--storage", "/nonexistent"));
        pb.environment().put("CAIRN_LOG", "loud");
        Process p = pb.start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);

        assertThat(p.exitValue()).isEqualTo(2);
        assertThat(err.strip().lines()).singleElement().satisfies(l -> assertThat(l)
                .startsWith("cairn: error: CAIRN_LOG must be").contains("'loud'"));
    }

    private static String[] runCairn(Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx128m", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        Process p = pb.start();
        java.util.concurrent.CompletableFuture<String> out = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new String[] {Integer.toString(p.exitValue()), out.get(), err};
    }

    @Test
    void theCairnCommandLogsIsoLinesOrJsonLinesToStderrOnly(@org.junit.jupiter.api.io.TempDir Path root) throws Exception {
        CheckpointFixture.create(root, 1, 10);
        java.nio.file.Files.writeString(root.resolve(dev.cairn.storage.Layout.LATEST), "garbage"); // logs one warning

        String[] plain = runCairn(Map.of("CAIRN_LOG", "warn"), "show", "--storage", root.toString(), "--json");
        String[] json = runCairn(Map.of("CAIRN_LOG", "json"), "show", "--storage", root.toString(), "--json");

        assertThat(plain[0]).as(plain[2]).isEqualTo("0");
        assertThat(new ObjectMapper().readTree(plain[1]).isObject()).isTrue();
        assertThat(plain[2].strip().lines()).isNotEmpty().allSatisfy(line -> {
            assertThat(OffsetDateTime.parse(line.substring(0, line.indexOf(' ')))).isNotNull();
            assertThat(line).contains(" WARN  [run=-] ");
        });
        assertThat(plain[2]).contains("LATEST");
        assertThat(json[0]).as(json[2]).isEqualTo("0");
        assertThat(new ObjectMapper().readTree(json[1]).isObject()).isTrue();
        assertThat(json[2].strip().lines()).isNotEmpty().allSatisfy(line -> {
            JsonNode n = new ObjectMapper().readTree(line);
            assertThat(n.get("level").asText()).isEqualTo("WARN");
            assertThat(n.get("run").asText()).isEqualTo("-");
            assertThat(Instant.parse(n.get("time").asText())).isNotNull();
        });
        assertThat(json[2]).contains("LATEST");
    }
}
