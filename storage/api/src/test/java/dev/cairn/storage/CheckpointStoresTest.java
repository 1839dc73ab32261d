package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** This module's test class path has no remote backend: opening one names the module to add. */
class CheckpointStoresTest {
    @ParameterizedTest
    @CsvSource({
        "hdfs://127.0.0.1:1/run, dev.cairn:cairn-storage-hdfs",
        "s3://bucket/run, dev.cairn:cairn-storage-s3",
    })
    void aBackendThatIsNotOnTheClassPathNamesItsModule(String uri, String module) {
        assertThatThrownBy(() -> CheckpointStores.open(uri))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("not on the class path")
                .hasMessageContaining("add the module " + module)
                .hasMessageNotContaining("\n");
    }
}
