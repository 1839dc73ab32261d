package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.util.function.BiConsumer;

/**
 * Writes a save's manifest with the store's atomic create-if-absent (the commit point), on the
 * I/O executor, and reports the outcome. After an ambiguous answer the manifest itself says who won.
 */
final class ManifestCommitter {
    private final CoordinatorConfig config;
    private final CheckpointCatalog catalog;

    ManifestCommitter(CoordinatorConfig config, CheckpointCatalog catalog) {
        this.config = config;
        this.catalog = catalog;
    }

    /** Commits {@code manifest}; calls {@code done} with the result and a message (I/O thread). */
    void commit(Manifest manifest, BiConsumer<SaveCoordinator.CommitResult, String> done) {
        SaveCoordinator.CommitResult result;
        String message = "";
        try {
            result = catalog.commitManifest(manifest) == CheckpointCatalog.CommitOutcome.COMMITTED
                    ? SaveCoordinator.CommitResult.COMMITTED : SaveCoordinator.CommitResult.ALREADY_EXISTS;
            if (result == SaveCoordinator.CommitResult.COMMITTED) {
                config.hooks().onPhase(CoordinatorHooks.Phase.MANIFEST_WRITTEN, manifest.step(), manifest.saveId());
            }
        } catch (CommitStateUnknownException e) {
            result = recheck(manifest);
            message = e.getMessage();
        } catch (IOException | RuntimeException e) {
            result = SaveCoordinator.CommitResult.FAILED;
            message = e.getMessage();
        }
        done.accept(result, message);
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
