package dev.cairn.storage.export;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class CheckpointExportTest {
    @TempDir
    Path tmp;

    private CheckpointStore store;
    private CheckpointCatalog catalog;
    private ShardedCheckpoint saved;
    private Manifest manifest;

    @BeforeEach
    void save() throws IOException {
        store = CheckpointStores.open(StorageUri.parse(tmp.resolve("root").toString()), true);
        catalog = new CheckpointCatalog(store);
        saved = ShardedCheckpoint.commit(store, 40, 5);
        manifest = catalog.read(40);
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    @ParameterizedTest
    @EnumSource(ExportFormat.class)
    void aCheckpointOfFourWorkersExportsEveryTensorWholeAndReadsBackIndependently(ExportFormat format) throws Exception {
        CheckpointExport plan = CheckpointExport.plan(catalog, manifest);
        Path file = tmp.resolve("out." + format.cliName());

        ExportResult result = plan.writeTo(format, file, false, n -> { });

        assertThat(plan.tensors()).extracting(ExportTensor::name).containsExactlyInAnyOrderElementsOf(saved.wholes.keySet())
                .contains("rng/state@worker-3", "optimizer/step").doesNotContain("config");
        assertThat(result.tensors()).isEqualTo(saved.wholes.size());
        ExportCheck.verify(file, format, saved.exported(), saved.exportedMetadata(format, manifest.saveId(), 40), tmp.resolve("work"));
    }

    /** Reads a whole tensor through a region channel of {@code slab} bytes into buffers of {@code chunk}. */
    private byte[] readThroughSlabs(String name, long slab, int chunk) throws IOException {
        LogicalTensor t = catalog.tensors(manifest).stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (RegionChannel in = new RegionChannel(catalog, manifest, t, new long[t.rank()], t.globalShapeArray(), slab)) {
            ByteBuffer b = ByteBuffer.allocate(chunk);
            while (in.read(b.clear()) >= 0) {
                out.write(b.array(), 0, b.position());
            }
        }
        return out.toByteArray();
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 8, 20, 56, 57, 1000})
    void slabsOfAnySizeConcatenateToTheWholeTensor(long slab) throws IOException {
        for (String name : new String[] {"model/cols", "model/rows", "model/vec", "model/tiny", "optimizer/step"}) {
            assertThat(readThroughSlabs(name, slab, 4096)).as("%s in slabs of %d", name, slab).isEqualTo(saved.wholes.get(name).data());
            assertThat(readThroughSlabs(name, slab, 5)).as("%s staged through 5-byte reads", name).isEqualTo(saved.wholes.get(name).data());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {3, 6, 1, 4})
    void restoreForEveryRankOfANewWorldReassemblesTheOriginal(int world) throws IOException {
        ByteArrayOutputStream[] joined = new ByteArrayOutputStream[] {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
        String[] sharded = {"model/rows", "model/cols"};
        for (int rank = 0; rank < world; rank++) {
            Path dir = tmp.resolve("w" + world + "r" + rank);
            DirectoryRestore restore = DirectoryRestore.plan(catalog, manifest, RestoreSelection.rank(rank, world));
            restore.writeTo(dir, n -> { }, p -> { });
            for (int i = 0; i < sharded.length; i++) {
                joined[i].write(Files.readAllBytes(dir.resolve("rank-" + rank + "/" + sharded[i])));
            }
            for (String name : new String[] {"model/vec", "model/tiny", "model/complex", "model/bf16", "model/mask"}) {
                ShardedCheckpoint.Whole w = saved.wholes.get(name);
                long[] rows = RestoreSelection.rows(w.shape()[0], world, rank);
                long[] offsets = new long[w.shape().length];
                long[] shape = w.shape().clone();
                offsets[0] = rows[0];
                shape[0] = rows[1];
                assertThat(Files.readAllBytes(dir.resolve("rank-" + rank + "/" + name))).as("%s of rank %d/%d", name, rank, world)
                        .isEqualTo(ShardedCheckpoint.region(w, offsets, shape));
            }
            assertThat(Files.readAllBytes(dir.resolve("replicated/optimizer/mirror"))).isEqualTo(saved.wholes.get("optimizer/mirror").data());
            if (rank < ShardedCheckpoint.WORLD) {
                assertThat(Files.readAllBytes(dir.resolve("worker-" + rank + "/rng/state"))).isEqualTo(saved.wholes.get("rng/state@worker-" + rank).data());
            } else {
                assertThat(dir.resolve("worker-" + rank)).doesNotExist();
            }
            assertThat(dir.resolve("worker-0/optimizer/step").toFile().exists()).isEqualTo(rank == 0);
            JsonNode index = new ObjectMapper().readTree(dir.resolve("index.json").toFile());
            assertThat(index.get("selection").get("world").asInt()).isEqualTo(world);
            JsonNode rowsEntry = null;
            for (JsonNode f : index.get("files")) {
                if (f.get("path").asText().equals("rank-" + rank + "/model/rows")) {
                    rowsEntry = f;
                }
            }
            assertThat(rowsEntry).isNotNull();
            assertThat(rowsEntry.get("kind").asText()).isEqualTo("region");
            assertThat(rowsEntry.get("globalShape").toString()).isEqualTo("[10,6]");
            assertThat(rowsEntry.get("globalOffsets").get(0).asLong()).isEqualTo(RestoreSelection.rows(10, world, rank)[0]);
            assertThat(rowsEntry.get("dtype").asText()).isEqualTo("float32");
        }
        for (int i = 0; i < sharded.length; i++) {
            assertThat(joined[i].toByteArray()).as(sharded[i]).isEqualTo(saved.wholes.get(sharded[i]).data());
        }
    }

    @Test
    void arraySplitGivesTheFirstRanksOneMoreRow() {
        assertThat(RestoreSelection.rows(10, 3, 0)).containsExactly(0, 4);
        assertThat(RestoreSelection.rows(10, 3, 1)).containsExactly(4, 3);
        assertThat(RestoreSelection.rows(10, 3, 2)).containsExactly(7, 3);
        assertThat(RestoreSelection.rows(2, 6, 1)).containsExactly(1, 1);
        assertThat(RestoreSelection.rows(2, 6, 5)).containsExactly(2, 0);
    }

    @Test
    void aWorldAndRankThatDoNotFitAreRefused() {
        assertThatThrownBy(() -> RestoreSelection.rank(3, 3)).hasMessage("--rank must be between 0 and 2 for --world 3, was 3");
        assertThatThrownBy(() -> RestoreSelection.rank(-1, 3)).hasMessage("--rank must be between 0 and 2 for --world 3, was -1");
        assertThatThrownBy(() -> RestoreSelection.rank(0, 0)).hasMessage("--world must be at least 1, was 0");
        assertThatThrownBy(() -> DirectoryRestore.plan(catalog, manifest, RestoreSelection.worker(4)))
                .hasMessage("--worker 4 is outside the checkpoint's world size 4");
    }

    @Test
    void aCorruptPieceFailsTheExportAndLeavesNothing() throws Exception {
        Manifest.ShardRef shard = manifest.shard(1);
        Path object = tmp.resolve("root").resolve(shard.objectKey());
        byte[] bytes = Files.readAllBytes(object);
        bytes[0] ^= 1; // the first bytes of worker 1's object: its piece of model/rows
        Files.write(object, bytes);
        Path file = tmp.resolve("out.safetensors");

        assertThatThrownBy(() -> CheckpointExport.plan(catalog, manifest).writeTo(ExportFormat.SAFETENSORS, file, false, n -> { }))
                .isInstanceOf(IOException.class).hasMessageContaining("model/rows").hasMessageContaining("checksum");
        try (var files = Files.list(tmp)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("root");
        }
    }
}
