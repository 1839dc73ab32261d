package dev.cairn.harness;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The baselines the throughput figures are measured against, on the same workers and storage:
 * a plain copy of the state (the stall's), the naive synchronous save, and plain writes and
 * reads of the same bytes (save and restore throughput's).
 */
final class BenchBaselines {
    private final BenchWorkers w;
    private final StorageUri uri;
    private final CheckpointStore store;

    BenchBaselines(BenchWorkers workers, StorageUri uri, CheckpointStore store) {
        this.w = workers;
        this.uri = uri;
        this.store = store;
    }

    /**
     * The baseline of the stall: every worker copies its state into warm heap memory, in parallel
     * (one bulk copy per entry, no page faults: the target was touched at prepare). A copy into warm
     * off-heap memory, as Cairn's staging chunks are, runs at the same speed (JMH: 12.98 against
     * 13.43 ms for 64 MiB). Returns ms.
     */
    double copy() throws Exception {
        long[] nanos = w.parallel(worker -> {
            long t0 = System.nanoTime();
            ByteBuffer src = w.state[worker].duplicate();
            for (long off = 0; off < w.shardBytes; off += w.entryBytes) {
                int n = (int) Math.min(w.entryBytes, w.shardBytes - off);
                src.limit((int) off + n).position((int) off);
                src.get(w.dest[worker], (int) off, n);
            }
            return System.nanoTime() - t0;
        });
        return BenchStats.max(nanos) / 1e6;
    }

    /** The naive way: every worker blocks until its shard is durable (write, fsync, rename) through the store. Returns ms. */
    double naiveSave(long step) throws Exception {
        long[] nanos = w.parallel(worker -> {
            long t0 = System.nanoTime();
            try (ObjectWriter writer = store.create("naive/step-" + step + "/worker-" + worker + ".bin")) {
                writeState(worker, writer, 1 << 20);
            }
            return System.nanoTime() - t0;
        });
        store.deleteAll(store.list("naive/").stream().map(ObjectInfo::key).toList());
        return BenchStats.max(nanos) / 1e6;
    }

    private static String rawKey(int worker) {
        return "raw/worker-" + worker + ".bin";
    }

    /**
     * The baseline of save throughput: every worker writes the same bytes with a plain client of the
     * storage, durably (for files a FileChannel writing straight from the off-heap state, one copy
     * into the page cache, and one fsync; the store's own writer elsewhere). Returns ms.
     */
    double rawWrite() throws Exception {
        long t0 = System.nanoTime();
        w.parallel(worker -> {
            if (uri.scheme().equals("file")) {
                ByteBuffer src = w.state[worker].duplicate();
                Path p = Path.of(uri.path(), rawKey(worker));
                Files.createDirectories(p.getParent());
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.TRUNCATE_EXISTING)) {
                    while (src.hasRemaining()) {
                        ByteBuffer slice = src.slice().limit(Math.min(src.remaining(), w.entryBytes));
                        while (slice.hasRemaining()) {
                            ch.write(slice);
                        }
                        src.position(src.position() + slice.position());
                    }
                    ch.force(true);
                }
            } else {
                try (ObjectWriter writer = store.create(rawKey(worker))) {
                    writeState(worker, writer, Math.min(w.entryBytes, 8 << 20));
                }
            }
            return 0L;
        });
        return (System.nanoTime() - t0) / 1e6;
    }

    /** Writes a worker's whole state through a heap buffer of {@code bufferBytes} and commits. */
    private void writeState(int worker, ObjectWriter writer, int bufferBytes) throws IOException {
        byte[] buf = new byte[bufferBytes];
        ByteBuffer src = w.state[worker].duplicate();
        while (src.hasRemaining()) {
            int n = Math.min(buf.length, src.remaining());
            src.get(buf, 0, n);
            writer.write(buf, 0, n);
        }
        writer.commit();
    }

    /**
     * The baseline of restore throughput: every worker reads the same bytes back into its warm heap
     * array, in parallel, the best plain way. For files that is one copy out of the page cache: the
     * file mapped ({@link FileChannel#map}) and copied entry by entry; a positional
     * {@code FileChannel.read} into a heap buffer copies twice (the JDK reads into a temporary
     * direct buffer first), see {@link #channelRead()}. Elsewhere: the store's ranged reads. Returns ms.
     */
    double rawRead() throws Exception {
        long t0 = System.nanoTime();
        w.parallel(worker -> {
            if (uri.scheme().equals("file")) {
                try (FileChannel ch = FileChannel.open(Path.of(uri.path(), rawKey(worker)), StandardOpenOption.READ)) {
                    MappedByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, w.shardBytes);
                    for (long off = 0; off < w.shardBytes; off += w.entryBytes) {
                        int n = (int) Math.min(w.entryBytes, w.shardBytes - off);
                        mapped.get((int) off, w.dest[worker], (int) off, n);
                    }
                }
            } else {
                for (long off = 0; off < w.shardBytes; off += w.entryBytes) {
                    int n = (int) Math.min(w.entryBytes, w.shardBytes - off);
                    try (InputStream in = store.read(rawKey(worker), off, n)) {
                        if (in.readNBytes(w.dest[worker], (int) off, n) != n) {
                            throw new IOException("short read of " + rawKey(worker));
                        }
                    }
                }
            }
            return 0L;
        });
        return (System.nanoTime() - t0) / 1e6;
    }

    /**
     * The restore baseline before 2026-11-26, kept for comparison on files: positional
     * {@code FileChannel.read} into the heap array (two copies: kernel to the JDK's temporary direct
     * buffer, then to the array). Returns ms, or NaN when the storage is not a file.
     */
    double channelRead() throws Exception {
        if (!uri.scheme().equals("file")) {
            return Double.NaN;
        }
        long t0 = System.nanoTime();
        w.parallel(worker -> {
            try (FileChannel ch = FileChannel.open(Path.of(uri.path(), rawKey(worker)), StandardOpenOption.READ)) {
                for (long off = 0; off < w.shardBytes; off += w.entryBytes) {
                    int n = (int) Math.min(w.entryBytes, w.shardBytes - off);
                    ByteBuffer b = ByteBuffer.wrap(w.dest[worker], (int) off, n);
                    while (b.hasRemaining()) {
                        if (ch.read(b, b.position()) < 0) { // array offset == file offset
                            throw new IOException("short read of " + rawKey(worker));
                        }
                    }
                }
            }
            return 0L;
        });
        return (System.nanoTime() - t0) / 1e6;
    }
}
