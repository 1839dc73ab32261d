package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.cli.Main;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUri;
import dev.cairn.storage.export.ExportCheck;
import dev.cairn.storage.export.ExportFormat;
import dev.cairn.storage.export.RestoreSelection;
import dev.cairn.storage.export.ShardedCheckpoint;
import dev.cairn.testkit.EmbeddedStorage;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cairn export} and {@code cairn restore --world --rank} of a checkpoint of 4 workers stored on
 * the embedded S3 server (S3Proxy): every tensor reassembled with ranged GETs, and the file read back
 * by the independent NumPy reader.
 */
class ExportS3IT {
    @Test
    void exportAndRestoreOnAnotherWorldSizeFromS3(@TempDir Path dir) throws Exception {
        try (EmbeddedStorage s3 = EmbeddedStorage.start("s3", dir)) {
            String uri = s3.uri("export-run");
            ShardedCheckpoint saved;
            String saveId;
            try (CheckpointStore store = CheckpointStores.open(StorageUri.parse(uri), true)) {
                saved = ShardedCheckpoint.commit(store, 40, 11);
                saveId = new CheckpointCatalog(store).read(40).saveId();
            }
            for (ExportFormat format : ExportFormat.values()) {
                Path file = dir.resolve("model." + format.cliName());
                int exit = Main.execute("export", "--storage", uri, "--to", file.toString(), "--format", format.cliName(), "-q");
                assertThat(exit).as("cairn export --format %s from s3", format.cliName()).isZero();
                ExportCheck.verify(file, format, saved.exported(), saved.exportedMetadata(format, saveId, 40), dir.resolve("work"));
            }
            ByteArrayOutputStream rows = new ByteArrayOutputStream();
            for (int rank = 0; rank < 3; rank++) {
                Path to = dir.resolve("rank" + rank);
                assertThat(Main.execute("restore", "--storage", uri, "--to", to.toString(), "--world", "3", "--rank", Integer.toString(rank), "-q"))
                        .isZero();
                byte[] got = Files.readAllBytes(to.resolve("rank-" + rank + "/model/rows"));
                long[] split = RestoreSelection.rows(10, 3, rank);
                assertThat(got).hasSize((int) (split[1] * 6 * 4));
                rows.write(got);
            }
            assertThat(rows.toByteArray()).isEqualTo(saved.wholes.get("model/rows").data());
        }
    }
}
