package dev.cairn.storage;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** Region reads against the local store. */
class LocalRegionReadTest extends RegionReadContractTest {
    @TempDir
    Path root;

    @Override
    protected CheckpointStore openStore() throws IOException {
        return CheckpointStores.open(StorageUri.parse(root.toString()), false);
    }
}
