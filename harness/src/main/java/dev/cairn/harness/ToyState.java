package dev.cairn.harness;

import dev.cairn.agent.Snapshot;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.Manifest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * The toy trainer's state: bytes that are a deterministic function of (worker, step), so any
 * checkpoint can be checked byte for byte without keeping a copy. Per worker: {@value #PARTS}
 * sharded entries {@code model/layer<k>/kernel}, one replicated {@code model/embedding} (a function
 * of the step only, as a mirrored variable is) and {@code optimizer/step}.
 */
public final class ToyState {
    static final int PARTS = 4;
    static final String EMBEDDING = "model/embedding";
    static final String OPTIMIZER_STEP = "optimizer/step";

    private ToyState() {}

    static String part(int k) {
        return "model/layer" + k + "/kernel";
    }

    static byte[] bytes(int worker, long step, int part, int length) {
        byte[] b = new byte[length];
        new SplittableRandom(seed(worker, step, part)).nextBytes(b);
        return b;
    }

    private static long seed(long worker, long step, long part) {
        long h = 0x9E3779B97F4A7C15L;
        h = (h ^ worker) * 0xBF58476D1CE4E5B9L;
        h = (h ^ step) * 0x94D049BB133111EBL;
        h = (h ^ part) * 0xBF58476D1CE4E5B9L;
        return h ^ (h >>> 31);
    }

    private static int partBytes(int stateBytes) {
        return Math.max(1, stateBytes / (PARTS + 1));
    }

    static byte[] stepBytes(long step) {
        return java.nio.ByteBuffer.allocate(8).putLong(step).array();
    }

    /** One entry of the toy state; a replicated entry is the same in every worker's view. */
    record Entry(String name, byte[] bytes, boolean replicated) {}

    /** The entries of {@code worker} at {@code step} (about {@code stateBytes} bytes), in the order a trainer puts them. */
    static List<Entry> entries(int worker, long step, int stateBytes) {
        int len = partBytes(stateBytes);
        List<Entry> entries = new ArrayList<>();
        for (int k = 0; k < PARTS; k++) {
            entries.add(new Entry(part(k), bytes(worker, step, k, len), false));
        }
        entries.add(new Entry(EMBEDDING, bytes(-1, step, PARTS, len), true));
        entries.add(new Entry(OPTIMIZER_STEP, stepBytes(step), false));
        return entries;
    }

    /** Puts the state of {@code worker} at {@code step} (about {@code stateBytes} bytes) into a snapshot. */
    static void write(Snapshot snapshot, int worker, long step, int stateBytes) {
        for (Entry e : entries(worker, step, stateBytes)) {
            if (e.replicated()) {
                snapshot.putReplicated(e.name(), e.bytes());
            } else {
                snapshot.put(e.name(), e.bytes());
            }
        }
        snapshot.metadata("loss", 1.0 / (step + 1));
        snapshot.metadata("step", step);
    }

    /** Reads one entry of a worker's view: its own or the replicated one. */
    interface EntryReader {
        Optional<byte[]> read(String name) throws IOException;
    }

    /** Compares a restored view of worker {@code worker} with the state at {@code step}; returns mismatches. */
    static List<String> check(EntryReader reader, int worker, long step, int stateBytes) throws IOException {
        List<String> bad = new ArrayList<>();
        int len = partBytes(stateBytes);
        for (int k = 0; k <= PARTS; k++) {
            String name = k < PARTS ? part(k) : EMBEDDING;
            byte[] expected = k < PARTS ? bytes(worker, step, k, len) : bytes(-1, step, PARTS, len);
            Optional<byte[]> actual = reader.read(name);
            if (actual.isEmpty()) {
                bad.add("worker " + worker + ": entry '" + name + "' missing at step " + step);
            } else if (!Arrays.equals(expected, actual.get())) {
                bad.add("worker " + worker + ": entry '" + name + "' differs from the state at step " + step);
            }
        }
        Optional<byte[]> s = reader.read(OPTIMIZER_STEP);
        if (s.isEmpty() || !Arrays.equals(s.get(), stepBytes(step))) {
            bad.add("worker " + worker + ": entry '" + OPTIMIZER_STEP + "' is not " + step);
        }
        return bad;
    }

    /** Checks every worker's view of a committed checkpoint, reading from storage. */
    public static List<String> checkCheckpoint(CheckpointCatalog catalog, Manifest m, int stateBytes) throws IOException {
        List<String> bad = new ArrayList<>();
        for (int w = 0; w < m.worldSize(); w++) {
            int worker = w;
            bad.addAll(check(name -> {
                Optional<Manifest.EntryRef> e = m.entry(worker, name);
                return e.isEmpty() ? Optional.empty() : Optional.of(catalog.readEntry(m, e.get()));
            }, worker, m.step(), stateBytes));
        }
        return bad;
    }
}
