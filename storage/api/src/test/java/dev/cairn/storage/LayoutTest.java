package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class LayoutTest {

    @Test
    void manifestKeysArePaddedSoNameOrderIsStepOrder() {
        assertThat(Layout.manifestKey(100)).isEqualTo("manifests/00000000000000000100.json");
        assertThat(Layout.manifestKey(Long.MAX_VALUE)).isEqualTo("manifests/09223372036854775807.json");

        List<String> keys = new ArrayList<>(List.of(Layout.manifestKey(9), Layout.manifestKey(100), Layout.manifestKey(10)));
        Collections.sort(keys);
        assertThat(keys).containsExactly(Layout.manifestKey(9), Layout.manifestKey(10), Layout.manifestKey(100));
    }

    @Test
    void keysAndIdsAreFormattedExactlyAsTheirFormatStrings() {
        long[] steps = {0, 1, 9, 10, 99_999, 100_000, 1L << 40, Long.MAX_VALUE};
        for (long step : steps) {
            assertThat(Layout.manifestKey(step)).isEqualTo(String.format(java.util.Locale.ROOT, "manifests/%020d.json", step));
        }
        for (int worker : new int[] {0, 7, 12_345, 99_999, 100_000, Integer.MAX_VALUE}) {
            assertThat(Layout.shardKey("5-0000abcd", worker))
                    .isEqualTo("data/5-0000abcd/" + String.format(java.util.Locale.ROOT, "shard-%05d.bin", worker));
        }
        for (int v : new int[] {0, 1, 0xf, 0xabcdef, 0x0fffffff, 0x10000000, -1, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
            assertThat(Layout.hex8(v)).isEqualTo(String.format(java.util.Locale.ROOT, "%08x", v));
            assertThat(ManifestCodec.hex(v)).isEqualTo(Layout.hex8(v));
        }
        assertThatThrownBy(() -> Layout.shardKey("5-0000abcd", -1)).hasMessageContaining("negative worker index -1");
    }

    @Test
    void manifestKeyRejectsNegativeSteps() {
        assertThatThrownBy(() -> Layout.manifestKey(-1)).hasMessageContaining("negative step -1");
    }

    @Test
    void stepOfManifestKeyInvertsManifestKey() {
        assertThat(Layout.stepOfManifestKey(Layout.manifestKey(42))).contains(42L);
        assertThat(Layout.stepOfManifestKey(Layout.manifestKey(0))).contains(0L);
        assertThat(Layout.stepOfManifestKey("manifests/42.json")).isEmpty();
        assertThat(Layout.stepOfManifestKey("manifests/.00000000000000000042.json.1a2b.tmp")).isEmpty();
        assertThat(Layout.stepOfManifestKey("data/00000000000000000042.json")).isEmpty();
        assertThat(Layout.stepOfManifestKey("LATEST")).isEmpty();
    }

    @Test
    void aManifestKeyBeyondTheLongRangeIsNotAManifest() {
        // a stray file must not break every listing of the store
        assertThat(Layout.stepOfManifestKey("manifests/99999999999999999999.json")).isEmpty();
    }

    @Test
    void saveIdsCarryTheirStep() {
        String id = Layout.newSaveId(1234);
        assertThat(id).matches("1234-[0-9a-f]{8}");
        assertThat(Layout.isSaveId(id)).isTrue();
        assertThat(Layout.stepOfSaveId(id)).isEqualTo(1234L);
        assertThat(Layout.newSaveId(1234)).isNotEqualTo(Layout.newSaveId(1234)).as("one id per attempt");
    }

    @Test
    void rejectsMalformedSaveIds() {
        for (String bad : new String[] {"", "1234", "1234-", "1234-3F9A0C1E", "1234-3f9a0c1", "1234-3f9a0c1e0", "-1-3f9a0c1e", "a-3f9a0c1e",
                "99999999999999999999-3f9a0c1e"}) {
            assertThat(Layout.isSaveId(bad)).as(bad).isFalse();
        }
        assertThatThrownBy(() -> Layout.stepOfSaveId("nope")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'nope'");
        assertThatThrownBy(() -> Layout.dataPrefix("../x")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'../x'");
    }

    @Test
    void aSaveIdBeyondTheLongRangeIsNotASaveId() {
        assertThat(Layout.isSaveId("9999999999999999999-3f9a0c1e")).isFalse();
        assertThat(Layout.saveIdOfDataKey("data/9999999999999999999-3f9a0c1e/shard-00000.bin")).isEmpty();
        assertThat(Layout.isSaveId("9223372036854775807-3f9a0c1e")).isTrue();
    }

    @Test
    void shardKeysLiveBelowTheirAttemptsPrefix() {
        assertThat(Layout.dataPrefix("100-3f9a0c1e")).isEqualTo("data/100-3f9a0c1e/");
        assertThat(Layout.shardKey("100-3f9a0c1e", 3)).isEqualTo("data/100-3f9a0c1e/shard-00003.bin");
        assertThat(Keys.check(Layout.shardKey("100-3f9a0c1e", 99999))).isNotEmpty();
    }

    @Test
    void saveIdOfDataKey() {
        assertThat(Layout.saveIdOfDataKey("data/100-3f9a0c1e/shard-00003.bin")).isEqualTo(Optional.of("100-3f9a0c1e"));
        assertThat(Layout.saveIdOfDataKey("data/100-3f9a0c1e")).isEmpty();
        assertThat(Layout.saveIdOfDataKey("data/junk/shard-00003.bin")).isEmpty();
        assertThat(Layout.saveIdOfDataKey("manifests/00000000000000000100.json")).isEmpty();
    }
}
