package dev.cairn.coordinator;

import static java.util.Objects.requireNonNull;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.StorageUri;
import java.time.Duration;
import java.util.function.UnaryOperator;

/**
 * Settings of a coordinator. Defaults: heartbeats every second, a worker silent for 6 s is lost,
 * the barrier waits 60 s, an upload 30 min, retention keeps the last 5.
 *
 * @param storeDecorator wraps the store the coordinator opens (see {@link Builder#storeDecorator})
 */
public record CoordinatorConfig(
        String runId,
        int worldSize,
        StorageUri storage,
        long saveEverySteps,
        Duration saveEvery,
        Duration heartbeatInterval,
        Duration heartbeatTimeout,
        Duration barrierTimeout,
        Duration uploadTimeout,
        RetentionPolicy retention,
        String token,
        CoordinatorHooks hooks,
        UnaryOperator<CheckpointStore> storeDecorator) {

    public CoordinatorConfig {
        requireNonNull(runId, "runId is null");
        requireNonNull(storage, "storage is null");
        if (runId.isBlank()) {
            throw new IllegalArgumentException("run id is empty");
        }
        if (!ProtocolLimits.RUN_ID.matcher(runId).matches()) {
            throw new IllegalArgumentException("run id must be 1.." + ProtocolLimits.MAX_RUN_ID_CHARS
                    + " characters of [A-Za-z0-9._-], was " + LogSafe.quote(runId));
        }
        if (worldSize < 1 || worldSize > 100_000) {
            throw new IllegalArgumentException("world size must be between 1 and 100000, was " + worldSize);
        }
        if (saveEverySteps < 0) {
            throw new IllegalArgumentException("save-every-steps must not be negative, was " + saveEverySteps);
        }
        for (Duration d : new Duration[] {heartbeatInterval, heartbeatTimeout, barrierTimeout, uploadTimeout}) {
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("timeouts and intervals must be positive, was " + d);
            }
        }
        if (saveEvery.isNegative()) {
            throw new IllegalArgumentException("save-every must not be negative");
        }
        if (heartbeatTimeout.compareTo(heartbeatInterval.multipliedBy(2)) < 0) {
            throw new IllegalArgumentException("heartbeat timeout " + heartbeatTimeout + " must be at least twice the interval " + heartbeatInterval);
        }
        requireNonNull(retention, "retention is null");
        token = token == null ? "" : token;
        hooks = hooks == null ? CoordinatorHooks.NONE : hooks;
        storeDecorator = storeDecorator == null ? UnaryOperator.identity() : storeDecorator;
    }

    public static Builder builder(String runId, int worldSize, StorageUri storage) {
        return new Builder(runId, worldSize, storage);
    }

    /** Builder with the defaults above. */
    public static final class Builder {
        private final String runId;
        private final int worldSize;
        private final StorageUri storage;
        private long saveEverySteps;
        private Duration saveEvery = Duration.ZERO;
        private Duration heartbeatInterval = Duration.ofSeconds(1);
        private Duration heartbeatTimeout = Duration.ofSeconds(6);
        private Duration barrierTimeout = Duration.ofSeconds(60);
        private Duration uploadTimeout = Duration.ofMinutes(30);
        private RetentionPolicy retention = RetentionPolicy.keepLast(5);
        private String token = "";
        private CoordinatorHooks hooks = CoordinatorHooks.NONE;
        private UnaryOperator<CheckpointStore> storeDecorator = UnaryOperator.identity();

        private Builder(String runId, int worldSize, StorageUri storage) {
            this.runId = runId;
            this.worldSize = worldSize;
            this.storage = storage;
        }

        public Builder saveEverySteps(long steps) { this.saveEverySteps = steps; return this; }
        public Builder saveEvery(Duration every) { this.saveEvery = every; return this; }
        public Builder heartbeatInterval(Duration d) { this.heartbeatInterval = d; return this; }
        public Builder heartbeatTimeout(Duration d) { this.heartbeatTimeout = d; return this; }
        public Builder barrierTimeout(Duration d) { this.barrierTimeout = d; return this; }
        public Builder uploadTimeout(Duration d) { this.uploadTimeout = d; return this; }
        public Builder retention(RetentionPolicy r) { this.retention = r; return this; }
        public Builder token(String t) { this.token = t; return this; }
        /** Observers of the moments of a save (default: none); see {@link CoordinatorHooks}. */
        public Builder hooks(CoordinatorHooks h) { this.hooks = h; return this; }
        /**
         * Wraps the store the coordinator opens (instrumentation, caching, quotas, fault injection
         * in tests); the coordinator closes the wrapper. Default: the store itself.
         */
        public Builder storeDecorator(UnaryOperator<CheckpointStore> d) { this.storeDecorator = d; return this; }

        public CoordinatorConfig build() {
            return new CoordinatorConfig(runId, worldSize, storage, saveEverySteps, saveEvery, heartbeatInterval,
                    heartbeatTimeout, barrierTimeout, uploadTimeout, retention, token, hooks, storeDecorator);
        }
    }
}
