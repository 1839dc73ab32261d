package dev.cairn.agent;

import static dev.cairn.agent.TestCluster.state;
import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A fully mirrored state is written once, split by bytes across all workers (issue #11 item 4). */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MirroredSplitTest {
    private static final Logger LOG = LoggerFactory.getLogger(MirroredSplitTest.class);
    private static final int WORLD = 3;

    @TempDir
    Path storage;

    private TestCluster cluster;

    @AfterEach
    void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    /** Uneven entries, one larger than S/N, named out of put order; identical on every worker. */
    private static Map<String, byte[]> mirroredState(long step) {
        Map<String, byte[]> s = new LinkedHashMap<>();
        s.put("model/embedding", state("model/embedding", 0, step, 1_200_000)); // > S/N
        s.put("model/dense/w", state("model/dense/w", 0, step, 310_003));
        s.put("model/dense/b", state("model/dense/b", 0, step, 1_001));
        s.put("optimizer/m", state("optimizer/m", 0, step, 500_017));
        s.put("optimizer/step", state("optimizer/step", 0, step, 8));
        s.put("rng", new byte[0]);
        s.put("a/first", state("a/first", 0, step, 77_777));
        return s;
    }

    @Test
    void aMirroredStateIsSplitEvenlyAndRestoresBitExactOnEveryWorker() throws Exception {
        cluster = TestCluster.start(storage, WORLD, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).stagingBytes(8 << 20).build());
        Map<String, byte[]> state = mirroredState(10);
        long total = state.values().stream().mapToLong(b -> b.length).sum();

        for (SaveHandle h : cluster.saveAll(10, w -> snap -> state.forEach(snap::putReplicated))) {
            assertThat(h.await(Duration.ofSeconds(30)).step()).isEqualTo(10);
        }

        Manifest m;
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            m = new CheckpointCatalog(store).read(10);
            assertThat(new CheckpointCatalog(store).verify(m)).isEmpty();
            long max = 0;
            long sum = 0;
            for (int w = 0; w < WORLD; w++) {
                Path object = storage.resolve(Layout.shardKey(m.saveId(), w));
                long bytes = Files.size(object);
                assertThat(bytes).as("worker %d's shard object", w).isEqualTo(m.shard(w).length());
                max = Math.max(max, bytes);
                sum += bytes;
            }
            double ratio = max / ((double) total / WORLD);
            LOG.info("mirrored state of {} bytes over {} workers: max shard object {} bytes, ratio {}", total, WORLD, max, ratio);
            assertThat(sum).as("every replicated byte stored exactly once").isEqualTo(total);
            assertThat(ratio).isLessThanOrEqualTo(1.1);
        }
        assertThat(m.entries()).allSatisfy(e -> assertThat(e.replicated()).isTrue());
        assertThat(m.entries()).filteredOn(e -> e.name().equals("model/embedding")).as("the large entry is cut").hasSizeGreaterThan(1);
        assertThat(m.entries()).filteredOn(e -> e.name().equals("rng")).singleElement()
                .satisfies(e -> assertThat(e.length()).isZero());
        cluster.close();

        cluster = TestCluster.start(storage, WORLD, b -> b).connectAll();
        for (int w = 0; w < WORLD; w++) {
            RestoredCheckpoint r = cluster.agent(w).restoreLatest().orElseThrow();
            assertThat(r.entryNames()).containsExactlyInAnyOrderElementsOf(state.keySet());
            for (Map.Entry<String, byte[]> e : state.entrySet()) {
                assertThat(r.read(e.getKey())).as("worker %d, %s", w, e.getKey()).isEqualTo(e.getValue());
                assertThat(r.open(e.getKey()).readAllBytes()).isEqualTo(e.getValue());
                assertThat(r.entryInfo(e.getKey()).shapeArray()).containsExactly(e.getValue().length);
            }
        }
    }

    @Test
    void aMixedStateSplitsOnlyTheReplicatedEntries() throws Exception {
        cluster = TestCluster.start(storage, WORLD, b -> b).connectAll();
        byte[] shared = state("shared", 0, 20, 90_000);
        for (SaveHandle h : cluster.saveAll(20, w -> snap -> {
            snap.put("own", state("own", w, 20, 1000 + w));
            snap.putReplicated("shared", shared);
        })) {
            h.await(Duration.ofSeconds(30));
        }
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            Manifest m = new CheckpointCatalog(store).read(20);
            List<Manifest.EntryRef> pieces = m.entries().stream().filter(Manifest.EntryRef::replicated).toList();
            assertThat(pieces).extracting(Manifest.EntryRef::worker).containsExactlyInAnyOrder(0, 1, 2);
            assertThat(pieces).extracting(Manifest.EntryRef::length).containsOnly(30_000L);
            for (int w = 0; w < WORLD; w++) {
                assertThat(m.shard(w).length()).isEqualTo(1000 + w + 30_000);
            }
        }
    }

    @Test
    void replicatedBytesReachedBeforeTheSealFailTheSaveClearlyAndTheNextSaveWorks() throws Exception {
        cluster = TestCluster.start(storage, WORLD, b -> b);
        cluster.connectAll(i -> cluster.agentConfig(i).stagingBytes(64 << 10).build());
        byte[] big = state("big", 0, 30, 1 << 20); // 16 × the staging budget: streams before the seal

        for (SaveHandle h : cluster.saveAll(30, w -> snap -> snap.putReplicated("big", big))) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> h.await(Duration.ofSeconds(30)))
                    .isInstanceOf(SaveAbortedException.class).hasMessageContaining("raise the staging budget");
        }
        for (SaveHandle h : cluster.saveAll(40, w -> snap -> snap.putReplicated("small", new byte[1000]))) {
            assertThat(h.await(Duration.ofSeconds(30)).step()).isEqualTo(40);
        }
    }
}
