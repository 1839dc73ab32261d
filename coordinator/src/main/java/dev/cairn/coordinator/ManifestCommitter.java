package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectInfo;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/**
 * Writes a save's manifest with the store's atomic create-if-absent (the commit point), on the
 * I/O executor, and reports the outcome. Only what restores is committed: before the create, the
 * manifest's bytes pass the reader's own validation ({@link ManifestCodec#encodeForCommit}, and
 * exactly those bytes are written), and every shard object is checked against storage with one
 * metadata request (it exists and has the reported length; no data is read). After an ambiguous
 * answer of the store the manifest itself says who won. Right before the create, the fence: a
 * coordinator that lost its storage root's lease commits nothing.
 *
 * <p>The metadata requests of a large world run in parallel on a bounded pool ({@link
 * #STAT_PARALLELISM} threads, each checking a contiguous slice of the shards): one after the other,
 * 1,024 of them are a few milliseconds on a local disk but seconds against HDFS or S3, all on the
 * commit's latency. The result does not depend on the order they finish in: the problem reported
 * is the one of the lowest worker.
 */
final class ManifestCommitter implements AutoCloseable {
    /** Most metadata requests in flight for one commit. */
    static final int STAT_PARALLELISM = 16;
    /** Fewest shard objects per parallel slice: smaller checks run on the calling I/O thread. */
    static final int STATS_PER_SLICE = 16;

    private final CoordinatorConfig config;
    private final CheckpointCatalog catalog;
    private final Fence fence;
    private final ThreadPoolExecutor statPool;

    ManifestCommitter(CoordinatorConfig config, CheckpointCatalog catalog, Fence fence) {
        this.config = config;
        this.catalog = catalog;
        this.fence = fence;
        this.statPool = new ThreadPoolExecutor(STAT_PARALLELISM, STAT_PARALLELISM, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
            Thread t = new Thread(r, "cairn-coordinator-stat");
            t.setDaemon(true);
            return t;
        });
        statPool.allowCoreThreadTimeOut(true); // no threads while no large commit runs
    }

    /** Stops the stat threads (a check in progress fails with an I/O error). */
    @Override
    public void close() {
        statPool.shutdownNow();
    }

    /** Commits {@code manifest}; calls {@code done} with the result and a message (I/O thread). */
    void commit(Manifest manifest, BiConsumer<SaveCoordinator.CommitResult, String> done) {
        SaveCoordinator.CommitResult result;
        String message = "";
        try {
            byte[] bytes = ManifestCodec.encodeForCommit(manifest, Layout.manifestKey(manifest.step()));
            String missing = checkShards(manifest);
            if (missing != null) {
                done.accept(SaveCoordinator.CommitResult.INVALID, missing);
                return;
            }
            fence.check(); // a deposed coordinator commits nothing
            result = catalog.commitManifest(manifest, bytes) == CheckpointCatalog.CommitOutcome.COMMITTED
                    ? SaveCoordinator.CommitResult.COMMITTED : SaveCoordinator.CommitResult.ALREADY_EXISTS;
            if (result == SaveCoordinator.CommitResult.COMMITTED) {
                config.hooks().onPhase(CoordinatorHooks.Phase.MANIFEST_WRITTEN, manifest.step(), manifest.saveId());
            }
        } catch (ManifestException e) {
            result = SaveCoordinator.CommitResult.INVALID;
            message = e.getMessage();
        } catch (CommitStateUnknownException e) {
            result = recheck(manifest);
            message = e.getMessage();
        } catch (IOException | RuntimeException e) {
            result = SaveCoordinator.CommitResult.FAILED;
            message = e.getMessage();
        }
        done.accept(result, message);
    }

    /**
     * What is wrong with the shard objects the manifest names, or null. One stat per object; above
     * {@link #STATS_PER_SLICE} objects, in parallel slices on the stat pool.
     */
    String checkShards(Manifest manifest) throws IOException {
        List<Manifest.ShardRef> objects = new ArrayList<>();
        for (Manifest.ShardRef shard : manifest.shards()) {
            if (shard.objectKey() != null) { // an empty shard has no object
                objects.add(shard);
            }
        }
        int slices = Math.min(STAT_PARALLELISM, objects.size() / STATS_PER_SLICE);
        if (slices <= 1) {
            return check(objects);
        }
        List<Future<String>> results = new ArrayList<>(slices);
        try {
            for (int i = 0; i < slices; i++) {
                List<Manifest.ShardRef> slice = objects.subList(objects.size() * i / slices, objects.size() * (i + 1) / slices);
                results.add(statPool.submit(() -> check(slice)));
            }
            for (Future<String> f : results) { // in worker order: the lowest worker's problem wins
                String problem = f.get();
                if (problem != null) {
                    return problem;
                }
            }
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while checking the shard objects of save " + manifest.saveId());
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IOException("checking the shard objects of save " + manifest.saveId() + " failed", e.getCause());
        } catch (java.util.concurrent.RejectedExecutionException e) {
            throw new IOException("coordinator is closing: shard objects of save " + manifest.saveId() + " not checked", e);
        } finally {
            for (Future<String> f : results) {
                f.cancel(true); // done ones ignore it; after a problem or an error the rest is not needed
            }
        }
    }

    private String check(List<Manifest.ShardRef> shards) throws IOException {
        for (Manifest.ShardRef shard : shards) {
            Optional<ObjectInfo> info = catalog.store().stat(shard.objectKey());
            if (info.isEmpty()) {
                return "worker " + shard.worker() + " reported object_key " + shard.objectKey() + ", which does not exist";
            }
            if (info.get().length() != shard.length()) {
                return "worker " + shard.worker() + " reported length " + shard.length() + " for " + shard.objectKey()
                        + ", but the object has " + info.get().length() + " bytes";
            }
        }
        return null;
    }

    private SaveCoordinator.CommitResult recheck(Manifest manifest) {
        try {
            Manifest found = catalog.read(manifest.step());
            return found.saveId().equals(manifest.saveId()) ? SaveCoordinator.CommitResult.COMMITTED : SaveCoordinator.CommitResult.ALREADY_EXISTS;
        } catch (IOException e) {
            return SaveCoordinator.CommitResult.UNKNOWN;
        }
    }
}
