package dev.cairn.harness;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.DType;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.RegionRead;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One restoring worker of the resharded-restore figure ({@link BenchReshard}): its {@link RowSplit}
 * row block of every tensor, its own store, and its warm heap buffer; it reads the block with
 * {@link CheckpointCatalog#readRegion} or with the plain ranged reads of the baseline, whose byte
 * ranges it computes from the manifest's piece offsets, and checks every byte against the values
 * the savers wrote ({@link #fillRow}).
 */
final class ReshardReader {
    static final int COLS = 1024;
    static final long ROW_BYTES = COLS * 4L;

    private final int tensors;
    private final RowSplit part;
    private final StorageUri uri;
    private final CheckpointCatalog catalog;
    private final Manifest manifest;
    private final ByteBuffer dest;
    /**
     * The baseline's plain reads, from the manifest's layout: {object index in {@link #keys}, offset
     * in it, length, offset in dest, 1 when the range is a whole stored entry, that entry's CRC32C}.
     */
    private final List<long[]> ranges = new ArrayList<>();
    private final List<String> keys = new ArrayList<>();

    ReshardReader(RowSplit part, int tensors, StorageUri uri, CheckpointCatalog catalog, Manifest manifest) {
        this.part = part;
        this.tensors = tensors;
        this.uri = uri;
        this.catalog = catalog;
        this.manifest = manifest;
        this.dest = ByteBuffer.allocate((int) (part.rows() * ROW_BYTES * tensors));
        java.util.Arrays.fill(dest.array(), (byte) 1); // warm, as a trainer's tensors are
        for (int t = 0; t < tensors; t++) {
            for (Manifest.EntryRef e : manifest.entries()) {
                if (!e.name().equals(name(t))) {
                    continue;
                }
                long pieceStart = e.tensor().globalOffsets().get(0);
                long lo = Math.max(pieceStart, part.start());
                long hi = Math.min(pieceStart + e.tensor().shape().get(0), part.end());
                if (lo < hi) {
                    keys.add(manifest.shard(e.worker()).objectKey());
                    boolean whole = (hi - lo) * ROW_BYTES == e.length();
                    ranges.add(new long[] {keys.size() - 1, e.offset() + (lo - pieceStart) * ROW_BYTES, (hi - lo) * ROW_BYTES,
                            t * part.rows() * ROW_BYTES + (lo - part.start()) * ROW_BYTES, whole ? 1 : 0, e.crc32c()});
                }
            }
        }
    }

    RegionRead cairnRead() throws IOException {
        RegionRead total = RegionRead.NONE;
        ByteBuffer d = dest.duplicate();
        for (int t = 0; t < tensors; t++) {
            d.position((int) (t * part.rows() * ROW_BYTES));
            total = total.plus(catalog.readRegion(manifest, name(t), DType.FLOAT32, new long[] {part.start(), 0},
                    new long[] {part.rows(), COLS}, d));
        }
        return total;
    }

    /**
     * The plain reads; with {@code check}, also the CRC32C of every range that is a whole stored
     * entry, as readRegion checks them (the same integrity work, to show what the check costs).
     */
    void plainRead(boolean check) throws IOException {
        if (uri.scheme().equals("file")) {
            Map<String, FileChannel> open = new HashMap<>();
            try {
                for (long[] r : ranges) {
                    String key = keys.get((int) r[0]);
                    FileChannel ch = open.get(key);
                    if (ch == null) {
                        ch = FileChannel.open(Path.of(uri.path(), key), StandardOpenOption.READ);
                        open.put(key, ch);
                    }
                    ch.map(FileChannel.MapMode.READ_ONLY, r[1], r[2]).get(0, dest.array(), (int) r[3], (int) r[2]);
                    checkCrc(check, r);
                }
            } finally {
                for (FileChannel ch : open.values()) {
                    ch.close();
                }
            }
        } else {
            for (long[] r : ranges) {
                try (InputStream in = catalog.store().read(keys.get((int) r[0]), r[1], r[2])) {
                    if (in.readNBytes(dest.array(), (int) r[3], (int) r[2]) != r[2]) {
                        throw new IOException("short read of " + keys.get((int) r[0]));
                    }
                }
                checkCrc(check, r);
            }
        }
    }

    private void checkCrc(boolean check, long[] r) throws IOException {
        if (check && r[4] == 1) {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            crc.update(dest.array(), (int) r[3], (int) r[2]);
            if ((int) crc.getValue() != (int) r[5]) {
                throw new IOException("reshard bench: CRC32C mismatch in " + keys.get((int) r[0]));
            }
        }
    }

    /** Checks every byte of the buffer against the saved values; clears it for the next read. */
    void verify(String how) {
        ByteBuffer d = dest.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int t = 0; t < tensors; t++) {
            for (long r = part.start(); r < part.end(); r++) {
                long x = seed(t, r);
                for (int i = 0; i < ROW_BYTES / 8; i++) {
                    x = next(x);
                    if (d.getLong() != x) {
                        throw new IllegalStateException("reshard bench: " + how + " restored wrong bytes at row " + r + " of " + name(t));
                    }
                }
            }
        }
        java.util.Arrays.fill(dest.array(), (byte) 1);
    }

    static String name(int tensor) {
        return String.format(Locale.ROOT, "model/layer_%03d/kernel", tensor);
    }

    /** Appends row {@code row} of tensor {@code tensor}: values that depend on both, so a misplaced row is found. */
    static void fillRow(ByteBuffer b, int tensor, long row) {
        long x = seed(tensor, row);
        for (int i = 0; i < ROW_BYTES / 8; i++) {
            x = next(x);
            b.putLong(x);
        }
    }

    private static long seed(int tensor, long row) {
        return 0x9E3779B97F4A7C15L * (tensor + 1) ^ (row + 1) * 0xC2B2AE3D27D4EB4FL;
    }

    private static long next(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        return x ^ x << 17;
    }
}
