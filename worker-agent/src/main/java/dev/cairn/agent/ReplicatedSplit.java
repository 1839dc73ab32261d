package dev.cairn.agent;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which bytes of the replicated entries this worker stores. Every worker computes the same
 * partition from its own (name, length) list of replicated entries, with no coordination: the
 * entries concatenated in name order (UTF-8 byte order) form a stream of S bytes, and worker k of
 * N stores bytes {@code [⌊k·S/N⌋, ⌊(k+1)·S/N⌋)} of it, an entry being cut at those boundaries. A
 * zero-length entry is stored (as an empty piece) by the last worker whose range starts at or
 * before its place in the stream. See docs/architecture.md.
 */
final class ReplicatedSplit {
    /** This worker's piece of one entry: bytes {@code [from, to)} of it; {@code holds} false for none. */
    record Piece(long from, long to, boolean holds) {}

    private static final Piece NONE = new Piece(0, 0, false);
    private static final Comparator<String> UTF8_ORDER = (a, b) ->
            Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));

    private final Map<String, Piece> pieces = new HashMap<>();

    /**
     * @param lengths every replicated entry of the snapshot, name → length
     */
    ReplicatedSplit(Map<String, Long> lengths, int worker, int worldSize) {
        List<String> names = lengths.keySet().stream().sorted(UTF8_ORDER).toList();
        long total = 0;
        for (String n : names) {
            total = Math.addExact(total, lengths.get(n));
        }
        long lo = boundary(worker, total, worldSize);
        long hi = boundary(worker + 1, total, worldSize);
        long at = 0;
        for (String n : names) {
            long length = lengths.get(n);
            if (length == 0) {
                pieces.put(n, owner(at, total, worldSize) == worker ? new Piece(0, 0, true) : NONE);
                continue;
            }
            long from = Math.max(at, lo);
            long to = Math.min(at + length, hi);
            pieces.put(n, from < to ? new Piece(from - at, to - at, true) : NONE);
            at += length;
        }
    }

    /** This worker's piece of replicated entry {@code name}. */
    Piece piece(String name) {
        Piece p = pieces.get(name);
        if (p == null) {
            throw new IllegalArgumentException("'" + name + "' is not a replicated entry of this snapshot");
        }
        return p;
    }

    /** ⌊k·total/n⌋ without overflow: total = q·n + r, so k·total/n = k·q + k·r/n. */
    static long boundary(int k, long total, int n) {
        long q = total / n;
        long r = total % n;
        return k * q + (k * r) / n;
    }

    /** The last worker whose range starts at or before {@code position}. */
    private static int owner(long position, long total, int n) {
        int k = n - 1;
        while (k > 0 && boundary(k, total, n) > position) {
            k--;
        }
        return k;
    }
}
