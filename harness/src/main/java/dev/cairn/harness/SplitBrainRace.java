package dev.cairn.harness;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * Two coordinators racing to commit the same step (a split brain), each with its own store
 * handle and save attempt, released together: exactly one manifest must win, the loser must be
 * told ALREADY_EXISTS and must leave nothing behind. Runs on a scratch root beside the run's, so
 * the live coordinator's view of its run stays true; the run itself does a normal round.
 */
final class SplitBrainRace {
    private final ChaosSettings settings;
    private final ChaosStorage storage;
    private final ChaosCluster cluster;
    private final ChaosReport report;

    SplitBrainRace(ChaosSettings settings, ChaosStorage storage, ChaosCluster cluster, ChaosReport report) {
        this.settings = settings;
        this.storage = storage;
        this.cluster = cluster;
        this.report = report;
    }

    void run(ChaosRound round) throws Exception {
        round.moment = "two commits of one step";
        cluster.startRound(round, Map.of());
        long step = round.faultStep;
        String scratchName = "split-brain-" + round.number;
        StorageUri scratch = StorageUri.parse(storage.uriText(scratchName));
        int stateBytes = settings.stateBytes();
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<String[]>> racers = new ArrayList<>();
        try {
            for (int c = 0; c < 2; c++) {
                racers.add(pool.submit(() -> {
                    try (CheckpointStore s = CheckpointStores.open(scratch, true)) {
                        CheckpointCatalog cat = new CheckpointCatalog(s);
                        Manifest m = writeToyCheckpoint(s, step, stateBytes);
                        go.await();
                        CheckpointCatalog.CommitOutcome outcome = cat.commit(m);
                        if (outcome == CheckpointCatalog.CommitOutcome.ALREADY_EXISTS) {
                            cat.deleteAttempt(m.saveId()); // what the losing coordinator does
                        }
                        return new String[] {m.saveId(), outcome.name()};
                    }
                }));
            }
            go.countDown();
            String[] a = racers.get(0).get();
            String[] b = racers.get(1).get();
            report.splitBrainRaces++;
            long winners = Stream.of(a, b).filter(x -> x[1].equals("COMMITTED")).count();
            long losers = Stream.of(a, b).filter(x -> x[1].equals("ALREADY_EXISTS")).count();
            round.outcome = winners + " winner, " + losers + " loser told ALREADY_EXISTS";
            if (winners != 1 || losers != 1) {
                round.violation("split brain: " + winners + " commits won and " + losers + " were refused (want exactly 1 and 1)");
            }
            try (CheckpointStore s = CheckpointStores.open(scratch, false)) {
                CheckpointCatalog cat = new CheckpointCatalog(s);
                String winner = a[1].equals("COMMITTED") ? a[0] : b[0];
                Manifest m = cat.read(step);
                if (!m.saveId().equals(winner)) {
                    round.violation("split brain: the manifest names save " + m.saveId() + " but save " + winner + " was told it won");
                }
                List<String> bad = new ArrayList<>(cat.verify(m));
                bad.addAll(ToyState.checkCheckpoint(cat, m, stateBytes));
                if (!bad.isEmpty()) {
                    round.violation("split brain: the winning checkpoint does not restore: " + bad);
                }
                List<String> orphans = ChaosChecker.orphans(storage.rawKeys(scratchName, s), Set.of(m.saveId()));
                if (!orphans.isEmpty()) {
                    round.violation("split brain: the loser left objects behind: " + orphans);
                }
            }
        } finally {
            pool.shutdownNow();
            StorageCleanup.deleteAll(scratch);
        }
    }

    /** Writes every worker's shard of the toy state at {@code step} under a fresh save id, as agents would. */
    private Manifest writeToyCheckpoint(CheckpointStore s, long step, int stateBytes) throws IOException {
        String saveId = Layout.newSaveId(step);
        List<Manifest.ShardRef> shards = new ArrayList<>();
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (int w = 0; w < settings.workers(); w++) {
            String key = Layout.shardKey(saveId, w);
            CRC32C objectCrc = new CRC32C();
            long offset = 0;
            try (ObjectWriter out = s.create(key)) {
                for (ToyState.Entry e : ToyState.entries(w, step, stateBytes)) {
                    if (e.replicated() && w != 0) {
                        continue; // a replicated entry is stored once, by worker 0
                    }
                    byte[] bytes = e.bytes();
                    CRC32C crc = new CRC32C();
                    crc.update(bytes);
                    objectCrc.update(bytes);
                    out.write(bytes);
                    entries.add(new Manifest.EntryRef(e.name(), w, offset, bytes.length, (int) crc.getValue(), e.replicated()));
                    offset += bytes.length;
                }
                out.commit();
            }
            shards.add(new Manifest.ShardRef(w, key, offset, (int) objectCrc.getValue()));
        }
        return new Manifest(ManifestCodec.FORMAT_VERSION, ChaosSettings.RUN_ID, step, saveId, Instant.now(), settings.workers(),
                shards, entries, Map.of("step", step));
    }
}
