package dev.cairn.harness;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** The statistics and rounding of {@code cairn bench}'s figures. */
final class BenchStats {
    private BenchStats() {}

    static double median(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** Nearest-rank percentile of sorted values. */
    static double percentile(List<Double> sorted, double p) {
        int rank = (int) Math.ceil(p / 100.0 * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }

    static List<Double> sorted(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        return sorted;
    }

    /** Puts {@code <name>P50Ms} and {@code <name>P99Ms} of {@code values} into {@code row}. */
    static void putPercentiles(Map<String, Object> row, String name, List<Double> values) {
        List<Double> sorted = sorted(values);
        row.put(name + "P50Ms", round2(percentile(sorted, 50)));
        row.put(name + "P99Ms", round2(percentile(sorted, 99)));
    }

    /** The element-wise ratios a[i] / b[i]. */
    static List<Double> ratios(List<Double> a, List<Double> b) {
        List<Double> r = new ArrayList<>();
        for (int i = 0; i < a.size(); i++) {
            r.add(a.get(i) / b.get(i));
        }
        return r;
    }

    static long max(long[] values) {
        return Arrays.stream(values).max().orElse(0);
    }

    static double round2(double v) {
        return Math.round(v * 100) / 100.0;
    }

    static double round3(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    static List<Double> round2(List<Double> values) {
        return values.stream().map(BenchStats::round2).toList();
    }
}
