package dev.cairn.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.proto.v1.AbortReason;
import org.junit.jupiter.api.Test;

class SaveOutcomeTest {
    @Test
    void everyAbortReasonOfTheProtocolMapsToTheOutcomeOfTheSameNameAndBack() {
        for (AbortReason r : AbortReason.values()) {
            if (r == AbortReason.UNRECOGNIZED || r == AbortReason.ABORT_REASON_UNSPECIFIED) {
                assertThat(SaveOutcome.fromAbortReason(r)).isEqualTo(SaveOutcome.UNKNOWN);
                continue;
            }
            SaveOutcome o = SaveOutcome.fromAbortReason(r);
            assertThat(o.name()).isEqualTo(r.name());
            assertThat(o.toAbortReason()).isEqualTo(r);
        }
    }
}
