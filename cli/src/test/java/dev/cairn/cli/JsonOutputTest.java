package dev.cairn.cli;

import static dev.cairn.cli.CliRun.cairn;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.cli.CliRun.Result;
import dev.cairn.storage.Layout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --json}: one JSON object on stdout with the documented fields, nothing else there. */
class JsonOutputTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void gcJsonNamesWhatItDeletedAndKept() throws Exception {
        Path root = tmp.resolve("ckpt");
        CheckpointFixture.create(root, 2, 10, 20, 30);
        String orphan = "25-0badc0de";
        Files.createDirectories(root.resolve("data/" + orphan));
        Files.write(root.resolve(Layout.shardKey(orphan, 0)), new byte[] {1, 2, 3});

        Result dry = cairn("gc", "--storage", root.toString(), "--keep-last", "1", "--min-age-minutes", "0", "--dry-run", "--json");
        Result r = cairn("gc", "--storage", root.toString(), "--keep-last", "1", "--min-age-minutes", "0", "--json");

        assertThat(dry.exit()).as(dry.err()).isZero();
        assertThat(JSON.readTree(dry.out()).get("dryRun").asBoolean()).isTrue();
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode n = JSON.readTree(r.out());
        assertThat(n.get("storage").asText()).isEqualTo("file://" + root);
        assertThat(n.get("dryRun").asBoolean()).isFalse();
        assertThat(n.get("deletedCheckpoints")).hasSize(2);
        assertThat(n.get("deletedCheckpoints").get(0).get("step").asLong()).isEqualTo(10);
        assertThat(n.get("deletedCheckpoints").get(1).get("step").asLong()).isEqualTo(20);
        assertThat(n.get("deletedCheckpoints").get(0).get("saveId").isTextual()).isTrue();
        assertThat(n.get("sweptAttempts")).hasSize(1);
        assertThat(n.get("sweptAttempts").get(0).get("saveId").asText()).isEqualTo(orphan);
        assertThat(n.get("sweptAttempts").get(0).get("objects").asInt()).isEqualTo(1);
        assertThat(n.get("abandonedCommitWrites").asInt()).isZero();
        assertThat(n.get("keptCheckpoints").asInt()).isEqualTo(1);
        assertThat(root.resolve("data/" + orphan)).doesNotExist();
    }

    @Test
    void verifyJsonSaysOkOrNamesEachProblem() throws Exception {
        Path root = tmp.resolve("ckpt");
        CheckpointFixture.create(root, 2, 10, 20);

        Result ok = cairn("verify", "--storage", root.toString(), "--json");

        assertThat(ok.exit()).as(ok.err()).isZero();
        assertThat(ok.err()).isEmpty();
        JsonNode n = JSON.readTree(ok.out());
        assertThat(n.get("ok").asBoolean()).isTrue();
        assertThat(n.get("step").asLong()).isEqualTo(20);
        assertThat(n.get("objects").asLong()).isEqualTo(2);
        assertThat(n.get("bytes").asLong()).isEqualTo(3000 + 3017 + 512);
        assertThat(n.get("problems")).isEmpty();

        Path shard;
        try (var files = Files.walk(root.resolve("data"))) {
            shard = files.filter(p -> p.getFileName().toString().equals("shard-00000.bin")).filter(p -> p.toString().contains("/20-"))
                    .findFirst().orElseThrow();
        }
        byte[] b = Files.readAllBytes(shard);
        b[7] ^= 1;
        Files.write(shard, b);

        Result bad = cairn("verify", "--storage", root.toString(), "--json");

        assertThat(bad.exit()).isEqualTo(1);
        JsonNode m = JSON.readTree(bad.out());
        assertThat(m.get("ok").asBoolean()).isFalse();
        assertThat(m.get("problems")).isNotEmpty();
        assertThat(m.get("problems").get(0).asText()).contains(root.relativize(shard).toString()).contains("checksum");
    }

    @Test
    void restoreJsonNamesWhatWasWritten() throws Exception {
        Path root = tmp.resolve("ckpt");
        CheckpointFixture.create(root, 2, 10);
        Path to = tmp.resolve("restored");

        Result r = cairn("restore", "--storage", root.toString(), "--to", to.toString(), "--worker", "1", "--json", "--quiet");

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).isEmpty();
        JsonNode n = JSON.readTree(r.out());
        assertThat(n.get("step").asLong()).isEqualTo(10);
        assertThat(n.get("to").asText()).isEqualTo(to.toString());
        assertThat(n.get("worker").asInt()).isEqualTo(1);
        assertThat(n.get("entries").asInt()).isEqualTo(2);
        assertThat(n.get("bytes").asLong()).isEqualTo(Files.size(to.resolve("worker-1/model/w")) + Files.size(to.resolve("replicated/optimizer/state")));
    }
}
