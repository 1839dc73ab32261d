package dev.cairn.harness;

import static dev.cairn.harness.BenchStats.round2;

import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.StorageUri;
import dev.cairn.testkit.ClusterProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;

/**
 * The memory figure of {@code cairn bench}: one agent in a small-heap JVM ({@link BenchAgentCommand})
 * saves a shard 8x its staging budget and reports its peak heap.
 */
final class BenchMemory {
    private final int shardMib;
    private final int heapMib;

    BenchMemory(int shardMib, int heapMib) {
        this.shardMib = shardMib;
        this.heapMib = heapMib;
    }

    void run(StorageUri root, Map<String, Object> out) throws Exception {
        int stagingMib = Math.max(1, shardMib / 8);
        CoordinatorConfig config = CoordinatorConfig.builder(BenchWorkers.RUN, 1, root).retention(RetentionPolicy.keepLast(1)).build();
        Path log = Files.createTempFile("cairn-bench-agent-", ".log");
        try (Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0);
             ClusterProcess child = ClusterProcess.start("bench-agent", log, heapMib + "m", List.of("bench-agent",
                     "--coordinator", "127.0.0.1:" + coordinator.port(), "--run-id", BenchWorkers.RUN,
                     "--shard-mib", Integer.toString(shardMib), "--staging-mib", Integer.toString(stagingMib)))) {
            ClusterProcess.Event e;
            try {
                e = child.await("memory", BenchWorkers.TIMEOUT);
            } catch (TimeoutException ex) {
                throw new IllegalStateException("the memory figure's agent failed (log " + log + "): " + ex.getMessage()
                        + "\n" + tail(log), ex);
            }
            child.waitFor(Duration.ofSeconds(60));
            double peak = e.getLong("peakHeapBytes") / 1048576.0;
            out.put("peakHeapMiB", round2(peak));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("shardMiB", shardMib);
            m.put("stagingMiB", stagingMib);
            m.put("xmxMiB", heapMib);
            m.put("peakStagingMiB", round2(e.getLong("peakStagingBytes") / 1048576.0));
            m.put("stagingIs", "direct (off-heap) chunks, bounded by the staging budget; not part of peakHeapMiB");
            m.put("stallMs", round2(e.getLong("stallMicros") / 1000.0));
            m.put("measuredBy", "sum of the peak usage of the heap memory pools during the save (an upper bound, garbage included)");
            out.put("memory", m);
            BenchReport.progress("memory: a %d MiB shard with a %d MiB staging budget saved with a peak heap of %.1f MiB (-Xmx%dm)",
                    shardMib, stagingMib, peak, heapMib);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }
}
