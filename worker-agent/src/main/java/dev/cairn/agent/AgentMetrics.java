package dev.cairn.agent;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;
import java.util.function.LongSupplier;

/**
 * One agent's Prometheus metrics, in a registry of its own (names in docs/operations.md): the
 * trainer's stall per save, staging memory in use, and upload bytes and durations (their ratio is
 * the upload throughput). Thread-safe.
 */
final class AgentMetrics {
    private static final double[] SECONDS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Histogram stall;
    private final Histogram upload;
    private final Counter uploadedBytes;

    AgentMetrics(LongSupplier stagingInUse, long stagingLimit) {
        stall = Histogram.builder().name("cairn_agent_stall_seconds").help("How long each save blocked the trainer (the snapshot copy)")
                .unit(Unit.SECONDS).classicOnly().classicUpperBounds(SECONDS).register(registry);
        upload = Histogram.builder().name("cairn_agent_upload_duration_seconds").help("From a save's release to its shard being durable")
                .unit(Unit.SECONDS).classicOnly().classicUpperBounds(SECONDS).register(registry);
        uploadedBytes = Counter.builder().name("cairn_agent_uploaded_bytes_total").help("Bytes of shards made durable")
                .unit(Unit.BYTES).register(registry);
        GaugeWithCallback.builder().name("cairn_agent_staging_in_use_bytes").help("Staging memory holding snapshot bytes not yet uploaded")
                .unit(Unit.BYTES).callback(cb -> cb.call(stagingInUse.getAsLong())).register(registry);
        GaugeWithCallback.builder().name("cairn_agent_staging_limit_bytes").help("The staging budget (a larger snapshot waits for uploads)")
                .unit(Unit.BYTES).callback(cb -> cb.call(stagingLimit)).register(registry);
    }

    PrometheusRegistry registry() {
        return registry;
    }

    void stalled(long micros) {
        stall.observe(micros / 1e6);
    }

    void uploaded(long bytes, long nanos) {
        upload.observe(nanos / 1e9);
        uploadedBytes.inc(bytes);
    }
}
