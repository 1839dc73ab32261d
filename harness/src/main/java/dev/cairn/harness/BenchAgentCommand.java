package dev.cairn.harness;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.SaveHandle;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The memory figure of {@code cairn bench}, run in its own small-heap JVM: one agent saves a shard
 * several times larger than its staging budget and prints its peak heap as an {@code EVENT memory}
 * line. The trainer's state is off-heap and produced 1 MiB at a time, so the heap measured is the
 * agent's.
 */
@Command(name = "bench-agent", hidden = true, description = "One agent of cairn bench's memory figure.")
public final class BenchAgentCommand implements Callable<Integer> {
    @Option(names = "--coordinator", required = true, paramLabel = "HOST:PORT")
    String coordinator;

    @Option(names = "--run-id", required = true)
    String runId;

    @Option(names = "--shard-mib", required = true)
    int shardMib;

    @Option(names = "--staging-mib", required = true)
    int stagingMib;

    @Override
    public Integer call() throws Exception {
        AgentConfig config = AgentConfig.builder(coordinator, runId, 0, 1)
                .stagingBytes((long) stagingMib << 20)
                .build();
        ByteBuffer tensor = ByteBuffer.allocateDirect(1 << 20);
        try (CairnAgent agent = CairnAgent.connect(config)) {
            System.gc();
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                pool.resetPeakUsage();
            }
            SaveHandle h = agent.save(1, snap -> {
                for (int i = 0; i < shardMib; i++) {
                    tensor.clear();
                    while (tensor.remaining() >= 8) {
                        tensor.putLong((long) i * 0x9E3779B97F4A7C15L + tensor.position());
                    }
                    tensor.flip();
                    snap.put(String.format(Locale.ROOT, "model/block_%05d", i), tensor);
                }
            });
            h.await(Duration.ofMinutes(10));
            long peak = 0;
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                if (pool.getType() == MemoryType.HEAP) {
                    peak += pool.getPeakUsage().getUsed();
                }
            }
            ClusterProcess.emit("memory", "peakHeapBytes", peak, "peakStagingBytes", agent.peakStagingBytes(),
                    "stallMicros", h.stallMicros(), "maxHeapBytes", Runtime.getRuntime().maxMemory());
        }
        return 0;
    }
}
