package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.storage.Layout;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliTest {
    /** Checkpoints of steps 10, 20, 30 by two workers, written once; tests that modify storage copy it. */
    @TempDir
    static Path pristine;

    @TempDir
    Path tmp;

    @BeforeAll
    static void writeCheckpoints() throws Exception {
        CheckpointFixture.create(pristine, 2, 10, 20, 30);
    }

    private static CliRun.Result cairn(String... args) {
        return CliRun.cairn(args);
    }

    /** A copy of the pristine checkpoints this test may damage. */
    private Path copyOfCheckpoints() throws IOException {
        Path root = tmp.resolve("ckpt");
        for (int i = 2; Files.exists(root); i++) {
            root = tmp.resolve("ckpt-" + i);
        }
        try (Stream<Path> walk = Files.walk(pristine)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                Path target = root.resolve(pristine.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
        return root;
    }

    /** Every file below {@code dir} and its content, to show nothing was written. */
    private static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> files = new TreeMap<>();
        if (!Files.exists(dir)) {
            return files;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                files.put(dir.relativize(p).toString(), Files.isDirectory(p) ? "dir" : java.util.Arrays.toString(Files.readAllBytes(p)));
            }
        }
        return files;
    }

    private static void flipByte(Path file, int at) throws IOException {
        byte[] b = Files.readAllBytes(file);
        b[at] ^= 0x01;
        Files.write(file, b);
    }

    /** Flips a byte inside the run id of a manifest: still JSON, fails its checksum. */
    private static void corruptManifest(Path root, long step) throws IOException {
        Path manifest = root.resolve(Layout.manifestKey(step));
        String text = Files.readString(manifest);
        flipByte(manifest, text.indexOf("\"run-1\"") + 2);
    }

    private static void assertBadInput(CliRun.Result r, String... mentions) {
        assertThat(r.exit()).as("exit code; stderr: %s", r.err()).isEqualTo(2);
        assertThat(r.err().strip().lines()).as("stderr: %s", r.err()).singleElement().satisfies(line -> {
            assertThat(line).startsWith("cairn: error: ");
            for (String m : mentions) {
                assertThat(line).contains(m);
            }
        });
        assertThat(r.err()).doesNotContain("\tat ").doesNotContain("Exception");
    }

    // ------------------------------------------------------------------ bad input: exit 2, one line, nothing written

    @Test
    void unknownUriSchemeIsBadInput() {
        assertBadInput(cairn("list", "--storage", "gs://bucket/ckpt"), "'gs://bucket/ckpt'");
        assertBadInput(cairn("verify", "--storage", "ftp://host/x"), "'ftp://host/x'");
    }

    @Test
    void badUsageIsOneLineNamingTheOptionNotTheUsagePage() {
        assertBadInput(cairn("bench", "--kept", "1,x"), "'--kept'", "'x'", "cairn bench --help");
        assertBadInput(cairn("list", "--storage"), "--storage");
        assertBadInput(cairn("gc", "--storage", tmp.toString(), "--keep-lots", "3"), "--keep-lots");
        assertBadInput(cairn("frobnicate"), "frobnicate");
    }

    @Test
    void demoBackendAndStorageExcludeEachOther() {
        assertBadInput(cairn("demo", "--backend", "s3", "--storage", tmp.resolve("x").toString()), "--storage and --backend");
        assertBadInput(cairn("demo", "--backend", "ftp"), "'ftp'");
        assertThat(tmp.resolve("x")).doesNotExist();
    }

    @Test
    void missingStorageRootIsBadInputAndIsNotCreated() {
        Path missing = tmp.resolve("no-such-root");

        assertBadInput(cairn("list", "--storage", missing.toString()), missing.toString());
        assertBadInput(cairn("gc", "--storage", missing.toString(), "--keep-last", "1"), "does not exist");

        assertThat(missing).doesNotExist();
    }

    @Test
    void aStepWithoutACheckpointIsBadInput() throws IOException {
        Map<String, String> before = snapshot(pristine);
        Path to = tmp.resolve("restored");

        assertBadInput(cairn("show", "--storage", pristine.toString(), "--step", "15"), "no checkpoint at step 15");
        assertBadInput(cairn("verify", "--storage", pristine.toString(), "--step", "15"), "no checkpoint at step 15");
        assertBadInput(cairn("restore", "--storage", pristine.toString(), "--step", "15", "--to", to.toString()), "step 15");

        assertThat(to).doesNotExist();
        assertThat(snapshot(pristine)).isEqualTo(before);
    }

    @Test
    void anEmptyRootHasNoCheckpointToShow() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));

        assertBadInput(cairn("show", "--storage", empty.toString()), "no checkpoint in");
        assertThat(snapshot(empty)).containsOnlyKeys("");
    }

    @Test
    void aCorruptManifestIsBadInputWithItsStep() throws IOException {
        Path root = copyOfCheckpoints();
        corruptManifest(root, 30);
        Map<String, String> before = snapshot(root);
        Path to = tmp.resolve("restored");

        assertBadInput(cairn("show", "--storage", root.toString(), "--step", "30"), Layout.manifestKey(30), "checksum");
        assertBadInput(cairn("verify", "--storage", root.toString(), "--step", "30"), Layout.manifestKey(30));
        assertBadInput(cairn("restore", "--storage", root.toString(), "--step", "30", "--to", to.toString()), Layout.manifestKey(30));

        assertThat(to).doesNotExist();
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void withoutAStepReadersUseTheNewestValidCheckpointAndNameTheSkippedOnes() throws IOException {
        Path root = copyOfCheckpoints();
        corruptManifest(root, 30);
        Files.writeString(root.resolve(Layout.LATEST), "-5");
        Path to = tmp.resolve("restored");

        CliRun.Result show = cairn("show", "--storage", root.toString());
        CliRun.Result verify = cairn("verify", "--storage", root.toString());
        CliRun.Result restore = cairn("restore", "--storage", root.toString(), "--to", to.toString());

        for (CliRun.Result r : java.util.List.of(show, verify, restore)) {
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.err().lines().filter(l -> l.startsWith("cairn: warning: "))).singleElement().satisfies(line -> assertThat(line)
                    .startsWith("cairn: warning: skipped a newer checkpoint: ").contains(Layout.manifestKey(30)).contains("checksum"));
            // the bad hint is a warning (logged once), never an error
            assertThat(r.err().lines().filter(l -> l.contains("LATEST"))).singleElement().satisfies(line -> assertThat(line)
                    .contains("ignoring unusable LATEST hint").contains("negative step -5"));
            assertThat(r.err()).doesNotContain("Exception").doesNotContain("error");
        }
        assertThat(show.out()).contains("step 20");
        assertThat(verify.out()).startsWith("ok: step 20");
        assertThat(restore.out()).contains("restored step 20");
        assertThat(Files.readAllBytes(to.resolve("worker-1/model/w"))).isEqualTo(CheckpointFixture.own(1, 20));
    }

    @Test
    void restoreIntoANonEmptyDirectoryIsBadInput() throws IOException {
        Path to = Files.createDirectories(tmp.resolve("busy"));
        Files.writeString(to.resolve("keep.txt"), "mine");

        assertBadInput(cairn("restore", "--storage", pristine.toString(), "--to", to.toString()), to.toString(), "not an empty directory");

        assertThat(snapshot(to)).containsOnlyKeys("", "keep.txt");
        assertThat(Files.readString(to.resolve("keep.txt"))).isEqualTo("mine");
    }

    @Test
    void coordinatorWithAWorldOfZeroIsBadInput() {
        Path root = tmp.resolve("new-root");

        assertBadInput(cairn("coordinator", "--storage", root.toString(), "--world", "0", "--port", "0"), "world size");

        assertThat(root).doesNotExist();
    }

    // ------------------------------------------------------------------ verify

    @Test
    void verifyPassesAGoodCheckpoint() {
        CliRun.Result r = cairn("verify", "--storage", pristine.toString());

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("ok: step 30").contains("2 objects");
        assertThat(r.err()).isEmpty();
    }

    /** Adds an entry to a manifest and re-computes its checksum the way the codec does: a manifest only a writer with a bug makes. */
    private static void addEntry(Path root, long step, String name, int worker, long offset, long length) throws IOException {
        Path manifest = root.resolve(Layout.manifestKey(step));
        ObjectMapper mapper = new ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode doc = (com.fasterxml.jackson.databind.node.ObjectNode) mapper.readTree(manifest.toFile());
        ((com.fasterxml.jackson.databind.node.ArrayNode) doc.get("entries")).addObject()
                .put("name", name).put("worker", worker).put("offset", offset).put("length", length).put("crc32c", "00000000")
                .put("dtype", "bytes").putArray("shape").add(length); // format 2: every entry is typed
        doc.remove("checksum");
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(mapper.writeValueAsBytes(doc));
        doc.put("checksum", "crc32c:" + dev.cairn.storage.ManifestCodec.hex((int) crc.getValue()));
        Files.write(manifest, mapper.writeValueAsBytes(doc));
    }

    @Test
    void verifyNeverPassesWhatRestoreCannotRestore() throws IOException {
        // an entry that is also a directory of another entry, and an entry whose end overflows 64 bits
        for (String[] bad : new String[][] {{"model/w/x", "0", "0"}, {"big", "1", Long.toString(Long.MAX_VALUE)}}) {
            Path root = copyOfCheckpoints();
            addEntry(root, 30, bad[0], 0, Long.parseLong(bad[1]), Long.parseLong(bad[2]));
            Path to = tmp.resolve("restored-" + bad[0].length());

            CliRun.Result verify = cairn("verify", "--storage", root.toString(), "--step", "30");
            CliRun.Result restore = cairn("restore", "--storage", root.toString(), "--step", "30", "--to", to.toString());

            assertBadInput(verify, Layout.manifestKey(30), bad[0]);
            assertBadInput(restore, Layout.manifestKey(30), bad[0]);
            assertThat(to).doesNotExist();
        }
    }

    @Test
    void verifyFailsNamingTheCorruptObject() throws IOException {
        Path root = copyOfCheckpoints();
        Path shard;
        try (Stream<Path> files = Files.walk(root.resolve("data"))) {
            shard = files.filter(p -> p.getFileName().toString().equals("shard-00001.bin"))
                    .filter(p -> p.toString().contains("/30-")).findFirst().orElseThrow();
        }
        flipByte(shard, 100);

        CliRun.Result r = cairn("verify", "--storage", root.toString());

        assertThat(r.exit()).isEqualTo(1);
        String key = root.relativize(shard).toString();
        assertThat(r.out()).contains("bad: object file://" + root + "/" + key).contains("fails its checksum");
        assertThat(r.out()).contains("entry 'model/w'");
        assertThat(cairn("verify", "--storage", root.toString(), "--step", "20").exit()).isZero();
    }

    @Test
    void restoreOfACorruptEntryFailsAndLeavesNothingBehind() throws IOException {
        Path root = copyOfCheckpoints();
        Path shard;
        try (Stream<Path> files = Files.walk(root.resolve("data"))) {
            shard = files.filter(p -> p.getFileName().toString().equals("shard-00001.bin"))
                    .filter(p -> p.toString().contains("/30-")).findFirst().orElseThrow();
        }
        flipByte(shard, Math.toIntExact(Files.size(shard) - 1));
        Path absent = tmp.resolve("absent");
        Path empty = Files.createDirectories(tmp.resolve("empty"));

        CliRun.Result r = cairn("restore", "--storage", root.toString(), "--to", absent.toString());
        CliRun.Result r2 = cairn("restore", "--storage", root.toString(), "--to", empty.toString());

        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("fails its checksum").contains(root.relativize(shard).toString()).doesNotContain("\tat ");
        assertThat(absent).doesNotExist();
        assertThat(r2.exit()).isEqualTo(1);
        assertThat(empty).isEmptyDirectory();
        // nor anything beside the target: the temporary directory is removed
        try (Stream<Path> beside = Files.list(tmp)) {
            assertThat(beside.map(p -> p.getFileName().toString())).noneMatch(n -> n.contains(dev.cairn.storage.export.DirectoryRestore.TEMP_MARK));
        }
    }

    // ------------------------------------------------------------------ list, restore, gc

    @Test
    void listJsonPrintsOneTypedObjectPerCheckpoint() throws IOException {
        CliRun.Result r = cairn("list", "--storage", pristine.toString(), "--json");

        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode array = new ObjectMapper().readTree(r.out());
        assertThat(array.isArray()).isTrue();
        assertThat(array).hasSize(3);
        long[] steps = {10, 20, 30};
        for (int i = 0; i < 3; i++) {
            JsonNode n = array.get(i);
            assertThat(n.get("step").isIntegralNumber()).isTrue();
            assertThat(n.get("step").asLong()).isEqualTo(steps[i]);
            assertThat(n.get("saveId").isTextual()).isTrue();
            assertThat(Layout.stepOfSaveId(n.get("saveId").asText())).isEqualTo(steps[i]);
            assertThat(n.get("shards").isIntegralNumber()).isTrue();
            assertThat(n.get("shards").asInt()).isEqualTo(2);
            assertThat(n.get("bytes").isIntegralNumber()).isTrue();
            assertThat(n.get("bytes").asLong()).isEqualTo(3000 + 3017 + 512);
            assertThat(n.get("createdAt").isTextual()).isTrue();
            assertThat(java.time.Instant.parse(n.get("createdAt").asText())).isNotNull();
        }
    }

    @Test
    void restoreWritesEveryEntryAsSaved() throws IOException {
        Path to = tmp.resolve("restored");

        CliRun.Result r = cairn("restore", "--storage", pristine.toString(), "--to", to.toString());

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("restored step 30");
        for (int w = 0; w < 2; w++) {
            assertThat(Files.readAllBytes(to.resolve("worker-" + w + "/model/w"))).isEqualTo(CheckpointFixture.own(w, 30));
        }
        assertThat(Files.readAllBytes(to.resolve("replicated/optimizer/state"))).isEqualTo(CheckpointFixture.replicated(30));
        assertThat(to.resolve("manifest.json")).exists();
        assertThat(snapshot(to)).containsOnlyKeys("", "manifest.json", "index.json", "worker-0", "worker-0/model", "worker-0/model/w",
                "worker-1", "worker-1/model", "worker-1/model/w", "replicated", "replicated/optimizer", "replicated/optimizer/state");

        Path older = tmp.resolve("older");
        assertThat(cairn("restore", "--storage", pristine.toString(), "--step", "10", "--to", older.toString()).exit()).isZero();
        assertThat(Files.readAllBytes(older.resolve("worker-1/model/w"))).isEqualTo(CheckpointFixture.own(1, 10));
    }

    @Test
    void gcDeletesOldCheckpointsAndOrphanedAttempts() throws IOException {
        Path root = copyOfCheckpoints();
        String orphan = "25-0badc0de";
        Files.createDirectories(root.resolve("data/" + orphan));
        Files.write(root.resolve(Layout.shardKey(orphan, 0)), new byte[] {1, 2, 3});

        CliRun.Result r = cairn("gc", "--storage", root.toString(), "--keep-last", "1", "--min-age-minutes", "0");

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("deleted checkpoint step 10").contains("deleted checkpoint step 20")
                .contains("deleted orphaned attempt " + orphan);
        JsonNode left = new ObjectMapper().readTree(cairn("list", "--storage", root.toString(), "--json").out());
        assertThat(left).hasSize(1);
        String kept = left.get(0).get("saveId").asText();
        assertThat(left.get(0).get("step").asLong()).isEqualTo(30);
        try (Stream<Path> attempts = Files.list(root.resolve("data"))) {
            assertThat(attempts.map(p -> p.getFileName().toString())).containsExactly(kept);
        }
        assertThat(cairn("verify", "--storage", root.toString()).exit()).isZero();
    }
}
