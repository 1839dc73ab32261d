package dev.cairn.harness;

import static dev.cairn.harness.BenchStats.median;
import static dev.cairn.harness.BenchStats.ratios;
import static dev.cairn.harness.BenchStats.round2;
import static dev.cairn.harness.BenchStats.round3;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.RetentionPolicy;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.StorageUri;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code cairn bench --python}: the stall, save and restore throughput of real Python trainer
 * processes saving through the {@code cairn} package and their sidecars, beside the same process's
 * {@code numpy.copyto} of the same bytes, plain file writes and reads, and PyTorch's own ways to
 * save the same state ({@code torch.save} by rank 0 only and by every rank; distributed checkpoint
 * where it imports). The coordinator runs in this JVM; local storage only.
 */
final class BenchPython {
    private static final String RUN = "bench-python";

    /** The run's shape: workers, MiB of state per worker, entry size, rounds, mirrored state. */
    record Settings(int workers, int shardMib, int entryMib, int saves, int warmups, boolean mirrored, String python) {}

    private final Settings s;

    BenchPython(Settings settings) {
        this.s = settings;
    }

    void run(StorageUri uri, Map<String, Object> out) throws Exception {
        if (!uri.scheme().equals("file")) {
            throw new IllegalArgumentException("--python measures local storage only (--backend file), was " + uri.scheme());
        }
        List<Double> stall = new ArrayList<>();
        List<Double> copy = new ArrayList<>();
        List<Double> commit = new ArrayList<>();
        List<Double> restore = new ArrayList<>();
        List<Double> write = new ArrayList<>();
        List<Double> read = new ArrayList<>();
        List<Double> torch0 = new ArrayList<>();
        List<Double> torchAll = new ArrayList<>();
        List<Double> dcp = new ArrayList<>();
        String dcpReason = null;
        double stateMib = s.shardMib();
        double storedMib = s.mirrored() ? stateMib : stateMib * s.workers();
        long lastStep = 0;
        CoordinatorConfig config = CoordinatorConfig.builder(RUN, s.workers(), uri).retention(RetentionPolicy.keepLast(2)).build();
        Path scratch = Path.of(uri.path(), "trainers");
        List<String> args = new ArrayList<>(List.of("--shard-mib", Integer.toString(s.shardMib()), "--entry-mib",
                Integer.toString(s.entryMib()), "--staging-mib", Integer.toString(s.shardMib() + 8)));
        if (s.mirrored()) {
            args.add("--mirrored");
        }
        Object torchVersion;
        try (CheckpointStore store = CheckpointStores.open(uri, true);
             Coordinator coordinator = Coordinator.start(config, "127.0.0.1", 0)) {
            BenchReport.progress("starting %d Python trainers (%s), each with its sidecar", s.workers(), s.python());
            try (PythonTrainers t = new PythonTrainers(s.python(), "127.0.0.1:" + coordinator.port(), RUN, s.workers(), args, scratch)) {
                torchVersion = t.hello.get(0).path("torch").isTextual() ? t.hello.get(0).get("torch").asText() : null;
                for (int round = 1 - s.warmups(); round <= s.saves(); round++) {
                    boolean measured = round > 0;
                    long step = round + s.warmups();
                    BenchReport.progress("python round %d of %d%s", round + s.warmups(), s.saves() + s.warmups(), measured ? "" : " (warm-up)");
                    double c = PythonTrainers.maxMs(t.all("copy"), "ms");
                    List<JsonNode> saved = t.all("save " + step);
                    double w = PythonTrainers.maxMs(t.all("write"), "ms");
                    double r = PythonTrainers.maxMs(t.all("restore " + step), "ms");
                    double rr = PythonTrainers.maxMs(t.all("read"), "ms");
                    Double t0 = torchVersion == null ? null : PythonTrainers.maxMs(t.all("torch0"), "ms");
                    Double ta = torchVersion == null ? null : PythonTrainers.maxMs(t.all("torchall"), "ms");
                    List<JsonNode> d = t.all("dcp");
                    dcpReason = d.get(0).has("error") ? d.get(0).get("error").asText() : null;
                    lastStep = step;
                    if (measured) {
                        copy.add(c);
                        stall.add(PythonTrainers.maxMs(saved, "ms"));
                        commit.add(PythonTrainers.maxMs(saved, "committedMs"));
                        write.add(w);
                        restore.add(r);
                        read.add(rr);
                        if (t0 != null) {
                            torch0.add(t0);
                            torchAll.add(ta);
                        }
                        if (dcpReason == null) {
                            dcp.add(PythonTrainers.maxMs(d, "ms"));
                        }
                    }
                }
            }
            putFigures(out, stall, copy, commit, restore, write, read, storedMib);
            out.put("torchVersion", torchVersion);
            out.put("torchSaveStallMs", torch0.isEmpty() ? null : round2(median(torch0)));
            out.put("torchSaveEveryRankStallMs", torchAll.isEmpty() ? null : round2(median(torchAll)));
            out.put("dcpStallMs", dcp.isEmpty() ? null : round2(median(dcp)));
            if (dcpReason != null) {
                out.put("dcpReason", dcpReason);
            }
            if (s.mirrored()) {
                Manifest m = new CheckpointCatalog(store).read(lastStep);
                long max = m.shards().stream().mapToLong(Manifest.ShardRef::length).max().orElse(0);
                double perWorker = stateMib * (1 << 20) / s.workers();
                out.put("pythonMaxWorkerBytes", max);
                out.put("maxWorkerBytesOverSPerN", round3(max / perWorker));
            }
        }
        deleteQuietly(scratch);
    }

    private void putFigures(Map<String, Object> out, List<Double> stall, List<Double> copy, List<Double> commit, List<Double> restore,
            List<Double> write, List<Double> read, double storedMib) {
        double readMib = s.shardMib() * (double) s.workers(); // every trainer restores (and reads) its whole state
        double writeMib = s.shardMib() * (double) s.workers(); // the write baseline: every trainer writes its whole state
        out.put("pythonWorkers", s.workers());
        out.put("pythonShardMiB", s.shardMib());
        out.put("pythonMirrored", s.mirrored());
        out.put("pythonSaves", s.saves());
        out.put("pythonWarmupSaves", s.warmups());
        out.remove("jitWarmupSaves"); // the JVM bench's header fields that do not apply
        out.remove("entryKiB");
        out.put("entryKiB", s.entryMib() << 10);
        out.put("workersAre", "python3 processes (cairn package, state of float32 NumPy arrays), one cairn agent sidecar JVM each");
        out.put("pythonStallMs", round2(median(stall)));
        out.put("numpyCopyMs", round2(median(copy)));
        out.put("pythonStallRatio", round2(median(ratios(stall, copy))));
        out.put("pythonSaveMiBps", round2(median(commit.stream().map(ms -> storedMib / (ms / 1000)).toList())));
        out.put("pythonRawWriteMiBps", round2(median(write.stream().map(ms -> writeMib / (ms / 1000)).toList())));
        out.put("pythonRestoreMiBps", round2(median(restore.stream().map(ms -> readMib / (ms / 1000)).toList())));
        out.put("pythonRawReadMiBps", round2(median(read.stream().map(ms -> readMib / (ms / 1000)).toList())));
        out.put("pythonStallRoundsMs", BenchStats.round2(stall));
        out.put("numpyCopyRoundsMs", BenchStats.round2(copy));
    }

    private static void deleteQuietly(Path dir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (java.io.IOException e) {
            // the bench directory is removed with the run's storage anyway
        }
    }
}
