package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real store that counts the ranged reads made through it and the bytes they asked for;
 * {@link #of} adds {@link SupportsRangedReads} when the store has it.
 */
class CountingStore implements CheckpointStore {
    private final CheckpointStore delegate;
    final AtomicLong reads = new AtomicLong();
    final AtomicLong bytes = new AtomicLong();

    CountingStore(CheckpointStore delegate) {
        this.delegate = delegate;
    }

    static CountingStore of(CheckpointStore delegate) {
        return delegate instanceof SupportsRangedReads r ? new Ranged(delegate, r) : new CountingStore(delegate);
    }

    /** Counts the reads through ranged-read handles too. */
    static final class Ranged extends CountingStore implements SupportsRangedReads {
        private final SupportsRangedReads ranged;
        final AtomicLong opens = new AtomicLong();

        Ranged(CheckpointStore delegate, SupportsRangedReads ranged) {
            super(delegate);
            this.ranged = ranged;
        }

        @Override
        public Ranges openRanges(String key) throws IOException {
            Ranges r = ranged.openRanges(key);
            opens.incrementAndGet();
            return new Ranges() {
                @Override
                public InputStream read(long offset, long length) throws IOException {
                    reads.incrementAndGet();
                    bytes.addAndGet(length);
                    return r.read(offset, length);
                }

                @Override
                public void close() throws IOException {
                    r.close();
                }
            };
        }
    }

    void reset() {
        reads.set(0);
        bytes.set(0);
    }

    @Override
    public StorageUri uri() {
        return delegate.uri();
    }

    @Override
    public ObjectWriter create(String key) throws IOException {
        return delegate.create(key);
    }

    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        return delegate.createIfAbsent(key, content);
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        reads.incrementAndGet();
        bytes.addAndGet(length);
        return delegate.read(key, offset, length);
    }

    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        return delegate.stat(key);
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        return delegate.list(prefix);
    }

    @Override
    public void delete(String key) throws IOException {
        delegate.delete(key);
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }
}
