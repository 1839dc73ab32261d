package dev.cairn.harness;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code cairn chaos}: a coordinator and N toy workers on loopback; every round injects one fault
 * chosen by the seed at a moment chosen by the seed, recovers the way a cluster manager would, and
 * checks the invariants of docs/chaos.md. Exit 0 only if no invariant was violated. This class
 * holds the options and their checks; {@link ChaosCampaign} runs the campaign.
 */
@Command(name = "chaos", description = "Run a chaos campaign against a local cluster: kill workers and the coordinator at every "
        + "moment of a save, stall a worker, break storage, race two commits; check after every round that nothing committed "
        + "was lost and nothing partial became visible. Exit 0 only if every invariant held.")
public final class ChaosCommand implements Callable<Integer> {
    @Option(names = "--rounds", defaultValue = "30", description = "Rounds, one fault each (default ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the schedule; the same seed gives the same faults at the same moments (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--workers", defaultValue = "3", description = "Worker processes, 2..8 (default ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--backend", defaultValue = "file", paramLabel = "file|hdfs|s3", description = "Storage backend (default ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    @Option(names = "--state-kib", defaultValue = "256", description = "State per worker in KiB (default ${DEFAULT-VALUE}).")
    int stateKib;

    @Option(names = "--faults", split = ",", paramLabel = "KIND",
            description = "Only these fault kinds (default: all), e.g. worker-stall,split-brain.")
    List<String> onlyFaults;

    @Option(names = "--keep-logs", description = "Keep the work directory (process logs, storage) even when every invariant held.")
    boolean keepLogs;

    @Option(names = "--unsafe-commit-before-durable", hidden = true,
            description = "Checker self-test: run the coordinator with a deliberately broken commit path; the campaign must fail.")
    boolean unsafeCommit;

    @Override
    public Integer call() throws Exception {
        validate();
        return new ChaosCampaign(new ChaosSettings(rounds, seed, workers, backend, json, stateKib, onlyFaults, keepLogs, unsafeCommit))
                .run();
    }

    private void validate() {
        if (rounds < 1 || rounds > 100_000) {
            throw new IllegalArgumentException("--rounds must be between 1 and 100000, was " + rounds);
        }
        if (workers < 2 || workers > 8) {
            throw new IllegalArgumentException("--workers must be between 2 and 8 (a round may hold one worker and kill another), was " + workers);
        }
        if (stateKib < 8 || stateKib > 64 * 1024) {
            throw new IllegalArgumentException("--state-kib must be between 8 and 65536, was " + stateKib);
        }
        if (onlyFaults != null) {
            for (String f : onlyFaults) {
                if (Arrays.stream(ChaosFault.values()).noneMatch(k -> k.label().equals(f))) {
                    throw new IllegalArgumentException("--faults: unknown fault kind '" + f + "'; kinds: "
                            + Arrays.stream(ChaosFault.values()).map(ChaosFault::label).toList());
                }
            }
        }
        Backends.check(backend);
    }
}
