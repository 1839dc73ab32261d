package dev.cairn.harness;

import dev.cairn.storage.StorageUri;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The scale sweeps of {@code cairn bench}: the stall/save/restore figures for each shard size of
 * {@code --shard-sizes} (the same measurement as the headline figures, run once per size); the
 * kept-checkpoints sweep is {@link BenchKept}, and {@link BenchReport} prints both tables.
 */
public final class BenchScale {
    static final int[] DEFAULT_SHARD_SIZES = {1, 4, 16, 64, 256, 1024};
    /** The copy baseline holds a shard in one array. */
    public static final int MAX_SHARD_MIB = 2047;
    private static final List<String> FIGURES = List.of("throughput", "coordination", "memory", "reshard", "sizes", "kept");

    private BenchScale() {}

    /** Runs the throughput figures of one shard size into {@code sink}. */
    @FunctionalInterface
    interface ThroughputRun {
        void run(StorageUri uri, long shardBytes, int entryBytes, Map<String, Object> sink) throws Exception;
    }

    /** The figures to measure: {@code --only}'s, plus each sweep whose option was given. */
    static List<String> selectSweeps(List<String> only, int[] shardSizes, int[] kept) {
        for (String f : only) {
            if (!FIGURES.contains(f)) {
                throw new IllegalArgumentException("--only takes " + String.join(", ", FIGURES) + "; was '" + f + "'");
            }
        }
        List<String> selected = new ArrayList<>(only);
        if (shardSizes != null && !selected.contains("sizes")) {
            selected.add("sizes");
        }
        if (kept != null && !selected.contains("kept")) {
            selected.add("kept");
        }
        return selected;
    }

    /**
     * The shard sizes to sweep, checked: each 1..2047 MiB, and a heap for the largest (every
     * worker's staging plus the copy baseline's target, as the headline figures need).
     */
    static int[] checkShardSizes(List<String> only, int[] sizes, int workers) {
        if (!only.contains("sizes")) {
            return sizes;
        }
        int[] mibs = sizes == null ? DEFAULT_SHARD_SIZES : sizes;
        if (mibs.length == 0) {
            throw new IllegalArgumentException("--shard-sizes needs at least one size in MiB");
        }
        for (int mib : mibs) {
            if (mib < 1 || mib > MAX_SHARD_MIB) {
                throw new IllegalArgumentException("--shard-sizes: every size must be between 1 and " + MAX_SHARD_MIB + " MiB, was " + mib);
            }
        }
        int largest = Arrays.stream(mibs).max().orElseThrow();
        long needHeap = 2L * workers * ((long) largest << 20) + (256L << 20);
        long maxHeap = Runtime.getRuntime().maxMemory();
        if (maxHeap < needHeap) {
            throw new IllegalArgumentException("--shard-sizes " + largest + " with " + workers + " workers needs a heap of at least " + (needHeap >> 20)
                    + " MiB (staging plus the copy baseline); this JVM has " + (maxHeap >> 20) + " MiB: run with CAIRN_JAVA_OPTS=-Xmx"
                    + ((needHeap >> 30) + 1) + "g or smaller sizes");
        }
        return mibs;
    }

    /**
     * For each size, the stall, save and restore figures beside their baselines, measured by
     * {@code run} (the headline measurement) below its own directory of {@code root}.
     */
    static List<Map<String, Object>> shardSizes(int[] mibs, StorageUri root, int entryKib, ThroughputRun run)
            throws Exception {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int mib : mibs) {
            long shardBytes = (long) mib << 20;
            int entryBytes = (int) Math.min(shardBytes, (long) entryKib << 10);
            BenchReport.progress("shard-size sweep: %d MiB per worker (entries of %d KiB)", mib, entryBytes >> 10);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("shardMiB", mib);
            row.put("entryKiB", entryBytes >> 10);
            long t0 = System.nanoTime();
            run.run(BenchStorage.child(root, mib + "mib"), shardBytes, entryBytes, row);
            row.put("seconds", Math.round((System.nanoTime() - t0) / 1e8) / 10.0);
            rows.add(row);
            // the next size should not inherit this one's direct buffers and arrays
            System.gc();
        }
        return rows;
    }
}
