package dev.cairn.storage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Groups a manifest's entries into {@link LogicalTensor}s: the non-replicated entries of one name
 * that carry a global shape are the pieces of one sharded tensor; a replicated entry is one tensor;
 * every other entry is its worker's own (unsharded) tensor.
 *
 * <p>The pieces of a sharded name must agree on dtype and global shape and must not overlap, and a
 * name is either sharded, replicated or unsharded on every worker; a manifest that breaks this is a
 * {@link ManifestException} naming the entry (the manifest codec does not check across workers).
 */
public final class LogicalTensors {
    private LogicalTensors() {}

    /**
     * Every logical tensor of {@code manifest}, in the order of {@link Manifest#logicalEntries} (a
     * name first seen first; an unsharded name once per worker that holds it).
     *
     * @throws ManifestException naming the entry when pieces of a name disagree or overlap
     */
    public static List<LogicalTensor> of(Manifest manifest) throws ManifestException {
        Map<String, List<Manifest.EntryRef>> byName = new LinkedHashMap<>();
        for (Manifest.EntryRef e : manifest.logicalEntries()) {
            byName.computeIfAbsent(e.name(), n -> new ArrayList<>()).add(e);
        }
        List<LogicalTensor> tensors = new ArrayList<>();
        for (List<Manifest.EntryRef> entries : byName.values()) {
            tensors.addAll(build(manifest, entries));
        }
        return tensors;
    }

    /**
     * The logical tensor {@code name} as worker {@code worker} of any world size restores it: the
     * sharded or replicated tensor of that name; for an unsharded name, the entry of
     * {@code worker} when it has one, else the only one. {@code worker} −1 prefers none.
     *
     * @throws IllegalArgumentException when no entry has that name, or several workers hold
     *     different unsharded entries of it and {@code worker} is none of them
     * @throws ManifestException as {@link #of}
     */
    public static LogicalTensor find(Manifest manifest, String name, int worker) throws ManifestException {
        List<Manifest.EntryRef> entries = manifest.logicalEntries().stream().filter(e -> e.name().equals(name)).toList();
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("no entry '" + EntryNames.excerpt(name) + "' in the checkpoint of step " + manifest.step());
        }
        List<LogicalTensor> found = build(manifest, entries);
        if (found.size() == 1) {
            return found.get(0);
        }
        return found.stream().filter(t -> t.pieces().get(0).worker() == worker).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("entry '" + name + "' is stored unsharded by workers "
                        + found.stream().map(t -> t.pieces().get(0).worker()).toList()
                        + " (separate tensors, not pieces of one); read it as one of those workers"));
    }

    private static List<LogicalTensor> build(Manifest m, List<Manifest.EntryRef> entries) throws ManifestException {
        Manifest.EntryRef first = entries.get(0);
        String name = first.name();
        boolean sharded = !first.replicated() && first.tensor().globalShape() != null;
        for (Manifest.EntryRef e : entries) {
            boolean s = e.tensor().globalShape() != null && !e.replicated();
            if (e.replicated() != first.replicated() || s != sharded) {
                throw new ManifestException("manifest of step " + m.step() + ": entry '" + name + "' is " + kind(first) + " on worker "
                        + first.worker() + " but " + kind(e) + " on worker " + e.worker());
            }
        }
        if (first.replicated()) {
            return List.of(whole(first, LogicalTensor.Kind.REPLICATED));
        }
        if (!sharded) {
            return entries.stream().map(e -> whole(e, LogicalTensor.Kind.UNSHARDED)).toList();
        }
        List<LogicalTensor.Piece> pieces = new ArrayList<>();
        for (Manifest.EntryRef e : entries) {
            Manifest.Tensor t = e.tensor();
            if (t.dtype() != first.tensor().dtype() || !t.globalShape().equals(first.tensor().globalShape())) {
                throw new ManifestException("manifest of step " + m.step() + ": pieces of entry '" + name + "' disagree: worker "
                        + first.worker() + " has " + t(first.tensor()) + ", worker " + e.worker() + " has " + t(t));
            }
            pieces.add(new LogicalTensor.Piece(e.worker(), t.globalOffsets(), t.shape(), e));
        }
        pieces.sort(Comparator.comparingInt(LogicalTensor.Piece::worker));
        checkDisjoint(m, name, pieces);
        return List.of(new LogicalTensor(name, first.tensor().dtype(), first.tensor().globalShape(), LogicalTensor.Kind.SHARDED, pieces));
    }

    private static LogicalTensor whole(Manifest.EntryRef e, LogicalTensor.Kind kind) {
        List<Long> zeros = Collections.nCopies(e.tensor().shape().size(), 0L);
        return new LogicalTensor(e.name(), e.tensor().dtype(), e.tensor().shape(), kind,
                List.of(new LogicalTensor.Piece(e.worker(), zeros, e.tensor().shape(), e)));
    }

    /**
     * No two non-empty pieces share an element. A sweep along the dimension with the most distinct
     * piece offsets compares only pieces whose extents overlap in that dimension, so row-, column-
     * and grid-splits of many workers stay far from quadratic.
     */
    private static void checkDisjoint(Manifest m, String name, List<LogicalTensor.Piece> pieces) throws ManifestException {
        List<LogicalTensor.Piece> nonEmpty = pieces.stream().filter(p -> !p.shape().contains(0L)).toList();
        int rank = nonEmpty.isEmpty() ? 0 : nonEmpty.get(0).shape().size();
        if (nonEmpty.size() < 2) {
            return;
        }
        if (rank == 0) {
            throw overlap(m, name, nonEmpty.get(0), nonEmpty.get(1));
        }
        int sweep = 0;
        long best = -1;
        for (int d = 0; d < rank; d++) {
            int dim = d;
            long distinct = nonEmpty.stream().mapToLong(p -> p.offsets().get(dim)).distinct().count();
            if (distinct > best) {
                best = distinct;
                sweep = d;
            }
        }
        int dim = sweep;
        List<LogicalTensor.Piece> byStart = new ArrayList<>(nonEmpty);
        byStart.sort(Comparator.comparingLong(p -> p.offsets().get(dim)));
        List<LogicalTensor.Piece> active = new ArrayList<>();
        for (LogicalTensor.Piece p : byStart) {
            long start = p.offsets().get(dim);
            // offsets + shape ≤ globalShape was validated, so these sums do not overflow
            active.removeIf(a -> a.offsets().get(dim) + a.shape().get(dim) <= start);
            for (LogicalTensor.Piece a : active) {
                if (intersects(a, p)) {
                    throw overlap(m, name, a, p);
                }
            }
            active.add(p);
        }
    }

    private static boolean intersects(LogicalTensor.Piece a, LogicalTensor.Piece b) {
        for (int d = 0; d < a.shape().size(); d++) {
            long lo = Math.max(a.offsets().get(d), b.offsets().get(d));
            long hi = Math.min(a.offsets().get(d) + a.shape().get(d), b.offsets().get(d) + b.shape().get(d));
            if (hi <= lo) {
                return false;
            }
        }
        return true;
    }

    private static ManifestException overlap(Manifest m, String name, LogicalTensor.Piece a, LogicalTensor.Piece b) {
        return new ManifestException("manifest of step " + m.step() + ": pieces of entry '" + name + "' overlap: worker " + a.worker()
                + " stores " + a.shape() + " at " + a.offsets() + ", worker " + b.worker() + " stores " + b.shape() + " at " + b.offsets());
    }

    private static String kind(Manifest.EntryRef e) {
        return e.replicated() ? "replicated" : e.tensor().globalShape() != null ? "a piece of a global tensor" : "unsharded";
    }

    private static String t(Manifest.Tensor t) {
        return t.dtype().numpyName() + " of global shape " + t.globalShape();
    }

    static long[] array(List<Long> values) {
        return values.stream().mapToLong(Long::longValue).toArray();
    }

    static String str(long[] values) {
        return Arrays.toString(values);
    }
}
