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
}
