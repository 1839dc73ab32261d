package dev.cairn.agent;

/**
 * Observes the phases of this agent's saves. Called on the thread doing the work; a hook that
 * blocks holds that phase (chaos tests pause a worker here and kill it).
 */
public interface AgentHooks {
    AgentHooks NONE = new AgentHooks() {};

    enum Phase {
        /** The prepare was sent; the snapshot is about to be copied. Trainer thread. */
        PREPARED,
        /** The snapshot is copied into staging; {@code save} is about to return. Trainer thread. */
        SNAPSHOT_DONE,
        /** The barrier released the save; the upload starts. Upload thread. */
        UPLOAD_STARTED,
        /** Half of the shard's bytes are written (not yet durable). Upload thread. */
        UPLOAD_HALFWAY,
        /** The shard is durable in storage; the report is about to be sent. Upload thread. */
        SHARD_DURABLE,
        /** The shard report was sent. Upload thread. */
        REPORTED
    }

    default void onPhase(Phase phase, long step) {}
}
