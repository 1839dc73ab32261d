package dev.cairn.coordinator;

import dev.cairn.protocol.SaveOutcome;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;
import java.time.Clock;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The coordinator's Prometheus metrics, in a registry of its own (names and meaning in
 * docs/operations.md). Updated on the event loop and the I/O executor, read by the scraper thread.
 */
final class CoordinatorMetrics {
    private static final double[] SECONDS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter saves;
    private final Counter targetsExpired;
    private final Histogram barrier;
    private final Histogram upload;
    private final Histogram commit;
    private final Histogram stall;
    private final Counter committedBytes;
    private final Counter retentionDeleted;
    private final Gauge connected;
    private final AtomicLong latestStep = new AtomicLong(-1);
    private final AtomicLong latestAtMillis = new AtomicLong(-1);

    CoordinatorMetrics(CoordinatorConfig config, Clock clock) {
        saves = Counter.builder().name("cairn_saves_total").help("Saves that ended, by outcome (COMMITTED or the abort reason)")
                .labelNames("outcome").register(registry);
        for (SaveOutcome o : SaveOutcome.values()) {
            if (o != SaveOutcome.COORDINATOR_LOST && o != SaveOutcome.UNKNOWN && o != SaveOutcome.TARGET_EXPIRED) {
                saves.labelValues(o.name()); // every outcome exposed from the start, so rate() and alerts see 0, not nothing
            }
        }
        targetsExpired = Counter.builder().name("cairn_save_targets_expired_total")
                .help("Save targets no worker reached within the barrier timeout, or whose workers all left").register(registry);
        barrier = seconds("cairn_save_barrier_duration_seconds", "From a save's first prepare to its release (every worker prepared)");
        upload = seconds("cairn_save_upload_duration_seconds", "From a save's release to the last durable shard report");
        commit = seconds("cairn_save_commit_duration_seconds", "From the last shard report to the manifest's commit");
        stall = seconds("cairn_save_max_worker_stall_seconds", "The longest trainer stall (snapshot copy) among the workers of each committed save");
        committedBytes = Counter.builder().name("cairn_committed_bytes_total").help("Bytes of committed checkpoints")
                .unit(Unit.BYTES).register(registry);
        retentionDeleted = Counter.builder().name("cairn_retention_deleted_checkpoints_total")
                .help("Checkpoints deleted by retention").register(registry);
        connected = Gauge.builder().name("cairn_connected_workers").help("Workers with a live session").register(registry);
        Gauge.builder().name("cairn_world_size").help("Workers the run needs").register(registry).set(config.worldSize());
        GaugeWithCallback.builder().name("cairn_latest_committed_step").help("Step of the newest committed checkpoint (-1: none)")
                .callback(cb -> cb.call(latestStep.get())).register(registry);
        GaugeWithCallback.builder().name("cairn_latest_committed_age_seconds")
                .help("Seconds since the newest checkpoint was committed or recovered (absent when there is none)")
                .callback(cb -> {
                    long at = latestAtMillis.get();
                    if (at >= 0) {
                        cb.call(Math.max(0, clock.millis() - at) / 1000.0);
                    }
                }).register(registry);
    }

    private Histogram seconds(String name, String help) {
        return Histogram.builder().name(name).help(help).unit(Unit.SECONDS).classicOnly().classicUpperBounds(SECONDS).register(registry);
    }

    PrometheusRegistry registry() {
        return registry;
    }

    /** The checkpoint the coordinator resumed from, with the time it was found. */
    void recovered(long step, long nowMillis) {
        latestStep.set(step);
        latestAtMillis.set(nowMillis);
    }

    void connectedWorkers(int n) {
        connected.set(n);
    }

    void saveEnded(SaveOutcome outcome) {
        saves.labelValues(outcome.name()).inc();
    }

    void targetExpired() {
        targetsExpired.inc();
    }

    /** A save committed: its phase durations (milliseconds of the coordinator's clock), bytes and largest stall. */
    void committed(PendingSave s, long nowMillis, long bytes, long maxStallMicros) {
        if (s.releasedAtMillis() >= 0) {
            barrier.observe((s.releasedAtMillis() - s.startedAtMillis) / 1000.0);
            if (s.commitStartedAtMillis() >= 0) {
                upload.observe((s.commitStartedAtMillis() - s.releasedAtMillis()) / 1000.0);
                commit.observe((nowMillis - s.commitStartedAtMillis()) / 1000.0);
            }
        }
        stall.observe(maxStallMicros / 1e6);
        committedBytes.inc(bytes);
        latestStep.set(s.step);
        latestAtMillis.set(nowMillis);
    }

    void retentionDeleted() {
        retentionDeleted.inc();
    }
}
