package dev.cairn.harness;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.AgentHooks;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.RestoredCheckpoint;
import dev.cairn.agent.SaveAbortedException;
import dev.cairn.agent.SaveHandle;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * A toy trainer on the agent library, for the demo, the integration tests and chaos campaigns.
 * It reports what happens as {@code EVENT kind key=value ...} lines on stdout.
 */
@Command(name = "toy-worker", hidden = true, description = "Run a toy trainer whose state is a deterministic function of (worker, step).")
public final class ToyWorkerCommand implements Callable<Integer> {
    @Option(names = "--coordinator", required = true, paramLabel = "HOST:PORT")
    String coordinator;

    @Option(names = "--run-id", required = true)
    String runId;

    @Option(names = "--index", required = true)
    int index;

    @Option(names = "--world", required = true)
    int world;

    @Option(names = "--steps", required = true, description = "Train until this step, then leave.")
    long steps;

    @Option(names = "--state-kib", defaultValue = "4096", description = "Bytes of state per worker, in KiB.")
    int stateKib;

    @Option(names = "--staging-mib", defaultValue = "64")
    int stagingMib;

    @Option(names = "--chunk-kib", defaultValue = "512")
    int chunkKib;

    @Option(names = "--step-millis", defaultValue = "0", description = "Simulated compute time per step.")
    long stepMillis;

    @Option(names = "--pause-at", paramLabel = "PHASE@STEP", description = "Block forever at this save phase (to be killed there).")
    String pauseAt;

    @Option(names = "--hold-before-save", paramLabel = "STEP", defaultValue = "-1",
            description = "Stop before preparing the save at STEP until a line arrives on stdin (chaos campaigns).")
    long holdBeforeSave;

    @Option(names = "--preemption-grace-s", defaultValue = "30")
    long preemptionGraceS;

    @Option(names = "--storage", paramLabel = "URI",
            description = "Storage URI to use instead of the one the coordinator announces (which carries no options, e.g. no S3 endpoint or credentials).")
    String storage;

    /**
     * The command line of a toy worker (without the JVM): the options every launcher passes; more
     * ({@code --pause-at}, {@code --chunk-kib}, ...) can be added to the returned list.
     */
    static List<String> commandLine(String coordinator, String runId, int index, int world, long steps, int stateKib, String storage) {
        return new ArrayList<>(List.of("toy-worker", "--coordinator", coordinator, "--run-id", runId,
                "--index", Integer.toString(index), "--world", Integer.toString(world), "--steps", Long.toString(steps),
                "--state-kib", Integer.toString(stateKib), "--storage", storage));
    }

    @Override
    public Integer call() throws Exception {
        int stateBytes = stateKib * 1024;
        AgentHooks hooks = pauseHooks();
        AgentConfig config = AgentConfig.builder(coordinator, runId, index, world)
                .stagingBytes((long) stagingMib << 20)
                .chunkBytes(chunkKib << 10)
                .hooks(hooks)
                .storageOverride(storage)
                .build();
        try (CairnAgent agent = CairnAgent.connect(config)) {
            agent.installPreemptionHook(Duration.ofSeconds(preemptionGraceS));
            long step = 0;
            Optional<RestoredCheckpoint> restored = agent.restoreLatest();
            if (restored.isPresent()) {
                RestoredCheckpoint r = restored.get();
                List<String> bad = ToyState.check(name -> r.entryNames().contains(name) ? Optional.of(r.read(name)) : Optional.empty(),
                        index, r.step(), stateBytes);
                if (!bad.isEmpty()) {
                    ClusterProcess.emit("restore-mismatch", "step", r.step(), "detail", bad.get(0).replace(' ', '_'));
                    return 3;
                }
                step = r.step();
                ClusterProcess.emit("restored", "step", step, "worker", index);
            } else {
                ClusterProcess.emit("restored", "step", "none", "worker", index);
            }
            while (step < steps) {
                step++;
                if (stepMillis > 0) {
                    Thread.sleep(stepMillis);
                }
                if (step == holdBeforeSave) {
                    ClusterProcess.emit("paused", "phase", "BEFORE_PREPARE", "step", step);
                    new java.io.BufferedReader(new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8)).readLine();
                    ClusterProcess.emit("resumed", "step", step);
                }
                if (agent.isSaveDue(step)) {
                    long s = step;
                    SaveHandle h = agent.save(step, snap -> ToyState.write(snap, index, s, stateBytes));
                    ClusterProcess.emit("saved", "step", step, "stallUs", h.stallMicros());
                    h.committed().whenComplete((ok, err) -> {
                        if (err == null) {
                            ClusterProcess.emit("committed", "step", s, "saveId", ok.saveId());
                        } else {
                            Throwable cause = err instanceof java.util.concurrent.CompletionException ? err.getCause() : err;
                            String reason = cause instanceof SaveAbortedException a ? a.reason().name() : cause.getClass().getSimpleName();
                            ClusterProcess.emit("aborted", "step", s, "reason", reason);
                        }
                    });
                }
            }
            ClusterProcess.emit("trained", "step", step);
        }
        ClusterProcess.emit("done", "worker", index);
        return 0;
    }

    private AgentHooks pauseHooks() {
        if (pauseAt == null) {
            return AgentHooks.NONE;
        }
        String[] parts = pauseAt.split("@");
        if (parts.length != 2) {
            throw new IllegalArgumentException("--pause-at must be PHASE@STEP, was '" + pauseAt + "'");
        }
        AgentHooks.Phase phase;
        long step;
        try {
            phase = AgentHooks.Phase.valueOf(parts[0].toUpperCase(Locale.ROOT));
            step = Long.parseLong(parts[1]);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--pause-at must be PHASE@STEP with PHASE one of " + List.of(AgentHooks.Phase.values()) + ", was '" + pauseAt + "'");
        }
        return new AgentHooks() {
            @Override
            public void onPhase(Phase p, long s) {
                if (p == phase && s == step) {
                    ClusterProcess.emit("paused", "phase", p, "step", s);
                    try {
                        new CountDownLatch(1).await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        };
    }
}
