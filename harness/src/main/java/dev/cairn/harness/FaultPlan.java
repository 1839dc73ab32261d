package dev.cairn.harness;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * Which fault each round injects, and where: every choice comes from one {@link Random} seeded
 * by {@code --seed}, drawn in a fixed order, so the same seed gives the same faults at the same
 * moments.
 */
final class FaultPlan {
    private final Random random;
    private final List<ChaosFault> schedule;
    private final int workers;

    /** The seed's schedule for {@code rounds} rounds of {@code workers} workers, drawing from {@code onlyFaults} (null: all). */
    FaultPlan(long seed, int rounds, int workers, List<String> onlyFaults) {
        this.random = new Random(seed);
        this.workers = workers;
        this.schedule = schedule(random, rounds, onlyFaults);
    }

    /** Decks of every fault kind, each shuffled by the seed: every kind occurs once in each run of {@code kinds} rounds. */
    private static List<ChaosFault> schedule(Random random, int rounds, List<String> onlyFaults) {
        List<ChaosFault> kinds = new ArrayList<>();
        for (ChaosFault f : ChaosFault.values()) {
            if (onlyFaults == null || onlyFaults.contains(f.label())) {
                kinds.add(f);
            }
        }
        List<ChaosFault> schedule = new ArrayList<>();
        while (schedule.size() < rounds) {
            List<ChaosFault> deck = new ArrayList<>(kinds);
            Collections.shuffle(deck, random);
            schedule.addAll(deck);
        }
        return List.copyOf(schedule.subList(0, rounds));
    }

    List<ChaosFault> schedule() {
        return schedule;
    }

    /** Where round {@code number} strikes: which save (counted from the latest checkpoint), which worker, and a seed for the fault's variant. */
    record Target(long faultStep, int victim, long variantSeed) {}

    /**
     * The next round's target, the seed picking the moment: the second or third save after
     * {@code latestBefore}, one worker, and a seed for the variant of the fault.
     */
    Target next(long latestBefore) {
        long faultStep = latestBefore + ChaosSettings.SAVE_EVERY * (2 + random.nextInt(2));
        int victim = random.nextInt(workers);
        return new Target(faultStep, victim, random.nextLong());
    }
}
