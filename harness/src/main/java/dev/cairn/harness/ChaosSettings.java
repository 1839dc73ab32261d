package dev.cairn.harness;

import java.time.Duration;
import java.util.List;

/**
 * What {@code cairn chaos} was asked for (validated by {@link ChaosCommand}), and the campaign's
 * fixed parameters.
 *
 * @param onlyFaults the fault labels to draw from, or {@code null} for every kind
 */
record ChaosSettings(int rounds, long seed, int workers, String backend, boolean json, int stateKib, List<String> onlyFaults,
                     boolean keepLogs, boolean unsafeCommit) {
    /** The longest a killed or stalled worker may go unnoticed before its save aborts. */
    static final long DETECT_LIMIT_MS = 10_000;
    static final Duration WAIT = Duration.ofSeconds(30);
    static final Duration SHORT_WAIT = Duration.ofSeconds(10);
    static final String RUN_ID = "chaos";
    static final int KEEP_LAST = 5;
    static final long SAVE_EVERY = 4;
    static final long STEP_MILLIS = 25;

    int stateBytes() {
        return stateKib * 1024;
    }
}
