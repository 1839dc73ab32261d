package dev.cairn.cli;

import static dev.cairn.cli.CliRun.cairn;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.StorageUri;
import dev.cairn.storage.export.ExportCheck;
import dev.cairn.storage.export.ExportFormat;
import dev.cairn.storage.export.ShardedCheckpoint;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** {@code cairn export}, {@code restore --world M --rank R} and {@code show --json}'s tensors on a checkpoint of 4 workers. */
class ExportCommandTest {
    @TempDir
    Path tmp;

    private Path root;
    private ShardedCheckpoint saved;
    private String saveId;

    @BeforeEach
    void save() throws Exception {
        root = tmp.resolve("root");
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            saved = ShardedCheckpoint.commit(store, 40, 9);
            saveId = new dev.cairn.storage.CheckpointCatalog(store).read(40).saveId();
        }
    }

    private List<String> outside() throws Exception {
        try (Stream<Path> s = Files.list(tmp)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @ParameterizedTest
    @EnumSource(ExportFormat.class)
    void exportWritesEveryTensorWholeAndAnIndependentReaderAgrees(ExportFormat format) throws Exception {
        Path file = tmp.resolve("model." + format.cliName());
        CliRun.Result r = format == ExportFormat.SAFETENSORS
                ? cairn("export", "--storage", root.toString(), "--to", file.toString(), "--json", "-q")
                : cairn("export", "--storage", root.toString(), "--to", file.toString(), "--format", "npz", "--json", "-q");

        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode n = new ObjectMapper().readTree(r.out());
        assertThat(n.get("file").asText()).isEqualTo(file.toString());
        assertThat(n.get("format").asText()).isEqualTo(format.cliName());
        assertThat(n.get("tensors").asInt()).isEqualTo(saved.wholes.size());
        assertThat(n.get("bytes").asLong()).isEqualTo(Files.size(file));
        assertThat(n.get("step").asLong()).isEqualTo(40);
        ExportCheck.verify(file, format, saved.exported(), saved.exportedMetadata(format, saveId, 40), tmp.resolve("work"));
    }

    @Test
    void badInputIsOneLineExitTwoAndLeavesNothing() throws Exception {
        Path file = tmp.resolve("m.safetensors");
        List<String> before = outside();

        CliRun.Result format = cairn("export", "--storage", root.toString(), "--to", file.toString(), "--format", "pickle");
        CliRun.Result dir = cairn("export", "--storage", root.toString(), "--to", tmp.resolve("no/such/m.npz").toString());
        CliRun.Result step = cairn("export", "--storage", root.toString(), "--step", "7", "--to", file.toString());
        CliRun.Result noRoot = cairn("export", "--storage", tmp.resolve("absent").toString(), "--to", file.toString());

        for (CliRun.Result r : List.of(format, dir, step, noRoot)) {
            assertThat(r.exit()).as(r.err()).isEqualTo(2);
            assertThat(r.err().strip().lines()).singleElement().satisfies(l -> assertThat(l).startsWith("cairn: error: "));
        }
        assertThat(format.err()).contains("unknown export format 'pickle'; formats are safetensors, npz");
        assertThat(dir.err()).contains("does not exist");
        assertThat(step.err()).contains("no checkpoint at step 7");
        assertThat(outside()).isEqualTo(before);
    }

    @Test
    void anExistingFileIsKeptWithoutForceAndReplacedWithIt() throws Exception {
        Path file = Files.writeString(tmp.resolve("m.safetensors"), "keep");

        CliRun.Result refused = cairn("export", "--storage", root.toString(), "--to", file.toString());
        assertThat(refused.exit()).isEqualTo(2);
        assertThat(refused.err()).contains("exists (pass --force to replace it)");
        assertThat(Files.readString(file)).isEqualTo("keep");

        CliRun.Result forced = cairn("export", "--storage", root.toString(), "--to", file.toString(), "--force", "-q");
        assertThat(forced.exit()).as(forced.err()).isZero();
        assertThat(forced.out()).contains("exported step 40").contains("tensors");
        assertThat(Files.size(file)).isGreaterThan(100);
    }

    @Test
    void aCorruptManifestIsExitTwoAndCorruptDataExitOneBothLeavingNothing() throws Exception {
        Path object = root.resolve(Layout.shardKey(saveId, 1));
        byte[] bytes = Files.readAllBytes(object);
        bytes[0] ^= 1;
        Files.write(object, bytes);
        Path file = tmp.resolve("m.npz");

        CliRun.Result data = cairn("export", "--storage", root.toString(), "--to", file.toString(), "--format", "npz", "-q");
        Files.writeString(root.resolve(Layout.manifestKey(40)), "{not json");
        CliRun.Result manifest = cairn("export", "--storage", root.toString(), "--step", "40", "--to", file.toString());

        assertThat(data.exit()).as(data.err()).isEqualTo(1);
        assertThat(data.err()).contains("checksum").doesNotContain("\tat ");
        assertThat(manifest.exit()).as(manifest.err()).isEqualTo(2);
        assertThat(outside()).containsExactly("root");
    }

    @Test
    void restoreForEveryRankOfThreeReassemblesTheShardedTensors() throws Exception {
        ByteArrayOutputStream rows = new ByteArrayOutputStream();
        ByteArrayOutputStream cols = new ByteArrayOutputStream();
        for (int rank = 0; rank < 3; rank++) {
            Path to = tmp.resolve("rank" + rank);
            CliRun.Result r = cairn("restore", "--storage", root.toString(), "--to", to.toString(), "--world", "3", "--rank",
                    Integer.toString(rank), "--json", "-q");
            assertThat(r.exit()).as(r.err()).isZero();
            JsonNode n = new ObjectMapper().readTree(r.out());
            assertThat(n.get("world").asInt()).isEqualTo(3);
            assertThat(n.get("rank").asInt()).isEqualTo(rank);
            assertThat(n.get("worker").isNull()).isTrue();
            rows.write(Files.readAllBytes(to.resolve("rank-" + rank + "/model/rows")));
            cols.write(Files.readAllBytes(to.resolve("rank-" + rank + "/model/cols")));
            assertThat(Files.readAllBytes(to.resolve("replicated/optimizer/mirror"))).isEqualTo(saved.wholes.get("optimizer/mirror").data());
            assertThat(to.resolve("worker-" + rank + "/rng/state")).hasBinaryContent(saved.wholes.get("rng/state@worker-" + rank).data());
            assertThat(to.resolve("index.json")).exists();
        }
        assertThat(rows.toByteArray()).isEqualTo(saved.wholes.get("model/rows").data());
        assertThat(cols.toByteArray()).isEqualTo(saved.wholes.get("model/cols").data());
    }

    @Test
    void restoreRefusesAWorldWithoutARankAndRanksOutsideIt() throws Exception {
        String to = tmp.resolve("out").toString();
        List<String[]> bad = List.of(
                new String[] {"--world", "3"},
                new String[] {"--rank", "0"},
                new String[] {"--world", "3", "--rank", "3"},
                new String[] {"--world", "0", "--rank", "0"},
                new String[] {"--world", "2", "--rank", "-1"},
                new String[] {"--world", "2", "--rank", "0", "--worker", "1"});
        for (String[] options : bad) {
            String[] args = Stream.concat(Stream.of("restore", "--storage", root.toString(), "--to", to), Stream.of(options)).toArray(String[]::new);
            CliRun.Result r = cairn(args);
            assertThat(r.exit()).as(String.join(" ", options) + ": " + r.err()).isEqualTo(2);
            assertThat(r.err().strip().lines()).singleElement().satisfies(l -> assertThat(l).startsWith("cairn: error: --"));
        }
        assertThat(outside()).containsExactly("root");
    }

    @Test
    void showJsonListsEachLogicalTensorWithItsPieces() throws Exception {
        CliRun.Result r = cairn("show", "--storage", root.toString(), "--json");

        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode n = new ObjectMapper().readTree(r.out());
        assertThat(n.get("entryIndex").isArray()).isTrue(); // the existing fields stay
        JsonNode cols = null;
        JsonNode mirror = null;
        int rng = 0;
        for (JsonNode t : n.get("tensors")) {
            switch (t.get("name").asText()) {
                case "model/cols" -> cols = t;
                case "optimizer/mirror" -> mirror = t;
                case "rng/state" -> rng++;
                default -> { }
            }
        }
        assertThat(rng).isEqualTo(4);
        assertThat(cols.get("dtype").asText()).isEqualTo("float64");
        assertThat(cols.get("kind").asText()).isEqualTo("sharded");
        assertThat(cols.get("globalShape").toString()).isEqualTo("[5,7]");
        assertThat(cols.get("pieces")).hasSize(4);
        JsonNode third = cols.get("pieces").get(2);
        assertThat(third.get("worker").asInt()).isEqualTo(2);
        assertThat(third.get("offsets").toString()).isEqualTo("[0,4]");
        assertThat(third.get("shape").toString()).isEqualTo("[5,2]");
        assertThat(third.get("object").asText()).isEqualTo(Layout.shardKey(saveId, 2));
        assertThat(third.get("length").asLong()).isEqualTo(5 * 2 * 8);
        assertThat(third.has("offset")).isTrue();
        assertThat(mirror.get("kind").asText()).isEqualTo("replicated");
        assertThat(mirror.get("pieces")).hasSize(3);
        assertThat(mirror.get("pieces").get(1).get("entryOffset").asLong()).isEqualTo(64 / 3);
    }
}
