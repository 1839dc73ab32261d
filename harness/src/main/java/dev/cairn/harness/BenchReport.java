package dev.cairn.harness;

import java.util.List;
import java.util.Map;

/** The text output of {@code cairn bench}: progress lines on stderr, the table of the headline figures and the sweeps' tables. */
final class BenchReport {
    private BenchReport() {}

    /** A progress line on stderr. */
    static void progress(String format, Object... args) {
        System.err.printf("cairn bench: " + format + "%n", args);
        System.err.flush();
    }

    /** The headline figures beside their baselines, from the bench's output map. */
    @SuppressWarnings("unchecked")
    static void printTable(Map<String, Object> out) {
        System.out.printf("cairn bench: backend %s, %s, %d cores, %s%n", out.get("backend"), out.get("storage"), out.get("cores"), out.get("jvm"));
        System.out.printf("%d workers x %d MiB (entries of %d KiB), medians of %d saves; workers are %s%n%n",
                out.get("workers"), out.get("shardMiB"), out.get("entryKiB"), out.get("saves"), out.get("workersAre"));
        String f = "%-40s %14s %16s %8s %10s%n";
        System.out.printf(f, "FIGURE", "CAIRN", "BASELINE", "RATIO", "TARGET");
        System.out.printf(f, "stall per save (ms)", out.get("stallMs"), out.get("copyMs") + " copy", out.get("stallRatio"), "<= 1.2");
        System.out.printf(f, "naive synchronous stall (ms)", out.get("naiveStallMs"), out.get("copyMs") + " copy", out.get("naiveStallRatio"), "-");
        System.out.printf(f, "save throughput (MiB/s)", out.get("saveMiBps"), out.get("rawWriteMiBps") + " write", out.get("writeRatio"), ">= 0.9");
        System.out.printf(f, "restore throughput (MiB/s)", out.get("restoreMiBps"), out.get("rawReadMiBps") + " read", out.get("readRatio"), ">= 0.9");
        List<Map<String, Object>> coord = (List<Map<String, Object>>) out.get("coordination");
        for (Map<String, Object> row : coord) {
            System.out.printf(f, "coordination " + row.get("workers") + " workers p50/p99 (ms)",
                    row.get("p50Ms") + "/" + row.get("p99Ms"), row.get("storageCommitP50Ms") + "/" + row.get("storageCommitP99Ms") + " fs",
                    "", (int) row.get("workers") == 64 ? "p99 <= 50" : (int) row.get("workers") == 1024 ? "p99 <= 100" : "");
        }
        Map<String, Object> r = (Map<String, Object>) out.get("reshard");
        System.out.printf(f, "resharded restore " + r.get("savedBy") + "->" + r.get("restoredBy") + " (MiB/s)", out.get("reshardReadMiBps"),
                out.get("reshardRawReadMiBps") + " read", out.get("reshardReadRatio"), ">= 0.8");
        System.out.printf(f, "  bytes read / needed", out.get("reshardBytesReadOverNeeded"), "", "", "<= 1.05");
        Map<String, Object> m = (Map<String, Object>) out.get("memory");
        System.out.printf(f, "agent peak heap (MiB)", out.get("peakHeapMiB"), m.get("shardMiB") + " shard", "",
                "bounded");
        System.out.printf("%n(coordination baseline \"fs\": one plain atomic create of a manifest-sized object on the same storage, "
                + "p50/p99; memory: staging budget %s MiB off-heap, agent JVM -Xmx%sm)%n", m.get("stagingMiB"), m.get("xmxMiB"));
    }

    /** The sweeps' tables, for text mode. */
    @SuppressWarnings("unchecked")
    static void printSweeps(Map<String, Object> out) {
        List<Map<String, Object>> sizes = (List<Map<String, Object>>) out.get("shardSizes");
        if (sizes != null) {
            System.out.printf("%nshard-size sweep: %s workers, medians of %s saves per size (stall vs copy, save vs plain write, "
                    + "restore vs plain read)%n", out.get("workers"), out.get("saves"));
            String f = "%9s %10s %10s %7s %11s %11s %7s %11s %11s %7s%n";
            System.out.printf(f, "SHARD_MiB", "STALL_ms", "COPY_ms", "RATIO", "SAVE_MiB/s", "WRITE_MiB/s", "RATIO", "RESTO_MiB/s", "READ_MiB/s",
                    "RATIO");
            for (Map<String, Object> r : sizes) {
                System.out.printf(f, r.get("shardMiB"), r.get("stallMs"), r.get("copyMs"), r.get("stallRatio"), r.get("saveMiBps"),
                        r.get("rawWriteMiBps"), r.get("writeRatio"), r.get("restoreMiBps"), r.get("rawReadMiBps"), r.get("readRatio"));
            }
            System.out.println("(targets: stall ratio <= 1.2, write and read ratios >= 0.9)");
        }
        List<Map<String, Object>> kept = (List<Map<String, Object>>) out.get("kept");
        if (kept != null) {
            System.out.printf("%nkept-checkpoints sweep: p50/p99 over %s rounds per count (ms)%n", out.get("keptRounds"));
            String f = "%7s %16s %16s %16s %16s %14s %12s%n";
            System.out.printf(f, "KEPT", "COMMIT", "MANIFEST_CREATE", "LATEST_LOOKUP", "AGENT_READ", "COORD_START", "POPULATE_s");
            for (Map<String, Object> r : kept) {
                System.out.printf(f, r.get("kept"), r.get("commitP50Ms") + "/" + r.get("commitP99Ms"),
                        r.get("manifestCreateP50Ms") + "/" + r.get("manifestCreateP99Ms"),
                        r.get("latestP50Ms") + "/" + r.get("latestP99Ms"), r.get("agentReadP50Ms") + "/" + r.get("agentReadP99Ms"),
                        r.get("coordinatorStartMs"), r.get("populateSeconds"));
            }
            System.out.println("(commit: CheckpointCatalog.commit, the manifest's atomic create-if-absent (manifest create, what "
                    + "the coordinator announces after) plus the LATEST hint; latest "
                    + "lookup: a fresh store's CheckpointCatalog.latest(), LATEST hint + listAfter + manifest read; agent read: a fresh "
                    + "store reads the manifest the coordinator announced; coordinator start: Coordinator.start, which reads every "
                    + "manifest, one sample; target: commit and lookup flat in KEPT)");
        }
    }
}
