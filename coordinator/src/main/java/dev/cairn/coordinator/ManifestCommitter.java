package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.ObjectInfo;
import java.io.IOException;
import java.util.Optional;
import java.util.function.BiConsumer;

/**
 * Writes a save's manifest with the store's atomic create-if-absent (the commit point), on the
 * I/O executor, and reports the outcome. Only what restores is committed: before the create, the
 * manifest's bytes pass the reader's own validation ({@link ManifestCodec#encodeForCommit}, and
 * exactly those bytes are written), and every shard object is checked against storage with one
 * metadata request (it exists and has the reported length; no data is read). After an ambiguous
 * answer of the store the manifest itself says who won. Right before the create, the fence: a
 * coordinator that lost its storage root's lease commits nothing.
 */
final class ManifestCommitter {
    private final CoordinatorConfig config;
    private final CheckpointCatalog catalog;
    private final Fence fence;

    ManifestCommitter(CoordinatorConfig config, CheckpointCatalog catalog, Fence fence) {
        this.config = config;
        this.catalog = catalog;
        this.fence = fence;
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

    /** What is wrong with the shard objects the manifest names, or null. One stat per object. */
    private String checkShards(Manifest manifest) throws IOException {
        for (Manifest.ShardRef shard : manifest.shards()) {
            if (shard.objectKey() == null) {
                continue;
            }
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
