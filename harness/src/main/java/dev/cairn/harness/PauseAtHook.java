package dev.cairn.harness;

import dev.cairn.coordinator.CoordinatorHooks;
import dev.cairn.testkit.ClusterProcess;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;

/**
 * The coordinator's hidden {@code --pause-at PHASE@STEP} (chaos campaigns): a hook that blocks the
 * save forever at one moment, after announcing it as a {@code paused} event, so the campaign can
 * kill the coordinator exactly there.
 */
public final class PauseAtHook implements CoordinatorHooks {
    private final Phase phase;
    private final long step;

    private PauseAtHook(Phase phase, long step) {
        this.phase = phase;
        this.step = step;
    }

    /**
     * The hook for {@code spec} ({@code PHASE@STEP}, e.g. {@code COMMIT@30}); {@link CoordinatorHooks#NONE} for null.
     *
     * @throws IllegalArgumentException naming the phases there are
     */
    public static CoordinatorHooks parse(String spec) {
        if (spec == null) {
            return CoordinatorHooks.NONE;
        }
        String[] parts = spec.split("@");
        try {
            if (parts.length != 2) {
                throw new IllegalArgumentException();
            }
            return new PauseAtHook(Phase.valueOf(parts[0].toUpperCase(Locale.ROOT)), Long.parseLong(parts[1]));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--pause-at must be PHASE@STEP with PHASE one of " + List.of(Phase.values())
                    + ", was '" + spec + "'");
        }
    }

    @Override
    public void onPhase(Phase p, long s, String saveId) {
        if (p == phase && s == step) {
            ClusterProcess.emit("paused", "phase", p, "step", s, "saveId", saveId.isEmpty() ? "-" : saveId);
            try {
                new CountDownLatch(1).await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
