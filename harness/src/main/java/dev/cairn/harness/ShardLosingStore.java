package dev.cairn.harness;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import dev.cairn.storage.SupportsAbandonedWrites;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A deliberately broken store for the chaos checker's self-test ({@code cairn coordinator
 * --unsafe-commit-before-durable}): right before a manifest's create-if-absent it deletes the
 * object of one non-empty shard of that save, so the coordinator commits a checkpoint that cannot
 * be restored. The campaign's checker must report it. Never use it for anything else.
 */
public final class ShardLosingStore implements CheckpointStore, SupportsAbandonedWrites {
    private static final Logger LOG = LoggerFactory.getLogger(ShardLosingStore.class);

    private final CheckpointStore delegate;

    public ShardLosingStore(CheckpointStore delegate) {
        this.delegate = delegate;
    }

    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        if (Layout.stepOfManifestKey(key).isPresent()) {
            loseOneShard(key, content);
        }
        return delegate.createIfAbsent(key, content);
    }

    private void loseOneShard(String key, byte[] content) throws IOException {
        Manifest m;
        try {
            m = ManifestCodec.decode(content, key);
        } catch (ManifestException e) {
            return;
        }
        for (int i = m.shards().size() - 1; i >= 0; i--) {
            Manifest.ShardRef shard = m.shards().get(i);
            if (shard.objectKey() != null && shard.length() > 0) {
                LOG.error("save {}: deleting shard {} of worker {} before its manifest is written (deliberately broken store)",
                        m.saveId(), shard.objectKey(), shard.worker());
                delegate.delete(shard.objectKey());
                return;
            }
        }
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
    public InputStream read(String key, long offset, long length) throws IOException {
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
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        return delegate.listAfter(prefix, startAfter);
    }

    @Override
    public void delete(String key) throws IOException {
        delegate.delete(key);
    }

    @Override
    public void deleteAll(Collection<String> keys) throws IOException {
        delegate.deleteAll(keys);
    }

    @Override
    public List<ObjectInfo> listAbandonedWrites(String prefix) throws IOException {
        return delegate instanceof SupportsAbandonedWrites a ? a.listAbandonedWrites(prefix) : List.of();
    }

    @Override
    public void deleteAbandonedWrite(String path) throws IOException {
        if (delegate instanceof SupportsAbandonedWrites a) {
            a.deleteAbandonedWrite(path);
        }
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }
}
