package dev.cairn.harness;

import dev.cairn.storage.CheckpointStoreProvider;
import dev.cairn.storage.CheckpointStores;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** The storage backends the harness commands can run on: the value of their {@code --backend}. */
final class Backends {
    static final List<String> NAMES = List.of("file", "hdfs", "s3");

    private Backends() {}

    /** Checks a {@code --backend} value. */
    static void check(String backend) {
        if (!NAMES.contains(backend)) {
            throw new IllegalArgumentException("--backend must be file, hdfs or s3, was '" + backend + "'");
        }
    }

    /** Checks a {@code --backend} value and that a store for its scheme is on the class path (HDFS and S3 are optional modules). */
    static void requireAvailable(String backend) {
        check(backend);
        List<String> schemes = availableSchemes();
        if (!schemes.contains(backend)) {
            throw new IllegalArgumentException("backend '" + backend + "' is not available: no " + backend + " CheckpointStore on the class "
                    + "path of this cairn build (only " + schemes + "); build cairn with the " + backend + " storage module to benchmark it");
        }
    }

    private static List<String> availableSchemes() {
        List<String> schemes = new ArrayList<>();
        for (CheckpointStoreProvider p : ServiceLoader.load(CheckpointStoreProvider.class, CheckpointStores.class.getClassLoader())) {
            schemes.add(p.scheme());
        }
        return schemes;
    }
}
