package dev.cairn.harness;

import java.util.Locale;

/** The faults a chaos round can inject (docs/chaos.md). */
enum ChaosFault {
    WORKER_KILL_BEFORE_BARRIER(true),
    WORKER_KILL_AT_BARRIER(true),
    WORKER_KILL_SNAPSHOT(true),
    WORKER_KILL_MID_UPLOAD(true),
    WORKER_KILL_AFTER_DURABLE(true),
    WORKER_STALL(true),
    COORDINATOR_KILL_BARRIER(false),
    COORDINATOR_KILL_BEFORE_MANIFEST(false),
    COORDINATOR_KILL_AFTER_MANIFEST(false),
    STORAGE_READ_ONLY(false),
    SPLIT_BRAIN(false);

    /** A worker is lost (killed or stalled) in the round. */
    final boolean workerLoss;

    ChaosFault(boolean workerLoss) {
        this.workerLoss = workerLoss;
    }

    /** The name on the command line and in reports, e.g. {@code worker-stall}. */
    String label() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
