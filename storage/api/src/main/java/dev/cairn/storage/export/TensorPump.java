package dev.cairn.storage.export;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Copies each tensor from its source to a format's output through one reused buffer of at most
 * {@link TensorFileWriter#SLAB_BYTES}, checking that the source gives exactly the tensor's length.
 */
final class TensorPump {
    /** Where a format puts a tensor's bytes. */
    interface Sink {
        /** Consumes {@code bytes}' remaining bytes (a heap buffer). */
        void write(ByteBuffer bytes) throws IOException;
    }

    private final ByteBuffer buffer;
    private final LongConsumer progress;

    TensorPump(List<ExportTensor> tensors, LongConsumer progress) {
        long largest = tensors.stream().mapToLong(ExportTensor::byteLength).max().orElse(0);
        this.buffer = ByteBuffer.allocate((int) Math.max(1, Math.min(TensorFileWriter.SLAB_BYTES, largest)));
        this.progress = progress;
    }

    /** Copies {@code tensor}'s bytes to {@code sink}; returns how many. */
    long copy(ExportTensor tensor, Sink sink) throws IOException {
        long expected = tensor.byteLength();
        long done = 0;
        try (ReadableByteChannel in = tensor.source().open()) {
            while (done < expected) {
                // one read per slab: a region source hands over one box per read, sized to fit an empty buffer
                buffer.clear().limit((int) Math.min(buffer.capacity(), expected - done));
                int n;
                do {
                    n = in.read(buffer);
                } while (n == 0);
                if (n < 0) {
                    throw new IOException("tensor '" + tensor.name() + "': its source ended after " + done + " of " + expected + " bytes");
                }
                buffer.flip();
                sink.write(buffer);
                done += n;
                progress.accept(n);
            }
            // reading past the end makes a checked stream verify its checksum, and catches a source too long
            buffer.clear().limit(1);
            if (in.read(buffer) > 0) {
                throw new IOException("tensor '" + tensor.name() + "': its source has more than its " + expected + " bytes");
            }
        }
        return done;
    }
}
