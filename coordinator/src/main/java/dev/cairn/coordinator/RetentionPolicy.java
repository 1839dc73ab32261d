package dev.cairn.coordinator;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which checkpoints to keep, as TensorFlow's {@code CheckpointManager} and Orbax decide it:
 * the newest {@code keepLast}; additionally one every {@code keepEvery} (the first checkpoint of
 * each such period since the first checkpoint); additionally the best {@code bestK} by a numeric
 * metadata {@code metric} ({@code MIN} or {@code MAX}). The newest checkpoint is always kept, and a
 * checkpoint without the metric never counts as one of the best.
 *
 * @param keepLast newest checkpoints to keep, at least 1
 * @param keepEvery keep one checkpoint per period of this length; {@link Duration#ZERO} for none
 * @param bestK how many best checkpoints to keep; 0 for none
 * @param metric the metadata key ranked for {@code bestK}
 * @param mode whether smaller or larger metric values are better
 */
public record RetentionPolicy(int keepLast, Duration keepEvery, int bestK, String metric, Mode mode) {

    public enum Mode { MIN, MAX }

    public RetentionPolicy {
        if (keepLast < 1) {
            throw new IllegalArgumentException("keep-last must be at least 1, was " + keepLast);
        }
        if (keepEvery.isNegative()) {
            throw new IllegalArgumentException("keep-every must not be negative");
        }
        if (bestK < 0) {
            throw new IllegalArgumentException("best-k must not be negative");
        }
        if (bestK > 0 && (metric == null || metric.isBlank())) {
            throw new IllegalArgumentException("best-k needs a metric");
        }
    }

    /** TensorFlow's default: keep the last 5. */
    public static RetentionPolicy keepLast(int n) {
        return new RetentionPolicy(n, Duration.ZERO, 0, null, Mode.MIN);
    }

    /** What retention needs to know of a committed checkpoint. */
    public record Kept(long step, String saveId, Instant createdAt, Map<String, Object> metadata) {}

    /** Steps of {@code checkpoints} this policy deletes. Never the newest. */
    public Set<Long> toDelete(List<Kept> checkpoints) {
        List<Kept> sorted = new ArrayList<>(checkpoints);
        sorted.sort(Comparator.comparingLong(Kept::step));
        Set<Long> keep = new HashSet<>();
        for (int i = Math.max(0, sorted.size() - keepLast); i < sorted.size(); i++) {
            keep.add(sorted.get(i).step());
        }
        if (!keepEvery.isZero() && !sorted.isEmpty()) {
            Instant periodStart = null;
            for (Kept k : sorted) {
                if (periodStart == null || !k.createdAt().isBefore(periodStart.plus(keepEvery))) {
                    keep.add(k.step());
                    periodStart = k.createdAt();
                }
            }
        }
        if (bestK > 0) {
            Comparator<Kept> byMetric = Comparator.comparingDouble(k -> ((Number) k.metadata().get(metric)).doubleValue());
            if (mode == Mode.MAX) {
                byMetric = byMetric.reversed();
            }
            sorted.stream().filter(k -> k.metadata().get(metric) instanceof Number)
                    .sorted(byMetric.thenComparing(Comparator.comparingLong(Kept::step).reversed()))
                    .limit(bestK)
                    .forEach(k -> keep.add(k.step()));
        }
        Set<Long> delete = new HashSet<>();
        for (Kept k : sorted) {
            if (!keep.contains(k.step())) {
                delete.add(k.step());
            }
        }
        return delete;
    }
}
