package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.coordinator.CheckpointCleaner;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.DType;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.RegionRead;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A run saved by 4 agents restores bit-exactly on 3 and then on 6 agents of a coordinator restarted
 * with another world size on the same storage, and saves again with the new world size; retention
 * and GC work across checkpoints of different world sizes (issue #12 items 1, 2 and 4).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ReshardRestoreTest {
    private static final Logger LOG = LoggerFactory.getLogger(ReshardRestoreTest.class);

    /** A global tensor of the trainers' state, split along {@code dim} across the workers. */
    record Global(String name, DType dtype, long[] shape, int dim, byte[] data) {}

    @TempDir
    Path storage;

    private TestCluster cluster;

    @AfterEach
    void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static List<Global> state(long step) {
        Random random = new Random(step);
        List<Global> g = new ArrayList<>();
        g.add(global(random, "model/rows", DType.FLOAT32, 0, 10, 6));  // row blocks
        g.add(global(random, "model/cols", DType.INT64, 1, 5, 9));     // column blocks
        g.add(global(random, "bias", DType.FLOAT32, 0, 7));            // 1-D
        g.add(global(random, "tiny", DType.INT32, 0, 2, 2));           // fewer rows than workers
        return g;
    }

    private static Global global(Random random, String name, DType dtype, int dim, long... shape) {
        byte[] data = new byte[(int) dtype.byteLength(shape)];
        random.nextBytes(data);
        return new Global(name, dtype, shape, dim, data);
    }

    private static byte[] mirrored(long step) {
        return TestCluster.state("model/emb", 0, step, 50_000);
    }

    /** The documented even split: the first {@code n % world} ranks get one more. Returns {offset, size}. */
    private static long[] split(long n, int world, int rank) {
        long base = n / world;
        long extra = n % world;
        return new long[] {rank * base + Math.min(rank, extra), base + (rank < extra ? 1 : 0)};
    }

    private static long[][] pieceOf(Global g, int world, int rank) {
        long[] offsets = new long[g.shape().length];
        long[] shape = g.shape().clone();
        long[] s = split(g.shape()[g.dim()], world, rank);
        offsets[g.dim()] = s[0];
        shape[g.dim()] = s[1];
        return new long[][] {offsets, shape};
    }

    /** The C-order bytes of a region of {@code g}, element by element. */
    private static byte[] region(Global g, long[] offsets, long[] shape) {
        int item = g.dtype().itemSize();
        long count = 1;
        for (long s : shape) {
            count *= s;
        }
        byte[] out = new byte[(int) (count * item)];
        long[] idx = new long[shape.length];
        for (long e = 0; e < count; e++) {
            long rem = e;
            for (int d = shape.length - 1; d >= 0; d--) {
                idx[d] = rem % shape[d];
                rem /= shape[d];
            }
            long flat = 0;
            for (int d = 0; d < shape.length; d++) {
                flat = flat * g.shape()[d] + offsets[d] + idx[d];
            }
            System.arraycopy(g.data(), (int) (flat * item), out, (int) (e * item), item);
        }
        return out;
    }

    /** What rank {@code rank} of {@code world} puts: its piece of every global tensor, the mirrored entry and its own rng. */
    private static SnapshotWriter writer(long step, int world, int rank) {
        return snap -> {
            for (Global g : state(step)) {
                long[][] p = pieceOf(g, world, rank);
                if (g.name().equals("tiny") && p[1][0] == 0 && rank > 2) {
                    continue; // holds no piece at all (rank 2 holds an empty one)
                }
                snap.put(g.name(), ByteBuffer.wrap(region(g, p[0], p[1])), Manifest.Tensor.of(g.dtype(), p[1]).withGlobal(g.shape(), p[0]));
            }
            byte[] emb = mirrored(step);
            snap.putReplicated("model/emb", emb, 0, emb.length);
            snap.put("rng", new long[] {rank});
        };
    }

    private TestCluster cluster(int world) throws IOException {
        cluster = TestCluster.start(storage, world, b -> b.retention(RetentionPolicy.keepLast(2)));
        return cluster.connectAll(i -> cluster.agentConfig(i).stagingBytes(4 << 20).build());
    }

    private void saveAll(long step, int world) throws Exception {
        for (SaveHandle h : cluster.saveAll(step, w -> writer(step, world, w))) {
            assertThat(h.await(Duration.ofSeconds(30)).step()).isEqualTo(step);
        }
    }

    /**
     * Restores the latest checkpoint on every agent of a world of {@code world}: every element of
     * the agent's new piece of every tensor, the mirrored entry; returns the step they agreed on.
     */
    private long restoreOnEveryAgent(int world, long savedStep, int savedWorld) throws Exception {
        List<Long> steps = new ArrayList<>();
        for (int rank = 0; rank < world; rank++) {
            RestoredCheckpoint r = cluster.agent(rank).restoreLatest().orElseThrow();
            steps.add(r.step());
            assertThat(r.worldSize()).isEqualTo(savedWorld);
            assertThat(r.tensors()).filteredOn(t -> t.kind() == LogicalTensor.Kind.SHARDED).extracting(LogicalTensor::name)
                    .containsExactlyInAnyOrder("model/rows", "model/cols", "bias", "tiny");
            long needed = 0;
            long read = 0;
            for (Global g : state(savedStep)) {
                long[][] p = pieceOf(g, world, rank);
                ByteBuffer dest = ByteBuffer.allocateDirect((int) g.dtype().byteLength(p[1]));
                RegionRead got = r.read(g.name(), g.dtype(), p[0], p[1], dest);
                byte[] bytes = new byte[dest.flip().remaining()];
                dest.get(bytes);
                assertThat(bytes).as("rank %d of %d, %s", rank, world, g.name()).isEqualTo(region(g, p[0], p[1]));
                needed += got.bytesNeeded();
                read += got.bytesRead();
            }
            LOG.info("rank {} of {} restored step {} (saved by {}): {} bytes needed, {} read", rank, world, savedStep, savedWorld, needed, read);
            assertThat((double) read).as("rank %d reads only what it needs", rank).isLessThanOrEqualTo(1.05 * needed);
            assertThat(r.read("model/emb")).isEqualTo(mirrored(savedStep));
        }
        assertThat(steps).as("every new worker restores the same step").containsOnly(savedStep);
        return steps.get(0);
    }

    private Manifest manifest(long step) throws IOException {
        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = catalog.read(step);
            assertThat(catalog.verify(m)).isEmpty();
            return m;
        }
    }

    @Test
    void aRunSavedByFourRestoresOnThreeThenOnSixAndSavesWithTheNewWorldSize() throws Exception {
        cluster(4);
        saveAll(10, 4);
        saveAll(20, 4);
        cluster.close();
        Manifest four = manifest(20);
        assertThat(four.worldSize()).isEqualTo(4);
        assertThat(four.entries()).filteredOn(e -> e.name().equals("tiny")).extracting(Manifest.EntryRef::worker).containsExactly(0, 1, 2);

        cluster(3);
        restoreOnEveryAgent(3, 20, 4);
        saveAll(30, 3);
        Manifest three = manifest(30);
        assertThat(three.worldSize()).isEqualTo(3);
        assertThat(three.shards()).hasSize(3);
        cluster.close();

        cluster(6);
        restoreOnEveryAgent(6, 30, 3);
        saveAll(40, 6);
        Manifest six = manifest(40);
        assertThat(six.worldSize()).isEqualTo(6);
        assertThat(six.shards()).hasSize(6);
        cluster.close();
        cluster = null;

        try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(storage.toString()), false)) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            // keep-last 2 across world sizes 4, 3 and 6: the world-4 checkpoints went, data and all
            assertThat(catalog.steps()).containsExactly(30L, 40L);
            assertThat(catalog.attemptIds()).containsExactlyInAnyOrder(three.saveId(), six.saveId());
            CheckpointCleaner.Report report = CheckpointCleaner.run(catalog, RetentionPolicy.keepLast(1), Instant.now(), false, w -> { });
            assertThat(report.deletedCheckpoints()).extracting(Manifest::step).containsExactly(30L);
            assertThat(catalog.steps()).containsExactly(40L);
            assertThat(catalog.attemptIds()).containsExactly(six.saveId());
            assertThat(catalog.verify(catalog.read(40))).isEmpty();
        }
        // and the world-6 checkpoint restores on 4 again
        cluster(4);
        restoreOnEveryAgent(4, 40, 6);
    }
}
