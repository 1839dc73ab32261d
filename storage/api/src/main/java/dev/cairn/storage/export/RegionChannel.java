package dev.cairn.storage.export;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * The C-order bytes of a region of a logical tensor, read with {@link CheckpointCatalog#readRegion}
 * one box at a time, each box at most {@code slabBytes}: slabs of whole rows along dimension 0, or,
 * when one row is larger than that, slabs along the first dimension whose trailing block fits
 * (boxes of one index in every dimension before it). Boxes follow each other in C order, so their
 * bytes concatenate to the region's. A read into a buffer too small for the next box stages the box.
 */
final class RegionChannel implements ReadableByteChannel {
    private final CheckpointCatalog catalog;
    private final Manifest manifest;
    private final LogicalTensor tensor;
    private final long[] offsets;
    private final long[] shape;
    /** The dimension boxes are cut along; the ones before it advance one index at a time. */
    private final int cut;
    private final long rowsPerBox;
    private final long[] index;
    private boolean done;
    private ByteBuffer staged;

    RegionChannel(CheckpointCatalog catalog, Manifest manifest, LogicalTensor tensor, long[] offsets, long[] shape, long slabBytes) {
        this.catalog = catalog;
        this.manifest = manifest;
        this.tensor = tensor;
        this.offsets = offsets.clone();
        this.shape = shape.clone();
        this.index = new long[shape.length];
        int k = 0;
        long inner = tensor.dtype().byteLength(tail(shape, 1));
        while (k < shape.length - 1 && inner > slabBytes) {
            k++;
            inner = tensor.dtype().byteLength(tail(shape, k + 1));
        }
        this.cut = k;
        this.rowsPerBox = Math.max(1, slabBytes / Math.max(1, inner));
        for (long d : shape) {
            done |= d == 0;
        }
    }

    private static long[] tail(long[] shape, int from) {
        return java.util.Arrays.copyOfRange(shape, Math.min(from, shape.length), shape.length);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (staged != null && staged.hasRemaining()) {
            return drainStaged(dst);
        }
        if (done) {
            return -1;
        }
        long[] boxOffsets = new long[shape.length];
        long[] boxShape = new long[shape.length];
        for (int d = 0; d < shape.length; d++) {
            boxOffsets[d] = offsets[d] + (d <= cut ? index[d] : 0);
            boxShape[d] = d < cut ? 1 : d == cut ? Math.min(rowsPerBox, shape[d] - index[d]) : shape[d];
        }
        int bytes = Math.toIntExact(tensor.dtype().byteLength(boxShape));
        advance(boxShape);
        if (dst.remaining() >= bytes) {
            catalog.readRegion(manifest, tensor, null, boxOffsets, boxShape, dst);
            return bytes;
        }
        staged = ByteBuffer.allocate(bytes);
        catalog.readRegion(manifest, tensor, null, boxOffsets, boxShape, staged);
        staged.flip();
        return drainStaged(dst);
    }

    /** Moves to the next box in C order. */
    private void advance(long[] boxShape) {
        if (shape.length == 0) {
            done = true;
            return;
        }
        index[cut] += boxShape[cut];
        for (int d = cut; d > 0 && index[d] >= shape[d]; d--) {
            index[d] = 0;
            index[d - 1]++;
        }
        done = index[0] >= shape[0];
    }

    private int drainStaged(ByteBuffer dst) {
        int n = Math.min(dst.remaining(), staged.remaining());
        dst.put(dst.position(), staged, staged.position(), n).position(dst.position() + n);
        staged.position(staged.position() + n);
        return n;
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    public void close() {}
}
