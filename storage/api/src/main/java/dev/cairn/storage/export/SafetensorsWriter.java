package dev.cairn.storage.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file: an 8-byte little-endian header length N, N bytes of JSON (padded with
 * spaces so the data starts at a multiple of 8), then the tensors' bytes back to back in header
 * order. Tensors are ordered by item size (largest first), then name, as the safetensors library
 * does, so every tensor starts at a multiple of its item size.
 */
final class SafetensorsWriter {
    /** The safetensors library refuses larger headers. */
    static final int MAX_HEADER_BYTES = 100_000_000;
    static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {}

    /** Writes the file at {@code file} (created; must not exist); returns the tensors in file order. */
    static List<ExportTensor> write(List<ExportTensor> tensors, Map<String, String> metadata, Path file, TensorPump pump) throws IOException {
        List<ExportTensor> ordered = new ArrayList<>(tensors);
        ordered.sort(Comparator.comparingInt((ExportTensor t) -> -itemSize(t)).thenComparing(ExportTensor::name));
        Map<String, Object> header = new LinkedHashMap<>();
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        long offset = 0;
        for (ExportTensor t : ordered) {
            if (t.name().equals(METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor named '" + METADATA_KEY + "' cannot be written to safetensors (the header's metadata key)");
            }
            StoredType stored = StoredType.safetensors(t.dtype(), t.shapeArray());
            if (stored.view()) {
                TensorFileWriter.putNew(meta, StoredType.DTYPE_KEY + t.name(), t.dtype().numpyName());
            }
            long end = offset + t.byteLength();
            header.put(t.name(), Map.of("dtype", stored.name(), "shape", stored.shape(), "data_offsets", new long[] {offset, end}));
            offset = end;
        }
        Map<String, Object> document = new LinkedHashMap<>();
        if (!meta.isEmpty()) {
            document.put(METADATA_KEY, meta);
        }
        document.putAll(header);
        ByteBuffer head = encodeHeader(document);
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            writeFully(out, head);
            for (ExportTensor t : ordered) {
                pump.copy(t, bytes -> writeFully(out, bytes));
            }
            out.force(true);
        }
        return ordered;
    }

    private static int itemSize(ExportTensor t) {
        return t.dtype().itemSize() / (t.dtype().name().startsWith("COMPLEX") ? 2 : 1);
    }

    private static ByteBuffer encodeHeader(Map<String, Object> document) throws JsonProcessingException {
        byte[] json = JSON.writeValueAsBytes(document);
        int padded = (json.length + 7) / 8 * 8;
        if (padded > MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("the safetensors header would be " + padded + " bytes, more than the "
                    + MAX_HEADER_BYTES + " readers accept (too many tensors or too much metadata)");
        }
        ByteBuffer b = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(json);
        while (b.hasRemaining()) {
            b.put((byte) ' ');
        }
        return b.flip();
    }

    private static void writeFully(FileChannel out, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            out.write(bytes);
        }
    }
}
