package dev.cairn.agent.sidecar;

import dev.cairn.agent.AgentHooks;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;

/**
 * The sidecar's test hook {@code --pause-at PHASE@STEP}: when this worker's save of {@code STEP}
 * reaches {@code PHASE}, it prints {@code EVENT paused phase=PHASE step=STEP} on stdout and holds
 * that phase forever, so a test can kill the trainer at a known point of the save (as the toy
 * worker's {@code --pause-at} does for JVM workers).
 */
final class PauseHook implements AgentHooks {
    private final Phase phase;
    private final long step;
    private final PrintStream out;

    private PauseHook(Phase phase, long step, PrintStream out) {
        this.phase = phase;
        this.step = step;
        this.out = out;
    }

    /** The hook of {@code spec} ({@code PHASE@STEP}), or {@link AgentHooks#NONE} when null. */
    static AgentHooks parse(String spec, PrintStream out) {
        if (spec == null) {
            return AgentHooks.NONE;
        }
        String[] parts = spec.split("@");
        try {
            if (parts.length != 2) {
                throw new IllegalArgumentException();
            }
            return new PauseHook(Phase.valueOf(parts[0].toUpperCase(Locale.ROOT)), Long.parseLong(parts[1]), out);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--pause-at must be PHASE@STEP with PHASE one of " + List.of(Phase.values())
                    + ", was '" + spec + "'");
        }
    }

    @Override
    public void onPhase(Phase p, long s) {
        if (p != phase || s != step) {
            return;
        }
        synchronized (out) {
            out.println("EVENT paused phase=" + p + " step=" + s);
            out.flush();
        }
        try {
            new CountDownLatch(1).await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
