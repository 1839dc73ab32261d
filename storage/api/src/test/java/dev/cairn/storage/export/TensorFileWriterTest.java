package dev.cairn.storage.export;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cairn.storage.DType;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TensorFileWriterTest {
    @TempDir
    Path dir;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Every dtype but json, in several shapes: a scalar, 1-D, 3-D, an empty one, names with folders. */
    private static List<ExportCheck.Expected> everyDtype() {
        Random random = new Random(12);
        List<ExportCheck.Expected> list = new ArrayList<>();
        long[][] shapes = {{}, {7}, {2, 3, 4}, {0, 3}};
        int i = 0;
        for (DType d : DType.values()) {
            if (d == DType.JSON) {
                continue;
            }
            long[] shape = d == DType.BYTES ? new long[] {11} : shapes[i++ % shapes.length];
            byte[] bytes = new byte[(int) d.byteLength(shape)];
            random.nextBytes(bytes);
            if (d == DType.BOOL) {
                for (int k = 0; k < bytes.length; k++) {
                    bytes[k] &= 1;
                }
            }
            list.add(new ExportCheck.Expected("model/" + d.numpyName() + "/w", d, shape, bytes));
        }
        return list;
    }

    private static List<ExportTensor> tensors(List<ExportCheck.Expected> expected) {
        return expected.stream().map(e -> new ExportTensor(e.name(), e.dtype(), Arrays.stream(e.shape()).boxed().toList(),
                () -> Channels.newChannel(new ByteArrayInputStream(e.bytes())))).toList();
    }

    private static Map<String, String> userMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("loss", "0.25");
        m.put("note", "a \"quoted\" ünïcode value");
        return m;
    }

    /** What the writer adds for the types {@code format} stores as views. */
    private static Map<String, String> withViews(ExportFormat format, List<ExportCheck.Expected> tensors) {
        Map<String, String> m = new LinkedHashMap<>(userMetadata());
        for (ExportCheck.Expected t : tensors) {
            boolean view = format == ExportFormat.SAFETENSORS
                    ? Set.of(DType.COMPLEX64, DType.COMPLEX128, DType.BYTES).contains(t.dtype())
                    : Set.of(DType.BFLOAT16, DType.BYTES).contains(t.dtype());
            if (view) {
                m.put("cairn.dtype." + t.name(), t.dtype().numpyName());
            }
        }
        return m;
    }

    @ParameterizedTest
    @EnumSource(ExportFormat.class)
    void everyDtypeReadsBackInAnIndependentReader(ExportFormat format) throws Exception {
        List<ExportCheck.Expected> expected = everyDtype();
        Path target = dir.resolve("model." + format.cliName());
        AtomicLong progressed = new AtomicLong();

        ExportResult result = TensorFileWriter.write(format, tensors(expected), userMetadata(), target, false, progressed::addAndGet);

        assertThat(result.file()).isEqualTo(target);
        assertThat(result.tensors()).isEqualTo(expected.size());
        assertThat(result.bytes()).isEqualTo(Files.size(target));
        assertThat(progressed.get()).isEqualTo(expected.stream().mapToLong(e -> e.bytes().length).sum());
        assertThat(Files.list(dir).map(p -> p.getFileName().toString())).containsExactly(target.getFileName().toString());
        ExportCheck.verify(target, format, expected, withViews(format, expected), dir.resolve("work"));
    }

    @Test
    void safetensorsHeaderIsPaddedAndEveryTensorAlignedToItsItemSize() throws Exception {
        Path target = dir.resolve("m.safetensors");
        TensorFileWriter.write(ExportFormat.SAFETENSORS, tensors(everyDtype()), userMetadata(), target, false, n -> { });

        byte[] file = Files.readAllBytes(target);
        long n = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat((8 + n) % 8).isZero();
        JsonNode header = JSON.readTree(new String(file, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8).stripTrailing());
        assertThat(header.fieldNames().next()).isEqualTo("__metadata__");
        assertThat(header.get("__metadata__").get("cairn.dtype.model/complex64/w").asText()).isEqualTo("complex64");
        JsonNode complex = header.get("model/complex128/w");
        assertThat(complex.get("dtype").asText()).isEqualTo("F64");
        assertThat(complex.get("shape").get(complex.get("shape").size() - 1).asLong()).isEqualTo(2);
        long end = 0;
        for (var it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            long begin = e.getValue().get("data_offsets").get(0).asLong();
            assertThat(begin).as("%s starts where the previous ended", e.getKey()).isEqualTo(end);
            int item = switch (e.getValue().get("dtype").asText()) {
                case "F64", "I64", "U64" -> 8;
                case "F32", "I32", "U32" -> 4;
                case "F16", "BF16", "I16", "U16" -> 2;
                default -> 1;
            };
            assertThat((8 + n + begin) % item).as("%s aligned", e.getKey()).isZero();
            end = e.getValue().get("data_offsets").get(1).asLong();
        }
        assertThat(8 + n + end).isEqualTo(file.length);
    }

    @Test
    void npzHasOneNpyMemberPerTensorWithFoldersAndTheMetadataMember() throws Exception {
        Path target = dir.resolve("m.npz");
        TensorFileWriter.write(ExportFormat.NPZ, tensors(everyDtype()), userMetadata(), target, false, n -> { });

        try (ZipFile zip = new ZipFile(target.toFile())) {
            assertThat(zip.getEntry("model/float32/w.npy")).isNotNull();
            assertThat(zip.getEntry("__metadata__.json")).isNotNull();
            JsonNode meta = JSON.readTree(zip.getInputStream(zip.getEntry("__metadata__.json")));
            assertThat(meta.get("cairn.dtype.model/bfloat16/w").asText()).isEqualTo("bfloat16");
            byte[] npy = zip.getInputStream(zip.getEntry("model/float32/w.npy")).readAllBytes();
            assertThat(Arrays.copyOfRange(npy, 1, 6)).asString().isEqualTo("NUMPY");
            int headerLength = (npy[8] & 0xff) | (npy[9] & 0xff) << 8;
            assertThat((10 + headerLength) % 64).isZero();
        }
    }

    @Test
    void aTensorLargerThanOneSlabIsStreamedThroughBoundedBuffers() throws Exception {
        long length = TensorFileWriter.SLAB_BYTES + (3L << 20) + 5;
        AtomicLong largestRequest = new AtomicLong();
        ExportTensor big = new ExportTensor("big", DType.UINT8, List.of(length), () -> new PatternChannel(length, largestRequest));
        Path target = dir.resolve("big.npz");

        TensorFileWriter.write(ExportFormat.NPZ, List.of(big), Map.of(), target, false, n -> { });

        assertThat(largestRequest.get()).isLessThanOrEqualTo(TensorFileWriter.SLAB_BYTES);
        try (ZipFile zip = new ZipFile(target.toFile()); var in = zip.getInputStream(zip.getEntry("big.npy"))) {
            in.skipNBytes(NpyHeader.of(StoredType.npy(DType.UINT8, new long[] {length})).length);
            byte[] buf = new byte[1 << 20];
            long at = 0;
            int r;
            while ((r = in.read(buf)) > 0) {
                for (int i = 0; i < r; i++) {
                    if (buf[i] != PatternChannel.byteAt(at + i)) {
                        assertThat(buf[i]).as("byte %d", at + i).isEqualTo(PatternChannel.byteAt(at + i));
                    }
                }
                at += r;
            }
            assertThat(at).isEqualTo(length);
        }
    }

    @ParameterizedTest
    @EnumSource(ExportFormat.class)
    void aSourceThatEndsEarlyOrRunsLongFailsAndLeavesNothing(ExportFormat format) throws Exception {
        Path target = dir.resolve("x." + format.cliName());
        ExportTensor shortOne = new ExportTensor("a", DType.FLOAT32, List.of(4L), () -> Channels.newChannel(new ByteArrayInputStream(new byte[15])));
        ExportTensor longOne = new ExportTensor("b", DType.FLOAT32, List.of(4L), () -> Channels.newChannel(new ByteArrayInputStream(new byte[17])));

        assertThatThrownBy(() -> TensorFileWriter.write(format, List.of(shortOne), Map.of(), target, false, n -> { }))
                .isInstanceOf(IOException.class).hasMessage("tensor 'a': its source ended after 15 of 16 bytes");
        assertThatThrownBy(() -> TensorFileWriter.write(format, List.of(longOne), Map.of(), target, false, n -> { }))
                .isInstanceOf(IOException.class).hasMessage("tensor 'b': its source has more than its 16 bytes");
        assertThat(Files.list(dir)).isEmpty();
    }

    @Test
    void anExistingTargetIsRefusedUnlessOverwriteAndThenReplaced() throws Exception {
        Path target = dir.resolve("m.safetensors");
        Files.writeString(target, "keep me");
        List<ExportTensor> one = tensors(everyDtype().subList(0, 1));

        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.SAFETENSORS, one, Map.of(), target, false, n -> { }))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("exists (pass --force to replace it)");
        assertThat(Files.readString(target)).isEqualTo("keep me");

        TensorFileWriter.write(ExportFormat.SAFETENSORS, one, Map.of(), target, true, n -> { });
        assertThat(Files.size(target)).isGreaterThan(8);
    }

    @Test
    void badInputIsRefusedBeforeAnythingIsWritten() throws Exception {
        ExportTensor a = tensors(everyDtype()).get(3);
        ExportTensor json = new ExportTensor("cfg", DType.JSON, List.of(2L), () -> Channels.newChannel(new ByteArrayInputStream("{}".getBytes())));
        ExportTensor meta = new ExportTensor("__metadata__", DType.INT8, List.of(1L), () -> Channels.newChannel(new ByteArrayInputStream(new byte[1])));
        ExportTensor bytes = tensors(everyDtype()).stream().filter(t -> t.dtype() == DType.BYTES).findFirst().orElseThrow();
        Path target = dir.resolve("m.safetensors");

        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.NPZ, List.of(a, a), Map.of(), target, false, n -> { }))
                .hasMessage("two tensors are named '" + a.name() + "'");
        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.NPZ, List.of(json), Map.of(), target, false, n -> { }))
                .hasMessage("tensor 'cfg' is json, which belongs in the metadata");
        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.SAFETENSORS, List.of(meta), Map.of(), target, false, n -> { }))
                .hasMessageContaining("a tensor named '__metadata__' cannot be written to safetensors");
        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.SAFETENSORS, List.of(bytes),
                Map.of("cairn.dtype." + bytes.name(), "x"), target, false, n -> { }))
                .hasMessageContaining("metadata key 'cairn.dtype." + bytes.name() + "' is also generated by the export");
        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.NPZ, List.of(a), Map.of(), dir.resolve("no/such/dir/m.npz"), false, n -> { }))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not exist");
        assertThatThrownBy(() -> TensorFileWriter.write(ExportFormat.NPZ, List.of(a), Map.of(), dir, true, n -> { }))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("is a directory");
        assertThat(Files.list(dir)).isEmpty();
    }

    @Test
    void leftoversOfAnInterruptedExportToTheSameTargetAreRemoved() throws Exception {
        Path target = dir.resolve("m.npz");
        Path leftover = dir.resolve(".m.npz" + TensorFileWriter.TEMP_MARK + "abc");
        Files.writeString(leftover, "half a file");

        TensorFileWriter.write(ExportFormat.NPZ, tensors(everyDtype().subList(0, 2)), Map.of(), target, false, n -> { });

        assertThat(leftover).doesNotExist();
        assertThat(target).exists();
    }

    @Test
    void formatNamesParseAndAnUnknownOneIsNamed() {
        assertThat(ExportFormat.parse("NPZ")).isEqualTo(ExportFormat.NPZ);
        assertThat(ExportFormat.parse("safetensors")).isEqualTo(ExportFormat.SAFETENSORS);
        assertThatThrownBy(() -> ExportFormat.parse("pickle")).hasMessage("unknown export format 'pickle'; formats are safetensors, npz");
    }

    /** A channel of {@code length} generated bytes that records the largest request it was given. */
    private static final class PatternChannel implements ReadableByteChannel {
        private final long length;
        private final AtomicLong largest;
        private long at;

        PatternChannel(long length, AtomicLong largest) {
            this.length = length;
            this.largest = largest;
        }

        static byte byteAt(long i) {
            return (byte) (i * 31 + (i >>> 13));
        }

        @Override
        public int read(ByteBuffer dst) {
            largest.accumulateAndGet(dst.remaining(), Math::max);
            if (at == length) {
                return -1;
            }
            int n = (int) Math.min(dst.remaining(), length - at);
            for (int i = 0; i < n; i++) {
                dst.put(byteAt(at++));
            }
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {}
    }
}
