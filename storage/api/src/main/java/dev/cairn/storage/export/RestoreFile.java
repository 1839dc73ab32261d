package dev.cairn.storage.export;

import java.util.List;
import java.util.Locale;

/** One file a {@link DirectoryRestore} writes, and what {@code index.json} says about it. */
record RestoreFile(String path, String name, Kind kind, Integer worker, ExportTensor tensor, List<Long> globalShape,
        List<Long> globalOffsets) {
    enum Kind {
        /** A saved worker's own entry, as saved (a piece of a sharded tensor, or an unsharded entry). */
        OWN,
        /** A replicated entry, whole. */
        REPLICATED,
        /** A region of a sharded tensor, cut for a rank of a new world size. */
        REGION;

        String json() {
            return name().toLowerCase(Locale.ROOT);
        }
    }
}
