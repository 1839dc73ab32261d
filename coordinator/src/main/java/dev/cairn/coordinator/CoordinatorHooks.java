package dev.cairn.coordinator;

/**
 * Observes the moments of a save on the coordinator's side: a read-only extension point (it can
 * change no decision of the state machine). Called on the thread doing the work, so a hook that
 * blocks holds the coordinator at that moment — the harness's chaos campaigns pause the coordinator
 * there and SIGKILL it. Production code uses {@link #NONE}.
 */
public interface CoordinatorHooks {
    CoordinatorHooks NONE = new CoordinatorHooks() {};

    enum Phase {
        /** The first prepare of a step arrived: its barrier is open. Event-loop thread. */
        BARRIER_STARTED,
        /** Every shard of the save is reported durable; the manifest write is about to start. Event-loop thread. */
        ALL_REPORTED,
        /** The manifest was created (the checkpoint exists); no worker has been told yet. I/O thread. */
        MANIFEST_WRITTEN
    }

    /**
     * Called at {@code phase} of the save of {@code step}; {@code saveId} is empty before the
     * barrier releases.
     */
    default void onPhase(Phase phase, long step, String saveId) {}
}
