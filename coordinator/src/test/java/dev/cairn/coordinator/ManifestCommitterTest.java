package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The commit's check of every reported shard object against a real local store: parallel for large worlds, same answer. */
class ManifestCommitterTest {
    private static final long STEP = 10;
    private static final String SAVE_ID = Layout.newSaveId(STEP);

    @TempDir
    Path dir;

    private StorageUri uri;
    private CheckpointStore local;

    @BeforeEach
    void open() throws Exception {
        uri = StorageUri.parse(dir.resolve("run-1").toUri().toString());
        local = CheckpointStores.open(uri, true);
    }

    @AfterEach
    void close() throws Exception {
        local.close();
    }

    private ManifestCommitter committer(CheckpointStore store) {
        CoordinatorConfig config = CoordinatorConfig.builder("run-1", 1, uri).build();
        return new ManifestCommitter(config, new CheckpointCatalog(store), () -> { });
    }

    /** A manifest of {@code world} shards of 3 bytes each, whose objects are written unless skipped. */
    private Manifest manifest(int world, Set<Integer> notWritten) throws IOException {
        List<Manifest.ShardRef> shards = new ArrayList<>();
        for (int w = 0; w < world; w++) {
            String key = Layout.shardKey(SAVE_ID, w);
            if (!notWritten.contains(w)) {
                try (ObjectWriter writer = local.create(key)) {
                    writer.write(new byte[] {1, 2, 3}, 0, 3);
                    writer.commit();
                }
            }
            shards.add(new Manifest.ShardRef(w, key, 3, 0));
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", STEP, SAVE_ID, Instant.parse("2026-11-26T04:00:00Z"), world, shards,
                List.of(), Map.of());
    }

    @Test
    void theObjectsOfALargeWorldAreStatedInParallel() throws Exception {
        Manifest m = manifest(256, Set.of());
        // every stat waits until a second one is in flight: one after the other, the first would time out
        CountDownLatch two = new CountDownLatch(2);
        AtomicBoolean overlapped = new AtomicBoolean(true);
        Set<Thread> threads = ConcurrentHashMap.newKeySet();
        CheckpointStore store = new StatHook(local, key -> {
            threads.add(Thread.currentThread());
            two.countDown();
            if (!two.await(10, TimeUnit.SECONDS)) {
                overlapped.set(false);
            }
        });
        try (ManifestCommitter committer = committer(store)) {
            assertThat(committer.checkShards(m)).isNull();
        }
        assertThat(overlapped).isTrue();
        assertThat(threads).hasSizeGreaterThan(1).allMatch(t -> t.getName().equals("cairn-coordinator-stat"));
    }

    @Test
    void theLowestWorkersProblemIsReportedWhateverFinishesFirst() throws Exception {
        Manifest m = manifest(256, Set.of(5, 200));
        local.delete(Layout.shardKey(SAVE_ID, 100));
        local.write(Layout.shardKey(SAVE_ID, 100), new byte[7]);
        // worker 5's slice finds its problem only after worker 200's slice found its own
        CountDownLatch found200 = new CountDownLatch(1);
        CheckpointStore store = new StatHook(local, key -> {
            if (key.equals(Layout.shardKey(SAVE_ID, 200))) {
                found200.countDown();
            } else if (key.equals(Layout.shardKey(SAVE_ID, 5))) {
                assertThat(found200.await(10, TimeUnit.SECONDS)).as("worker 200 stat'ed in parallel").isTrue();
            }
        });
        try (ManifestCommitter committer = committer(store)) {
            assertThat(committer.checkShards(m)).isEqualTo("worker 5 reported object_key " + Layout.shardKey(SAVE_ID, 5) + ", which does not exist");
        }
        try (ManifestCommitter committer = committer(local)) {
            Manifest without5 = new Manifest(m.formatVersion(), m.runId(), m.step(), m.saveId(), m.createdAt(), m.worldSize(),
                    m.shards().stream().filter(s -> s.worker() != 5).toList(), List.of(), Map.of());
            assertThat(committer.checkShards(without5)).isEqualTo("worker 100 reported length 3 for " + Layout.shardKey(SAVE_ID, 100)
                    + ", but the object has 7 bytes");
        }
    }

    @Test
    void aSmallWorldIsCheckedOnTheCallingThreadAndEmptyShardsAreNotStated() throws Exception {
        List<Manifest.ShardRef> shards = new ArrayList<>(manifest(3, Set.of()).shards());
        shards.add(new Manifest.ShardRef(3, null, 0, 0));
        Manifest m = new Manifest(ManifestCodec.FORMAT_VERSION, "run-1", STEP, SAVE_ID, Instant.parse("2026-11-26T04:00:00Z"), 4, shards,
                List.of(), Map.of());
        List<String> stated = new ArrayList<>();
        String caller = Thread.currentThread().getName();
        CheckpointStore store = new StatHook(local, key -> {
            assertThat(Thread.currentThread().getName()).isEqualTo(caller);
            stated.add(key);
        });
        try (ManifestCommitter committer = committer(store)) {
            assertThat(committer.checkShards(m)).isNull();
        }
        assertThat(stated).containsExactly(Layout.shardKey(SAVE_ID, 0), Layout.shardKey(SAVE_ID, 1), Layout.shardKey(SAVE_ID, 2));
    }

    @Test
    void aFailedStatInAParallelSliceIsTheCheckIoError() throws Exception {
        Manifest m = manifest(64, Set.of());
        CheckpointStore store = new StatHook(local, key -> {
            if (key.equals(Layout.shardKey(SAVE_ID, 40))) {
                throw new IOException("stat of " + key + " failed: connection reset");
            }
        });
        try (ManifestCommitter committer = committer(store)) {
            assertThatThrownBy(() -> committer.checkShards(m)).isInstanceOf(IOException.class)
                    .hasMessage("stat of " + Layout.shardKey(SAVE_ID, 40) + " failed: connection reset");
        }
    }

    /** Runs {@link Hook} before every stat of the real store. */
    private static final class StatHook implements CheckpointStore {
        interface Hook {
            void beforeStat(String key) throws IOException, InterruptedException;
        }

        private final CheckpointStore delegate;
        private final Hook hook;

        StatHook(CheckpointStore delegate, Hook hook) {
            this.delegate = delegate;
            this.hook = hook;
        }

        @Override
        public Optional<ObjectInfo> stat(String key) throws IOException {
            try {
                hook.beforeStat(key);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
            return delegate.stat(key);
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
            return delegate.read(key, offset, length);
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
        public void close() {}
    }
}
