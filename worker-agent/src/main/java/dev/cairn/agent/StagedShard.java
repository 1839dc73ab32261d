package dev.cairn.agent;

import dev.cairn.storage.DType;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Manifest;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One save's snapshot on its way from the trainer to storage: the trainer appends entries (copying
 * their bytes into staging chunks), the uploader takes filled chunks in order as soon as they are
 * full. Entries are registered before their bytes are queued, so the uploader always knows which
 * entry a byte belongs to.
 *
 * <p>The uploader holds back while the snapshot fits in staging: on a machine with few cores,
 * streaming during the copy takes CPU (checksums, the write's copy into the page cache) from the
 * trainer, which is blocked until the copy ends. It starts when the snapshot is sealed, or as soon
 * as the trainer would wait for a chunk, so a snapshot larger than the budget still streams
 * through bounded memory (the trainer then waits only for the first chunk to be written).
 */
final class StagedShard implements Snapshot {
    /** An entry's place in the staged byte stream, with its type (manifest format 2's typed entries). */
    record StagedEntry(String name, boolean replicated, long length, Manifest.Tensor tensor) {
        DType dtype() {
            return tensor.dtype();
        }

        long[] shape() {
            return tensor.shapeArray();
        }
    }

    /**
     * A filled chunk; bytes [0, {@code length}) of {@code data} are valid. {@code END} has no data.
     * A {@code borrowed} chunk is a slice of a caller's buffer ({@link #putInPlace}), not the pool's.
     */
    record Chunk(ByteBuffer data, int length, boolean borrowed) {
        Chunk(ByteBuffer data, int length) {
            this(data, length, false);
        }
    }

    /** Largest slice of an in-place entry queued as one chunk. */
    private static final int BORROWED_CHUNK = 64 << 20;

    static final Chunk END = new Chunk(null, 0);

    private final StagingPool pool;
    private final long step;
    private final List<StagedEntry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();
    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final BlockingQueue<Chunk> filled = new LinkedBlockingQueue<>();
    private ByteBuffer current;
    private long stagedBytes;
    private volatile boolean discarded;
    /** Uploader thread only: the end marker has been taken. */
    private boolean ended;
    /** Set once the uploader may take chunks; guarded by {@code this}. */
    private boolean streaming;
    /** Streaming started because the trainer needed chunks back (not because the snapshot ended). */
    private boolean underPressure;
    private boolean sealed;
    /**
     * How long a sealed shard's upload defers to other snapshots of this process at most: long
     * enough for a copy of a large shard, short against an upload.
     */
    private static final long DEFER_TO_OTHER_SNAPSHOTS_MILLIS = 2_000;

    StagedShard(StagingPool pool, long step) {
        this.pool = pool;
        this.step = step;
        SnapshotGate.begin();
    }

    @Override
    public void put(String name, byte[] bytes, int offset, int length) {
        appendBytes(name, false, ByteBuffer.wrap(bytes, offset, length));
    }

    @Override
    public void put(String name, ByteBuffer buffer) {
        appendBytes(name, false, buffer.duplicate());
    }

    @Override
    public void put(String name, ByteBuffer buffer, DType dtype, long... shape) {
        append(name, false, dtype, shape.clone(), buffer.duplicate(), null);
    }

    @Override
    public void put(String name, ByteBuffer buffer, Manifest.Tensor tensor) {
        append(name, false, tensor, buffer.duplicate(), null);
    }

    @Override
    public void put(String name, float[] values) {
        append(name, false, DType.FLOAT32, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void put(String name, double[] values) {
        append(name, false, DType.FLOAT64, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void put(String name, int[] values) {
        append(name, false, DType.INT32, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void put(String name, long[] values) {
        append(name, false, DType.INT64, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void put(String name, short[] values) {
        append(name, false, DType.INT16, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void putReplicated(String name, byte[] bytes, int offset, int length) {
        appendBytes(name, true, ByteBuffer.wrap(bytes, offset, length));
    }

    @Override
    public void putReplicated(String name, ByteBuffer buffer) {
        appendBytes(name, true, buffer.duplicate());
    }

    @Override
    public void putReplicated(String name, ByteBuffer buffer, DType dtype, long... shape) {
        append(name, true, dtype, shape.clone(), buffer.duplicate(), null);
    }

    @Override
    public void putReplicated(String name, ByteBuffer buffer, Manifest.Tensor tensor) {
        append(name, true, tensor, buffer.duplicate(), null);
    }

    @Override
    public void putReplicated(String name, float[] values) {
        append(name, true, DType.FLOAT32, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void putReplicated(String name, double[] values) {
        append(name, true, DType.FLOAT64, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void putReplicated(String name, int[] values) {
        append(name, true, DType.INT32, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void putReplicated(String name, long[] values) {
        append(name, true, DType.INT64, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void putReplicated(String name, short[] values) {
        append(name, true, DType.INT16, new long[] {values.length}, null, ArraySource.of(values));
    }

    @Override
    public void metadata(String key, Object value) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("metadata key is empty (save of step " + step + ")");
        }
        if (!(value instanceof String || value instanceof Number || value instanceof Boolean)) {
            throw new IllegalArgumentException("metadata '" + key + "' must be a String, Number or Boolean (save of step " + step + ")");
        }
        synchronized (this) {
            metadata.put(key, value);
        }
    }

    @Override
    public void putInPlace(String name, ByteBuffer buffer, Manifest.Tensor tensor, boolean replicated) {
        ByteBuffer bytes = buffer.slice();
        register(name, replicated, tensor, bytes.remaining());
        flush(); // the copied bytes before it go first: the stream keeps the entries' order
        for (int p = 0; p < bytes.limit(); p += BORROWED_CHUNK) {
            int n = Math.min(BORROWED_CHUNK, bytes.limit() - p);
            if (!discarded) {
                filled.add(new Chunk(bytes.slice(p, n), n, true));
            }
        }
    }

    private void appendBytes(String name, boolean replicated, ByteBuffer src) {
        append(name, replicated, DType.BYTES, new long[] {src.remaining()}, src, null);
    }

    /** Copies one entry from {@code bytes} or, when that is null, from {@code array}. */
    private void append(String name, boolean replicated, DType dtype, long[] shape, ByteBuffer bytes, ArraySource array) {
        append(name, replicated, Manifest.Tensor.of(dtype, shape), bytes, array);
    }

    private void append(String name, boolean replicated, Manifest.Tensor tensor, ByteBuffer bytes, ArraySource array) {
        long length = bytes != null ? bytes.remaining() : array.remaining();
        register(name, replicated, tensor, length);
        copyIn(bytes, array, length, name);
    }

    /** Checks an entry's name and type and adds it to the snapshot's list (before any of its bytes are queued). */
    private void register(String name, boolean replicated, Manifest.Tensor tensor, long length) {
        try {
            EntryNames.check(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + " (save of step " + step + ")");
        }
        try {
            tensor.check(length);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("entry '" + name + "': " + e.getMessage() + " (save of step " + step + ")");
        }
        if (!names.add(name)) {
            throw new IllegalArgumentException("entry '" + name + "' is put twice (save of step " + step + ")");
        }
        synchronized (this) {
            entries.add(new StagedEntry(name, replicated, length, tensor));
        }
        stagedBytes += length;
    }

    private void copyIn(ByteBuffer bytes, ArraySource array, long left, String name) {
        try {
            while (left > 0) {
                if (current == null) {
                    current = pool.tryAcquire();
                    if (current == null) {
                        startStreaming(true); // the pool is exhausted: only the uploader can free chunks
                        current = pool.acquire();
                    }
                }
                int n = (int) Math.min(left, current.remaining());
                if (bytes != null) {
                    int limit = bytes.limit();
                    current.put(bytes.limit(bytes.position() + n));
                    bytes.limit(limit);
                } else {
                    array.copyTo(current, n);
                }
                left -= n;
                if (!current.hasRemaining()) {
                    flush();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while staging entry '" + name + "' of step " + step, e);
        }
    }

    private void flush() {
        if (current != null) {
            if (discarded) {
                pool.release(current);
            } else {
                filled.add(new Chunk(current, current.position()));
            }
            current = null;
        }
    }

    private synchronized void startStreaming(boolean pressure) {
        underPressure |= pressure;
        if (!streaming) {
            streaming = true;
            notifyAll();
        }
    }

    /** The trainer is done: queue the last partial chunk and the end marker. */
    void seal() {
        entriesComplete = true; // before the last chunk is queued: the uploader may read it at once
        flush();
        filled.add(END);
        synchronized (this) {
            if (sealed) {
                return;
            }
            sealed = true;
        }
        SnapshotGate.end();
        startStreaming(false);
    }

    /**
     * Uploader side: the next chunk in order, or {@link #END}. Waits until streaming starts; a
     * shard that was sealed without needing its chunks back first defers (boundedly) to the other
     * snapshots of this process still being copied.
     */
    Chunk take() throws InterruptedException {
        boolean defer;
        synchronized (this) {
            while (!streaming) {
                wait();
            }
            defer = !underPressure && deferOnce;
            deferOnce = false;
        }
        if (defer) {
            SnapshotGate.awaitQuiet(DEFER_TO_OTHER_SNAPSHOTS_MILLIS);
            // the trainer that sealed (and so woke this thread) is still returning from save(): on a
            // machine with no idle core, let it go first instead of preempting it
            Thread.yield();
        }
        Chunk c = filled.take();
        if (c == END) {
            ended = true;
        }
        return c;
    }

    private boolean deferOnce = true;

    /** The entry at {@code index}; it is registered before any of its bytes are queued. */
    synchronized StagedEntry entry(int index) {
        return entries.get(index);
    }

    /** Whether the trainer is done: no entry is added any more. */
    boolean isSealed() {
        return entriesComplete;
    }

    private volatile boolean entriesComplete;

    synchronized int entryCount() {
        return entries.size();
    }

    synchronized Map<String, Object> metadata() {
        return new LinkedHashMap<>(metadata);
    }

    long stagedBytes() {
        return stagedBytes;
    }

    void release(Chunk c) {
        if (c.data() != null && !c.borrowed()) {
            pool.release(c.data());
        }
    }

    /**
     * Uploader side, when the save is aborted: frees every chunk up to the end marker. From now on
     * the trainer frees its chunks at once instead of queueing them.
     */
    void drainToEnd() throws InterruptedException {
        discarded = true;
        if (ended) {
            return; // the end marker was consumed already (e.g. a commit failed after the last chunk)
        }
        Chunk c;
        while ((c = take()) != END) {
            release(c);
        }
    }
}
