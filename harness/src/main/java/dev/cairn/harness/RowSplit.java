package dev.cairn.harness;

/**
 * The even split of a tensor's first dimension over {@code parts} workers, as NumPy's
 * {@code array_split} cuts it: the first {@code rows % parts} workers get one row more than the
 * others. Used by the resharded-restore figure for both the saving and the restoring world.
 *
 * @param start the first row of the part
 * @param rows the number of rows of the part (0 when there are fewer rows than parts)
 */
record RowSplit(long start, long rows) {
    /** Part {@code rank} of {@code total} rows split over {@code parts}. */
    static RowSplit of(long total, int parts, int rank) {
        if (total < 0 || parts < 1 || rank < 0 || rank >= parts) {
            throw new IllegalArgumentException("cannot split " + total + " rows over " + parts + " parts at rank " + rank);
        }
        // the one rule of `cairn restore --world M --rank R` (docs/resharding.md)
        long[] part = dev.cairn.storage.export.RestoreSelection.rows(total, parts, rank);
        return new RowSplit(part[0], part[1]);
    }

    long end() {
        return start + rows;
    }
}
