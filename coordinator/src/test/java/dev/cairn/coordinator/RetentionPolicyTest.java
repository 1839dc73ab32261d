package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RetentionPolicyTest {
    private static final Instant T0 = Instant.parse("2024-01-01T00:00:00Z");

    private static RetentionPolicy.Kept kept(long step, long minutes, Object loss) {
        Map<String, Object> meta = new HashMap<>();
        if (loss != null) {
            meta.put("loss", loss);
        }
        return new RetentionPolicy.Kept(step, step + "-0000000" + (step % 10), T0.plus(Duration.ofMinutes(minutes)), meta);
    }

    private static List<RetentionPolicy.Kept> steps(long... steps) {
        List<RetentionPolicy.Kept> list = new ArrayList<>();
        for (long s : steps) {
            list.add(kept(s, s, null));
        }
        return list;
    }

    @Test
    void keepLastDeletesAllButTheNewest() {
        RetentionPolicy p = RetentionPolicy.keepLast(2);

        assertThat(p.toDelete(steps(50, 10, 40, 20, 30))).containsExactlyInAnyOrder(10L, 20L, 30L);
        assertThat(p.toDelete(steps(10, 20))).isEmpty();
        assertThat(p.toDelete(List.of())).isEmpty();
    }

    @Test
    void keepEveryKeepsTheFirstCheckpointOfEachPeriod() {
        RetentionPolicy p = new RetentionPolicy(1, Duration.ofHours(1), 0, null, RetentionPolicy.Mode.MIN);
        List<RetentionPolicy.Kept> all = List.of(kept(1, 0, null), kept(2, 20, null), kept(3, 61, null), kept(4, 70, null),
                kept(5, 121, null), kept(6, 125, null));

        // periods start at 0 (step 1), 61 (step 3), 121 (step 5); step 6 is the newest
        assertThat(p.toDelete(all)).containsExactlyInAnyOrder(2L, 4L);
    }

    @Test
    void bestKMinKeepsTheLowestMetricAndIgnoresCheckpointsWithoutIt() {
        RetentionPolicy p = new RetentionPolicy(1, Duration.ZERO, 2, "loss", RetentionPolicy.Mode.MIN);
        List<RetentionPolicy.Kept> all = List.of(kept(1, 1, 0.9), kept(2, 2, 0.1), kept(3, 3, null), kept(4, 4, "0.0"),
                kept(5, 5, 0.3), kept(6, 6, 0.5), kept(7, 7, 2.0));

        // best two: step 2 (0.1), step 5 (0.3); step 7 is the newest despite the worst loss
        assertThat(p.toDelete(all)).containsExactlyInAnyOrder(1L, 3L, 4L, 6L);
    }

    @Test
    void bestKMaxKeepsTheHighestMetric() {
        RetentionPolicy p = new RetentionPolicy(1, Duration.ZERO, 1, "loss", RetentionPolicy.Mode.MAX);
        List<RetentionPolicy.Kept> all = List.of(kept(1, 1, 5L), kept(2, 2, 9L), kept(3, 3, null), kept(4, 4, 1L));

        assertThat(p.toDelete(all)).containsExactlyInAnyOrder(1L, 3L);
    }

    @Test
    void bestKPrefersTheNewerOfEqualMetrics() {
        RetentionPolicy p = new RetentionPolicy(1, Duration.ZERO, 1, "loss", RetentionPolicy.Mode.MIN);
        List<RetentionPolicy.Kept> all = List.of(kept(1, 1, 0.5), kept(2, 2, 0.5), kept(3, 3, 0.9));

        assertThat(p.toDelete(all)).containsExactly(1L);
    }

    @Test
    void theNewestIsAlwaysKeptWhenNoCheckpointHasTheMetric() {
        RetentionPolicy p = new RetentionPolicy(1, Duration.ZERO, 3, "accuracy", RetentionPolicy.Mode.MAX);

        assertThat(p.toDelete(steps(1, 2, 3))).containsExactlyInAnyOrder(1L, 2L);
    }

    @Test
    void rejectsSettingsThatMakeNoSense() {
        assertThatThrownBy(() -> RetentionPolicy.keepLast(0)).hasMessageContaining("keep-last must be at least 1");
        assertThatThrownBy(() -> new RetentionPolicy(1, Duration.ofHours(-1), 0, null, RetentionPolicy.Mode.MIN))
                .hasMessageContaining("keep-every");
        assertThatThrownBy(() -> new RetentionPolicy(1, Duration.ZERO, 2, " ", RetentionPolicy.Mode.MIN))
                .hasMessageContaining("best-k needs a metric");
    }
}
