package dev.cairn.cli;

import dev.cairn.coordinator.RetentionPolicy;
import java.time.Duration;
import picocli.CommandLine.Option;

/** Retention flags shared by {@code coordinator} and {@code gc}. */
final class RetentionOptions {
    @Option(names = "--keep-last", paramLabel = "K", defaultValue = "5", description = "Keep the newest K checkpoints (default ${DEFAULT-VALUE}).")
    int keepLast;

    @Option(names = "--keep-every-hours", paramLabel = "H", defaultValue = "0", description = "Also keep one checkpoint every H hours (0: off).")
    double keepEveryHours;

    @Option(names = "--best-k", paramLabel = "K", defaultValue = "0", description = "Also keep the best K by --best-metric (0: off).")
    int bestK;

    @Option(names = "--best-metric", paramLabel = "KEY", description = "Numeric metadata key ranked by --best-k, e.g. loss.")
    String bestMetric;

    @Option(names = "--best-mode", paramLabel = "min|max", defaultValue = "min", description = "Whether smaller (min) or larger (max) is better.")
    String bestMode;

    RetentionPolicy policy() {
        if (keepEveryHours < 0) {
            throw new UserError("--keep-every-hours must not be negative, was " + keepEveryHours);
        }
        RetentionPolicy.Mode mode = switch (bestMode.toLowerCase(java.util.Locale.ROOT)) {
            case "min" -> RetentionPolicy.Mode.MIN;
            case "max" -> RetentionPolicy.Mode.MAX;
            default -> throw new UserError("--best-mode must be min or max, was '" + bestMode + "'");
        };
        return new RetentionPolicy(keepLast, Duration.ofSeconds((long) (keepEveryHours * 3600)), bestK, bestMetric, mode);
    }
}
