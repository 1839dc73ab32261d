package dev.cairn.agent.sidecar;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.agent.AgentConfig;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.DType;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The sidecar in this JVM with a real coordinator on loopback, spoken to over a real Unix socket. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SidecarTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path storage;
    @TempDir
    Path dir;

    private Coordinator coordinator;
    private Sidecar sidecar;
    private CompletableFuture<Integer> exit;
    private SocketChannel client;
    private Path socket;
    private int nextId = 1;

    @BeforeEach
    void start() throws IOException {
        coordinator = Coordinator.start(CoordinatorConfig.builder("run-1", 1, StorageUri.parse(storage.toString()))
                .heartbeatInterval(Duration.ofMillis(200)).build(), "127.0.0.1", 0);
        socket = dir.resolve("agent.sock");
        AgentConfig agent = AgentConfig.builder("127.0.0.1:" + coordinator.port(), "run-1", 0, 1)
                .stagingBytes(1 << 20).connectTimeout(Duration.ofSeconds(10)).build();
        CompletableFuture<String> ready = new CompletableFuture<>();
        sidecar = Sidecar.start(new Sidecar.Options(agent, socket, 1 << 20, 0, dir, Duration.ofSeconds(2)), ready::complete);
        assertThat(ready.join()).isEqualTo("EVENT ready socket=" + socket + " shm=" + sidecar.sharedFile() + " bytes=" + (1 << 20));
        exit = CompletableFuture.supplyAsync(sidecar::serve);
        client = SocketChannel.open(StandardProtocolFamily.UNIX);
        client.connect(UnixDomainSocketAddress.of(socket));
    }

    @AfterEach
    void stop() throws IOException {
        client.close();
        sidecar.close();
        coordinator.close();
    }

    private long send(Map<String, Object> request) throws IOException {
        long id = nextId++;
        Map<String, Object> m = new java.util.LinkedHashMap<>(request);
        m.put("id", id);
        writeFrame(JSON.writeValueAsBytes(m));
        return id;
    }

    private void writeFrame(byte[] body) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).flip();
        while (b.hasRemaining()) {
            client.write(b);
        }
    }

    private JsonNode receive() throws IOException {
        ByteBuffer header = ByteBuffer.allocate(4);
        while (header.hasRemaining()) {
            if (client.read(header) < 0) {
                throw new java.io.EOFException();
            }
        }
        ByteBuffer body = ByteBuffer.allocate(header.flip().getInt());
        while (body.hasRemaining()) {
            if (client.read(body) < 0) {
                throw new java.io.EOFException();
            }
        }
        return JSON.readTree(new String(body.array(), StandardCharsets.UTF_8));
    }

    private JsonNode call(Map<String, Object> request) throws IOException {
        long id = send(request);
        JsonNode r = receive();
        assertThat(r.get("id").asLong()).isEqualTo(id);
        return r;
    }

    private MappedByteBuffer shm() throws IOException {
        try (FileChannel ch = FileChannel.open(sidecar.sharedFile(), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return ch.map(FileChannel.MapMode.READ_WRITE, 0, ch.size());
        }
    }

    private List<Long> committedSteps() throws IOException {
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            return new CheckpointCatalog(store).steps();
        }
    }

    private static Map<String, Object> entry(String name, long offset, long length, String dtype, List<Long> shape) {
        return Map.of("name", name, "offset", offset, "length", length, "dtype", dtype, "shape", shape);
    }

    private static Map<String, Object> piece(Map<String, Object> entry, List<Long> globalShape, List<Long> globalOffsets) {
        Map<String, Object> m = new java.util.LinkedHashMap<>(entry);
        m.put("global_shape", globalShape);
        m.put("global_offsets", globalOffsets);
        return m;
    }

    @Test
    void aSaveCommitsTheSharedBytesAndARestoreReadsThemBack() throws Exception {
        JsonNode hello = call(Map.of("op", "hello", "version", 1));
        assertThat(hello.get("ok").asBoolean()).isTrue();
        assertThat(hello.get("shm_path").asText()).isEqualTo(sidecar.sharedFile().toString());
        assertThat(hello.get("latest").isNull()).isTrue();

        JsonNode begun = call(Map.of("op", "begin_save", "step", 5, "bytes", 128));
        long offset = begun.get("offset").asLong();
        assertThat(offset % 64).isZero();
        MappedByteBuffer shm = shm();
        ByteBuffer w = shm.duplicate().order(ByteOrder.LITTLE_ENDIAN).position((int) offset);
        for (int i = 0; i < 12; i++) {
            w.putFloat(i * 0.5f);
        }
        w.position((int) offset + 64).putLong(42L);
        JsonNode committed = call(Map.of("op", "commit_save", "step", 5, "metadata", Map.of("loss", 0.25),
                "entries", List.of(piece(entry("model/w", 0, 48, "float32", List.of(4L, 3L)), List.of(8L, 3L), List.of(4L, 0L)),
                        Map.of("name", "optimizer/step", "offset", 64, "length", 8, "dtype", "int64", "shape", List.of(), "replicated", true))));
        assertThat(committed.get("ok").asBoolean()).as(committed.toString()).isTrue();
        JsonNode waited = call(Map.of("op", "wait_save", "step", 5, "timeout_ms", 20_000));
        assertThat(waited.get("ok").asBoolean()).as(waited.toString()).isTrue();
        assertThat(waited.get("step").asLong()).isEqualTo(5);

        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = catalog.read(5);
            assertThat(m.saveId()).isEqualTo(waited.get("save_id").asText());
            assertThat(m.metadata()).containsEntry("loss", 0.25);
            assertThat(m.formatVersion()).isEqualTo(2);
            assertThat(m.entry(0, "model/w").orElseThrow().tensor()).isEqualTo(
                    Manifest.Tensor.of(DType.FLOAT32, 4, 3).withGlobal(new long[] {8, 3}, new long[] {4, 0}));
            assertThat(m.entry(0, "optimizer/step").orElseThrow().tensor()).isEqualTo(Manifest.Tensor.of(DType.INT64));
            ByteBuffer wBytes = ByteBuffer.wrap(catalog.readEntry(m, m.entry(0, "model/w").orElseThrow())).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 12; i++) {
                assertThat(wBytes.getFloat()).isEqualTo(i * 0.5f);
            }
            assertThat(ByteBuffer.wrap(catalog.readEntry(m, m.entry(0, "optimizer/step").orElseThrow())).order(ByteOrder.LITTLE_ENDIAN).getLong())
                    .isEqualTo(42L);
        }
        assertThat(call(Map.of("op", "latest_step")).get("step").asLong()).isEqualTo(5);
        assertThat(call(Map.of("op", "all_steps")).get("steps").toString()).isEqualTo("[5]");

        JsonNode opened = call(Map.of("op", "restore_open", "step", 5));
        assertThat(opened.get("entries")).hasSize(2);
        JsonNode openedW = opened.get("entries").get(0);
        assertThat(openedW.get("name").asText()).isEqualTo("model/w");
        assertThat(openedW.get("dtype").asText()).isEqualTo("float32");
        assertThat(openedW.get("shape").toString()).isEqualTo("[4,3]");
        assertThat(openedW.get("global_shape").toString()).isEqualTo("[8,3]");
        assertThat(openedW.get("global_offsets").toString()).isEqualTo("[4,0]");
        JsonNode openedStep = opened.get("entries").get(1);
        assertThat(openedStep.get("dtype").asText()).isEqualTo("int64");
        assertThat(openedStep.get("shape").toString()).isEqualTo("[]");
        assertThat(openedStep.has("global_shape")).isFalse();
        JsonNode read = call(Map.of("op", "restore_read", "step", 5, "names", List.of("model/w", "optimizer/step")));
        assertThat(read.get("ok").asBoolean()).as(read.toString()).isTrue();
        JsonNode placedW = read.get("entries").get(0);
        ByteBuffer r = shm.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(placedW.get("offset").asInt());
        for (int i = 0; i < 12; i++) {
            assertThat(r.getFloat()).isEqualTo(i * 0.5f);
        }
        assertThat(call(Map.of("op", "restore_close", "step", 5)).get("ok").asBoolean()).isTrue();

        assertThat(call(Map.of("op", "close")).get("ok").asBoolean()).isTrue();
        assertThat(exit.get(20, TimeUnit.SECONDS)).isZero();
        assertThat(socket).doesNotExist();
        assertThat(sidecar.sharedFile()).doesNotExist();
    }

    @Test
    void badEntryTablesAreBadRequestsAndNothingReachesStorage() throws Exception {
        call(Map.of("op", "begin_save", "step", 5, "bytes", 128));
        List<List<Map<String, Object>>> hostile = List.of(
                List.of(entry("a", 0, 64, "uint8", List.of(64L)), entry("b", 32, 64, "uint8", List.of(64L))),  // overlap
                List.of(entry("a", 100, 64, "uint8", List.of(64L))),                                           // outside the region
                List.of(entry("a", 0, 1 << 30, "uint8", List.of(1L << 30))),                                  // outside the file
                List.of(entry("../escape", 0, 8, "uint8", List.of(8L))),                                        // bad name
                List.of(entry("a", 0, 8, "float8", List.of(8L))),                                               // unknown dtype
                List.of(entry("a", 0, 8, "float32", List.of(4L))));                                             // length ≠ itemsize × shape
        for (List<Map<String, Object>> entries : hostile) {
            JsonNode r = call(Map.of("op", "commit_save", "step", 5, "entries", entries));
            assertThat(r.get("ok").asBoolean()).as(entries.toString()).isFalse();
            assertThat(r.get("error").get("type").asText()).isEqualTo("BadRequest");
        }
        assertThat(call(Map.of("op", "abort_save", "step", 5)).get("ok").asBoolean()).isTrue();
        JsonNode waited = call(Map.of("op", "wait_save", "step", 5, "timeout_ms", 20_000));
        assertThat(waited.get("error").get("type").asText()).isEqualTo("SaveAborted");
        assertThat(committedSteps()).isEmpty();
        // nothing but the coordinator's lease (_coordinator/) below the root
        assertThat(Files.list(storage).filter(p -> !p.getFileName().toString().equals("_coordinator")).toList())
                .allSatisfy(p -> assertThat(Files.isDirectory(p) ? Files.list(p).count() : 0).isZero());
    }

    @Test
    void anOversizedFrameIsAnsweredOnceAndTheSidecarExitsAndRemovesItsFiles() throws Exception {
        client.write(ByteBuffer.allocate(4).putInt(Frames.MAX_FRAME + 1).flip());
        JsonNode r = receive();
        assertThat(r.get("id").asLong()).isZero();
        assertThat(r.get("error").get("type").asText()).isEqualTo("BadRequest");
        assertThat(r.get("error").get("message").asText()).contains("frame length " + (Frames.MAX_FRAME + 1));
        assertThat(exit.get(20, TimeUnit.SECONDS)).isZero();
        assertThat(socket).doesNotExist();
        assertThat(sidecar.sharedFile()).doesNotExist();
        assertThat(committedSteps()).isEmpty();
    }

    @Test
    void badJsonIsAnsweredOnceAndTheSidecarExits() throws Exception {
        writeFrame("{\"id\": 1, \"op\": ".getBytes(StandardCharsets.UTF_8));
        JsonNode r = receive();
        assertThat(r.get("error").get("type").asText()).isEqualTo("BadRequest");
        assertThat(r.get("error").get("message").asText()).startsWith("frame is not valid JSON");
        assertThat(exit.get(20, TimeUnit.SECONDS)).isZero();
        assertThat(sidecar.sharedFile()).doesNotExist();
    }

    @Test
    void whenTheTrainerConnectionClosesTheSidecarEndsItsSessionAndRemovesItsFiles() throws Exception {
        assertThat(call(Map.of("op", "hello", "version", 1)).get("ok").asBoolean()).isTrue();
        assertThat(coordinator.connectedWorkers()).hasSize(1);
        client.close();
        assertThat(exit.get(20, TimeUnit.SECONDS)).isZero();
        assertThat(socket).doesNotExist();
        assertThat(sidecar.sharedFile()).doesNotExist();
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> coordinator.connectedWorkers().isEmpty());
    }

    @Test
    void aRegionLargerThanTheFileIsBadRequestAndAFullFileIsBusy() throws Exception {
        JsonNode tooLarge = call(Map.of("op", "begin_save", "step", 5, "bytes", 2L << 20));
        assertThat(tooLarge.get("error").get("type").asText()).isEqualTo("BadRequest");
        assertThat(call(Map.of("op", "begin_save", "step", 5, "bytes", 1 << 20)).get("offset").asLong()).isZero();
        JsonNode busy = call(Map.of("op", "begin_save", "step", 6, "bytes", 64));
        assertThat(busy.get("error").get("type").asText()).isEqualTo("Busy");
    }

    @Test
    void whenTheParentProcessEndsTheSidecarStopsAndRemovesItsFiles() throws Exception {
        Process parent = new ProcessBuilder("sleep", "300").start();
        try {
            Path otherSocket = dir.resolve("other.sock");
            AgentConfig agent = AgentConfig.builder("127.0.0.1:" + coordinator.port(), "run-other", 0, 1)
                    .stagingBytes(1 << 20).connectTimeout(Duration.ofSeconds(10)).build();
            // the coordinator serves run-1 only: a sidecar for another run is refused, naming the run
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> Sidecar.start(
                            new Sidecar.Options(agent, otherSocket, 1 << 20, parent.pid(), dir, Duration.ofSeconds(2)), line -> { }))
                    .isInstanceOf(dev.cairn.agent.AgentException.class).hasMessageContaining("run-other");
            assertThat(Files.list(dir).filter(p -> p.getFileName().toString().startsWith("cairn-run-other"))).isEmpty();

            client.close();
            exit.get(20, TimeUnit.SECONDS); // frees worker 0 of run-1
            AgentConfig same = AgentConfig.builder("127.0.0.1:" + coordinator.port(), "run-1", 0, 1)
                    .stagingBytes(1 << 20).connectTimeout(Duration.ofSeconds(10)).build();
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> coordinator.connectedWorkers().isEmpty());
            Sidecar child = Sidecar.start(new Sidecar.Options(same, otherSocket, 1 << 20, parent.pid(), dir, Duration.ofSeconds(2)), line -> { });
            CompletableFuture<Integer> childExit = CompletableFuture.supplyAsync(child::serve);
            assertThat(child.sharedFile()).exists();
            parent.destroyForcibly();
            assertThat(childExit.get(20, TimeUnit.SECONDS)).isZero();
            assertThat(otherSocket).doesNotExist();
            assertThat(child.sharedFile()).doesNotExist();
        } finally {
            parent.destroyForcibly();
        }
    }

    /**
     * Commits, beside this world-1 run, a checkpoint written by 2 workers: int32 {@code model/w} [5, 4]
     * (value = element index) in row blocks of 3 and 2 rows, {@code gappy} int8 [4] of which only
     * [0, 2) is stored, and worker 0's unsharded {@code opt/step}.
     */
    private Manifest commitTwoWorkerCheckpoint(long step) throws IOException {
        String saveId = dev.cairn.storage.Layout.newSaveId(step);
        ByteBuffer w0 = ByteBuffer.allocate(3 * 16 + 2 + 8).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer w1 = ByteBuffer.allocate(2 * 16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 20; i++) {
            (i < 12 ? w0 : w1).putInt(i);
        }
        w0.put((byte) 7).put((byte) 8).putLong(99);
        List<Manifest.EntryRef> entries = List.of(
                new Manifest.EntryRef("model/w", 0, 0, 48, crc(w0.array(), 0, 48), false,
                        Manifest.Tensor.of(DType.INT32, 3, 4).withGlobal(new long[] {5, 4}, new long[] {0, 0})),
                new Manifest.EntryRef("gappy", 0, 48, 2, crc(w0.array(), 48, 2), false,
                        Manifest.Tensor.of(DType.INT8, 2).withGlobal(new long[] {4}, new long[] {0})),
                new Manifest.EntryRef("opt/step", 0, 50, 8, crc(w0.array(), 50, 8), false, Manifest.Tensor.of(DType.INT64)),
                new Manifest.EntryRef("model/w", 1, 0, 32, crc(w1.array(), 0, 32), false,
                        Manifest.Tensor.of(DType.INT32, 2, 4).withGlobal(new long[] {5, 4}, new long[] {3, 0})));
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            List<Manifest.ShardRef> shards = new java.util.ArrayList<>();
            for (int w = 0; w < 2; w++) {
                byte[] object = (w == 0 ? w0 : w1).array();
                String key = dev.cairn.storage.Layout.shardKey(saveId, w);
                store.write(key, object);
                shards.add(new Manifest.ShardRef(w, key, object.length, crc(object, 0, object.length)));
            }
            Manifest m = new Manifest(2, "run-1", step, saveId, java.time.Instant.now(), 2, shards, entries, Map.of());
            assertThat(new CheckpointCatalog(store).commit(m)).isEqualTo(CheckpointCatalog.CommitOutcome.COMMITTED);
            return m;
        }
    }

    private static int crc(byte[] b, int off, int len) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    private Map<String, Object> region(String name, List<Long> offsets, List<Long> shape, String dtype) {
        return Map.of("op", "restore_region", "step", 3, "name", name, "offsets", offsets, "shape", shape, "dtype", dtype);
    }

    @Test
    void restoreRegionReadsAnyRegionOfATensorSavedByAnotherWorldSize() throws Exception {
        Manifest m = commitTwoWorkerCheckpoint(3);
        JsonNode notOpen = call(region("model/w", List.of(0L, 0L), List.of(1L, 1L), "int32"));
        assertThat(notOpen.get("error").get("type").asText()).isEqualTo("BadRequest");

        JsonNode opened = call(Map.of("op", "restore_open", "step", 3));
        assertThat(opened.get("world_size").asInt()).isEqualTo(2);
        assertThat(opened.get("tensors").toString())
                .isEqualTo("[{\"name\":\"model/w\",\"dtype\":\"int32\",\"global_shape\":[5,4]},"
                        + "{\"name\":\"gappy\",\"dtype\":\"int8\",\"global_shape\":[4]}]");

        // rows 2..3, columns 1..3: row 2 from worker 0's piece, row 3 from worker 1's
        JsonNode r = call(region("model/w", List.of(2L, 1L), List.of(2L, 3L), "int32"));
        assertThat(r.get("ok").asBoolean()).as(r.toString()).isTrue();
        assertThat(r.get("length").asLong()).isEqualTo(24);
        assertThat(r.get("bytes_read").asLong()).isEqualTo(24);
        ByteBuffer got = shm().duplicate().order(ByteOrder.LITTLE_ENDIAN).position(r.get("offset").asInt());
        for (int row = 2; row < 4; row++) {
            for (int col = 1; col < 4; col++) {
                assertThat(got.getInt()).isEqualTo(row * 4 + col);
            }
        }
        // the whole tensor, and an unsharded entry asked for uniformly
        JsonNode whole = call(region("model/w", List.of(0L, 0L), List.of(5L, 4L), "int32"));
        ByteBuffer all = shm().duplicate().order(ByteOrder.LITTLE_ENDIAN).position(whole.get("offset").asInt());
        for (int i = 0; i < 20; i++) {
            assertThat(all.getInt()).isEqualTo(i);
        }
        JsonNode step = call(region("opt/step", List.of(), List.of(), "int64"));
        assertThat(shm().duplicate().order(ByteOrder.LITTLE_ENDIAN).getLong(step.get("offset").asInt())).isEqualTo(99);

        Map<Map<String, Object>, String> bad = new java.util.LinkedHashMap<>();
        bad.put(region("model/w", List.of(0L, 0L), List.of(1L, 1L), "float32"), "BadRequest:entry 'model/w' is int32, not the requested float32");
        bad.put(region("model/w", List.of(4L, 0L), List.of(2L, 4L), "int32"),
                "BadRequest:entry 'model/w': region [2, 4] at [4, 0] lies outside the global shape [5, 4] (dimension 0)");
        bad.put(region("model/w", List.of(0L), List.of(1L), "int32"), "BadRequest:does not have the tensor's rank 2");
        bad.put(region("gappy", List.of(0L), List.of(4L), "int8"), "BadRequest:2 of the 4 elements of region [4] at [0] are stored by no piece");
        bad.put(region("model/w", List.of(0L, 0L), List.of(300_000L, 4L), "int32"),
                "BadRequest:region [300000, 4] of entry 'model/w' is 4800000 bytes, more than the 1048576 bytes of shared staging");
        bad.put(region("model/w", List.of(-1L, 0L), List.of(1L, 1L), "int32"), "BadRequest:'offsets' must be a list of integers ≥ 0");
        bad.put(region("model/w", List.of(0L, 0L), List.of(1L, 1L), "float8"), "BadRequest:unknown dtype 'float8'");
        bad.put(region("model/nope", List.of(0L), List.of(1L), "int32"), "NotFound:has no entry 'model/nope'");
        for (Map.Entry<Map<String, Object>, String> b : bad.entrySet()) {
            JsonNode e = call(b.getKey());
            assertThat(e.get("ok").asBoolean()).as(b.getKey().toString()).isFalse();
            String[] expected = b.getValue().split(":", 2);
            assertThat(e.get("error").get("type").asText()).as(e.toString()).isEqualTo(expected[0]);
            assertThat(e.get("error").get("message").asText()).as(e.toString()).contains(expected[1]);
        }

        Path object = storage.resolve(m.shard(1).objectKey());
        byte[] damaged = Files.readAllBytes(object);
        damaged[5] ^= 1;
        Files.write(object, damaged);
        JsonNode corrupt = call(region("model/w", List.of(3L, 0L), List.of(2L, 4L), "int32"));
        assertThat(corrupt.get("error").get("type").asText()).isEqualTo("Corrupt");
        assertThat(corrupt.get("error").get("message").asText()).contains("entry 'model/w'", "worker 1", "checksum");
        assertThat(call(Map.of("op", "restore_close", "step", 3)).get("ok").asBoolean()).isTrue();
    }
}
