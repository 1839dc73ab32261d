package dev.cairn.storage.export;

import static java.util.Objects.requireNonNull;

import dev.cairn.storage.DType;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.util.List;

/**
 * One tensor of an export file: its name in the file, its element type and shape, and where its
 * bytes come from.
 *
 * @param name the tensor's name in the file (npz: a zip path, so {@code /} makes folders)
 * @param dtype the element type; {@link DType#JSON} is not a tensor (it goes to the metadata)
 * @param shape the dimensions ({@code []} for a scalar)
 * @param source opens the tensor's bytes: little-endian, C order, exactly
 *     {@code dtype.byteLength(shape)} of them
 */
public record ExportTensor(String name, DType dtype, List<Long> shape, Source source) {
    public ExportTensor {
        requireNonNull(name, "name is null");
        requireNonNull(dtype, "dtype is null");
        shape = List.copyOf(shape);
        requireNonNull(source, "source is null");
    }

    /** Opens a tensor's bytes, once, when the writer reaches it. */
    @FunctionalInterface
    public interface Source {
        /**
         * A channel of the tensor's bytes. The writer hands it buffers of at least
         * {@link TensorFileWriter#SLAB_BYTES} remaining bytes (or what is left of the tensor, if
         * less) and closes it when done.
         */
        ReadableByteChannel open() throws IOException;
    }

    /** Bytes of the tensor: itemsize × product(shape). */
    public long byteLength() {
        return dtype.byteLength(shapeArray());
    }

    long[] shapeArray() {
        return shape.stream().mapToLong(Long::longValue).toArray();
    }
}
