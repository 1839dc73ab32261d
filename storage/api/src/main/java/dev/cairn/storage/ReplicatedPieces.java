package dev.cairn.storage;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The manifest rule for replicated entries: the pieces of each replicated name (one per worker
 * that stored a byte range of it) carry one type, and their byte ranges {@code [entryOffset,
 * entryOffset + length)} tile {@code [0, total)} exactly once, {@code total} being the type's byte
 * length ({@link Manifest.Tensor#check}). So every replicated byte is stored exactly once.
 */
final class ReplicatedPieces {
    private ReplicatedPieces() {}

    /** @throws IllegalArgumentException naming the entry and what is wrong */
    static void check(Manifest m) {
        Map<String, List<Manifest.EntryRef>> byName = new LinkedHashMap<>();
        for (Manifest.EntryRef e : m.entries()) {
            if (e.replicated()) {
                byName.computeIfAbsent(e.name(), n -> new ArrayList<>()).add(e);
            }
        }
        for (List<Manifest.EntryRef> pieces : byName.values()) {
            checkEntry(pieces);
        }
    }

    private static void checkEntry(List<Manifest.EntryRef> pieces) {
        Manifest.EntryRef first = pieces.get(0);
        String what = "replicated entry '" + first.name() + "'";
        long total;
        try {
            total = first.tensor().dtype().byteLength(first.tensor().shapeArray());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": " + first.tensor().dtype().numpyName() + first.tensor().shape() + " exceeds 2^63 bytes");
        }
        try {
            first.tensor().check(total);
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(what + ": " + ex.getMessage());
        }
        for (Manifest.EntryRef p : pieces) {
            if (!p.tensor().equals(first.tensor())) {
                throw new IllegalArgumentException(what + ": piece of worker " + p.worker() + " has type " + p.tensor().dtype().numpyName()
                        + p.tensor().shape() + ", piece of worker " + first.worker() + " has " + first.tensor().dtype().numpyName()
                        + first.tensor().shape());
            }
            if (p.entryOffset() < 0) {
                throw new IllegalArgumentException(what + ": piece of worker " + p.worker() + " has negative entryOffset " + p.entryOffset());
            }
            if (p.length() == 0 && total > 0) {
                throw new IllegalArgumentException(what + ": piece of worker " + p.worker() + " is empty");
            }
        }
        List<Manifest.EntryRef> sorted = new ArrayList<>(pieces);
        sorted.sort(Comparator.comparingLong(Manifest.EntryRef::entryOffset));
        long covered = 0;
        Manifest.EntryRef previous = null;
        for (Manifest.EntryRef p : sorted) {
            if (previous != null && p.entryOffset() == previous.entryOffset()) {
                throw new IllegalArgumentException(what + ": bytes from " + p.entryOffset() + " are stored twice (workers "
                        + previous.worker() + " and " + p.worker() + ")");
            }
            if (p.entryOffset() < covered) {
                throw new IllegalArgumentException(what + ": piece of worker " + p.worker() + " at " + p.entryOffset()
                        + " overlaps the piece before it, which ends at " + covered);
            }
            if (p.entryOffset() > covered) {
                throw new IllegalArgumentException(what + ": bytes [" + covered + ", " + p.entryOffset() + ") are stored by no piece");
            }
            // compared without adding: entryOffset + length may overflow 64 bits
            if (p.length() > total - covered) {
                throw new IllegalArgumentException(what + ": piece of worker " + p.worker() + " at " + p.entryOffset() + " of "
                        + p.length() + " bytes ends past the entry's " + total + " bytes");
            }
            covered += p.length();
            previous = p;
        }
        if (covered != total) {
            throw new IllegalArgumentException(what + ": bytes [" + covered + ", " + total + ") are stored by no piece");
        }
    }
}
