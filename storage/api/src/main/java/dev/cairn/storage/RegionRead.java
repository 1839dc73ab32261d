package dev.cairn.storage;

/**
 * What a region read ({@link CheckpointCatalog#readRegion}) did.
 *
 * @param bytesNeeded the region's bytes (itemsize × product(shape))
 * @param bytesRead bytes requested from storage (ranged reads; includes the gaps read to coalesce neighbouring runs)
 * @param rangedReads number of ranged reads ({@link CheckpointStore#read(String, long, long)} calls)
 * @param piecesRead pieces that overlap the region
 */
public record RegionRead(long bytesNeeded, long bytesRead, long rangedReads, int piecesRead) {
    /** Nothing read. */
    public static final RegionRead NONE = new RegionRead(0, 0, 0, 0);

    /** The sum of two reads (for callers that read several regions). */
    public RegionRead plus(RegionRead other) {
        return new RegionRead(bytesNeeded + other.bytesNeeded, bytesRead + other.bytesRead, rangedReads + other.rangedReads,
                piecesRead + other.piecesRead);
    }
}
