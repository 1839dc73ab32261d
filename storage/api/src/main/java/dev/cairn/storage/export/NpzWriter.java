package dev.cairn.storage.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes an npz file as {@code numpy.savez} does: a zip with one {@code <name>.npy} member per
 * tensor (a {@code /} in the name is a zip folder; {@code numpy.load(f)[name]} finds it), plus a
 * {@code __metadata__.json} member holding the metadata as one JSON object of strings. Members are
 * deflated at level 0 (stored blocks: tensors hardly compress, and streaming needs no size or CRC
 * up front); ZIP64 records are written when a member or the file passes 4 GiB.
 */
final class NpzWriter {
    static final String METADATA_MEMBER = "__metadata__.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private NpzWriter() {}

    static void write(List<ExportTensor> tensors, Map<String, String> metadata, Path file, TensorPump pump) throws IOException {
        Map<String, String> meta = new java.util.LinkedHashMap<>(metadata);
        for (ExportTensor t : tensors) {
            if (StoredType.npy(t.dtype(), t.shapeArray()).view()) {
                TensorFileWriter.putNew(meta, StoredType.DTYPE_KEY + t.name(), t.dtype().numpyName());
            }
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             ZipOutputStream zip = new ZipOutputStream(new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16))) {
            zip.setLevel(Deflater.NO_COMPRESSION);
            zip.putNextEntry(new ZipEntry(METADATA_MEMBER));
            zip.write(JSON.writeValueAsBytes(meta));
            zip.closeEntry();
            for (ExportTensor t : tensors) {
                byte[] header = NpyHeader.of(StoredType.npy(t.dtype(), t.shapeArray()));
                zip.putNextEntry(new ZipEntry(t.name() + ".npy"));
                zip.write(header);
                pump.copy(t, bytes -> zip.write(bytes.array(), bytes.arrayOffset() + bytes.position(), bytes.remaining()));
                zip.closeEntry();
            }
            zip.finish();
            zip.flush();
            channel.force(true);
        }
    }
}
