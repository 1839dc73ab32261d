package dev.cairn.storage;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a region of a logical tensor from the pieces that overlap it, with ranged reads.
 *
 * <p>For each overlapping piece the region's elements form contiguous runs in the piece's C-order
 * layout. Runs are read in order; a run is merged into the ranged read before it while the gap
 * bytes read (and thrown away) to do so stay within {@link #GAP_PERCENT}% of the bytes the piece
 * contributes to the region. So bytes read ≤ 1.05 × bytes needed; reads are exact to the element,
 * no alignment unit is added. A ranged read that covers a whole stored entry (or a whole byte
 * piece of a replicated entry) is CRC32C-checked; a partial read cannot be, since the manifest
 * records one CRC per entry. On a store with {@link SupportsRangedReads} each object is opened once
 * per piece read, not once per range.
 */
final class RegionReader {
    /** Gap bytes merged into ranged reads, in percent of the bytes a piece contributes. */
    static final int GAP_PERCENT = 5;
    private static final int BUFFER = 256 << 10;

    private final CheckpointStore store;

    RegionReader(CheckpointStore store) {
        this.store = requireNonNull(store, "store is null");
    }

    /** See {@link CheckpointCatalog#readRegion(Manifest, LogicalTensor, DType, long[], long[], ByteBuffer)}. */
    RegionRead read(Manifest m, LogicalTensor t, DType expected, long[] offsets, long[] shape, ByteBuffer dest) throws IOException {
        requireNonNull(offsets, "offsets is null");
        requireNonNull(shape, "shape is null");
        requireNonNull(dest, "dest is null");
        String what = "entry '" + t.name() + "'";
        if (expected != null && expected != t.dtype()) {
            throw new IllegalArgumentException(what + " is " + t.dtype().numpyName() + ", not the requested " + expected.numpyName());
        }
        long[] global = t.globalShapeArray();
        String region = "region " + Arrays.toString(shape) + " at " + Arrays.toString(offsets);
        if (offsets.length != global.length || shape.length != global.length) {
            throw new IllegalArgumentException(what + ": " + region + " does not have the tensor's rank " + global.length
                    + " (global shape " + t.globalShape() + ")");
        }
        for (int d = 0; d < global.length; d++) {
            // compared without adding: offset + shape may overflow 64 bits
            if (offsets[d] < 0 || shape[d] < 0 || offsets[d] > global[d] || shape[d] > global[d] - offsets[d]) {
                throw new IllegalArgumentException(what + ": " + region + " lies outside the global shape " + t.globalShape()
                        + " (dimension " + d + ")");
            }
        }
        long needed;
        try {
            needed = t.dtype().byteLength(shape);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": " + region + " exceeds 2^63 bytes");
        }
        if (dest.remaining() < needed) {
            throw new IllegalArgumentException(what + ": " + region + " of " + t.dtype().numpyName() + " needs " + needed
                    + " bytes, dest has " + dest.remaining());
        }
        if (needed == 0) {
            return RegionRead.NONE;
        }
        List<Box> overlaps = new ArrayList<>();
        long covered = 0;
        for (LogicalTensor.Piece p : t.pieces()) {
            Box box = Box.intersect(p, offsets, shape);
            if (box != null) {
                overlaps.add(box);
                covered += box.elements();
            }
        }
        long elements = needed / t.dtype().itemSize();
        if (covered != elements) {
            throw new IllegalArgumentException(what + ": " + (elements - covered) + " of the " + elements + " elements of " + region
                    + " are stored by no piece (global shape " + t.globalShape() + ", " + t.pieces().size() + " pieces)");
        }
        int base = dest.position();
        RegionRead total = RegionRead.NONE;
        for (Box box : overlaps) {
            total = total.plus(readPiece(m, t, box, offsets, shape, dest, base));
        }
        dest.position(base + (int) needed);
        return new RegionRead(needed, total.bytesRead(), total.rangedReads(), overlaps.size());
    }

    private RegionRead readPiece(Manifest m, LogicalTensor t, Box box, long[] ro, long[] rs, ByteBuffer dest, int base) throws IOException {
        List<Segment> segments = new ArrayList<>();
        long start = 0;
        for (Manifest.EntryRef ref : m.pieces(box.piece().entry())) {
            if (ref.length() > 0) {
                String key = m.shard(ref.worker()).objectKey();
                String what = "entry '" + ref.name() + "' " + (ref.replicated() ? "(piece at " + ref.entryOffset() + ") " : "")
                        + "of worker " + ref.worker() + " in " + store.uri().resolve(key);
                segments.add(new Segment(start, ref, key, what));
            }
            start += ref.length();
        }
        int item = t.dtype().itemSize();
        Fragments look = new Fragments(new Units(box, ro, rs, item), segments);
        Fragments copy = new Fragments(new Units(box, ro, rs, item), segments);
        long budget = Math.multiplyExact(box.elements(), (long) item) * GAP_PERCENT / 100;
        long bytesRead = 0;
        long reads = 0;
        byte[] buffer = new byte[(int) Math.min(BUFFER, Math.max(64, box.elements() * item))];
        // on a store with ranged-read handles, each object is opened once for all the ranges read of it
        Map<String, SupportsRangedReads.Ranges> handles = new HashMap<>();
        try {
            boolean more = look.next();
            while (more) {
                int segment = look.segment;
                long from = look.src;
                long to = look.src + look.length;
                int fragments = 1;
                while ((more = look.next()) && look.segment == segment && look.src - to <= budget) {
                    budget -= look.src - to;
                    to = look.src + look.length;
                    fragments++;
                }
                readRun(segments.get(segment), from, to, fragments, copy, dest, base, buffer, handles);
                bytesRead += to - from;
                reads++;
            }
        } catch (IOException | RuntimeException e) {
            for (SupportsRangedReads.Ranges r : handles.values()) {
                try {
                    r.close();
                } catch (IOException closing) {
                    e.addSuppressed(closing);
                }
            }
            throw e;
        }
        closeAll(handles.values());
        return new RegionRead(0, bytesRead, reads, 1);
    }

    /** One ranged read of bytes [from, to) of a segment, copying {@code fragments} fragments of it into {@code dest}. */
    private void readRun(Segment s, long from, long to, int fragments, Fragments copy, ByteBuffer dest, int base,
            byte[] buffer, Map<String, SupportsRangedReads.Ranges> handles) throws IOException {
        Manifest.EntryRef ref = s.ref();
        String key = s.key();
        String what = s.what();
        InputStream raw;
        if (store instanceof SupportsRangedReads ranged) {
            SupportsRangedReads.Ranges ranges = handles.get(key);
            if (ranges == null) {
                ranges = ranged.openRanges(key);
                handles.put(key, ranges);
            }
            raw = ranges.read(ref.offset() + from, to - from);
        } else {
            raw = store.read(key, ref.offset() + from, to - from);
        }
        boolean whole = from == 0 && to == ref.length();
        try (InputStream in = whole ? new CheckedEntryStream(raw, ref.crc32c(), ref.length(), what) : raw) {
            long pos = from;
            for (int i = 0; i < fragments; i++) {
                copy.next();
                transfer(in, copy.src - pos, null, 0, buffer, what);
                transfer(in, copy.length, dest, base + copy.dst, buffer, what);
                pos = copy.src + copy.length;
            }
        }
    }

    private static void closeAll(Collection<SupportsRangedReads.Ranges> handles) throws IOException {
        IOException first = null;
        for (SupportsRangedReads.Ranges r : handles) {
            try {
                r.close();
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** Moves {@code n} bytes of {@code in} to {@code dest} at {@code at}, or drops them when {@code dest} is null. */
    private static void transfer(InputStream in, long n, ByteBuffer dest, long at, byte[] buffer, String what) throws IOException {
        while (n > 0) {
            int chunk = (int) Math.min(n, buffer.length);
            boolean intoArray = dest != null && dest.hasArray();
            byte[] target = intoArray ? dest.array() : buffer;
            int off = intoArray ? dest.arrayOffset() + (int) at : 0;
            if (in.readNBytes(target, off, chunk) != chunk) {
                throw new CorruptObjectException(what + " is truncated");
            }
            if (dest != null && !intoArray) {
                dest.put((int) at, buffer, 0, chunk);
            }
            at += chunk;
            n -= chunk;
        }
    }

    /** A stored byte range of a piece: bytes [start, start + ref.length) of the piece's C-order layout. */
    private record Segment(long start, Manifest.EntryRef ref, String key, String what) {
        long end() {
            return start + ref.length();
        }
    }

    /** The intersection [lo, hi) of a piece and a region, in global coordinates. */
    record Box(LogicalTensor.Piece piece, long[] lo, long[] hi) {
        static Box intersect(LogicalTensor.Piece p, long[] ro, long[] rs) {
            int rank = ro.length;
            long[] lo = new long[rank];
            long[] hi = new long[rank];
            for (int d = 0; d < rank; d++) {
                long po = p.offsets().get(d);
                // both boxes lie inside the global shape: no sum overflows
                lo[d] = Math.max(po, ro[d]);
                hi[d] = Math.min(po + p.shape().get(d), ro[d] + rs[d]);
                if (hi[d] <= lo[d]) {
                    return null;
                }
            }
            return new Box(p, lo, hi);
        }

        long elements() {
            long n = 1;
            for (int d = 0; d < lo.length; d++) {
                n *= hi[d] - lo[d];
            }
            return n;
        }
    }

    /**
     * The units of a box in C order: byte runs contiguous both in the piece's layout ({@code src})
     * and in the region's ({@code dst}). Dimensions past {@code k} are whole in both.
     */
    static final class Units {
        private final long[] lo;
        private final long[] hi;
        private final long[] idx;
        private final long[] pieceStride;
        private final long[] regionStride;
        private final long[] po;
        private final long[] ro;
        private final int k;
        private final long unit;
        private boolean started;
        long src;
        long dst;

        Units(Box box, long[] ro, long[] rs, int item) {
            int rank = ro.length;
            this.lo = box.lo();
            this.hi = box.hi();
            this.ro = ro;
            this.po = LogicalTensors.array(box.piece().offsets());
            long[] ps = LogicalTensors.array(box.piece().shape());
            pieceStride = new long[rank];
            regionStride = new long[rank];
            long p = item;
            long r = item;
            for (int d = rank - 1; d >= 0; d--) {
                pieceStride[d] = p;
                regionStride[d] = r;
                p *= ps[d];
                r *= rs[d];
            }
            int inner = rank - 1;
            while (inner > 0 && lo[inner] == po[inner] && hi[inner] == po[inner] + ps[inner] && lo[inner] == ro[inner]
                    && hi[inner] == ro[inner] + rs[inner]) {
                inner--;
            }
            k = Math.max(inner, 0);
            unit = rank == 0 ? item : (hi[k] - lo[k]) * pieceStride[k];
            idx = Arrays.copyOf(lo, Math.max(k, 0));
        }

        long length() {
            return unit;
        }

        /** Moves to the next unit; false after the last. */
        boolean next() {
            if (started) {
                int d = k - 1;
                while (d >= 0 && ++idx[d] == hi[d]) {
                    idx[d] = lo[d];
                    d--;
                }
                if (d < 0) {
                    return false;
                }
            }
            started = true;
            if (lo.length == 0) {
                src = 0;
                dst = 0;
                return true;
            }
            long s = (lo[k] - po[k]) * pieceStride[k];
            long t = (lo[k] - ro[k]) * regionStride[k];
            for (int d = 0; d < k; d++) {
                s += (idx[d] - po[d]) * pieceStride[d];
                t += (idx[d] - ro[d]) * regionStride[d];
            }
            src = s;
            dst = t;
            return true;
        }
    }

    /** The units split at segment boundaries: {@code src} relative to its segment. */
    private static final class Fragments {
        private final Units units;
        private final List<Segment> segments;
        private long unitSrc;
        private long unitDst;
        private long unitLeft;
        int segment;
        long src;
        long dst;
        long length;

        Fragments(Units units, List<Segment> segments) {
            this.units = units;
            this.segments = segments;
        }

        boolean next() {
            if (unitLeft == 0) {
                if (!units.next()) {
                    return false;
                }
                unitSrc = units.src;
                unitDst = units.dst;
                unitLeft = units.length();
            }
            while (segments.get(segment).end() <= unitSrc) {
                segment++;
            }
            Segment s = segments.get(segment);
            length = Math.min(unitLeft, s.end() - unitSrc);
            src = unitSrc - s.start();
            dst = unitDst;
            unitSrc += length;
            unitDst += length;
            unitLeft -= length;
            return true;
        }
    }
}
