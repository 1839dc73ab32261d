package dev.cairn.harness;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;

class FaultPlanTest {
    private static List<Object> draw(long seed, int rounds, List<String> only) {
        FaultPlan plan = new FaultPlan(seed, rounds, 3, only);
        List<Object> drawn = new ArrayList<>(plan.schedule());
        long latest = 0;
        for (int r = 0; r < rounds; r++) {
            FaultPlan.Target t = plan.next(latest);
            drawn.add(t);
            latest = t.faultStep();
        }
        return drawn;
    }

    @Test
    void theSameSeedGivesTheSameFaultsAtTheSameMoments() {
        assertThat(draw(1, 30, null)).isEqualTo(draw(1, 30, null));
        assertThat(draw(1, 30, null)).isNotEqualTo(draw(2, 30, null));
    }

    @Test
    void everyKindOccursOnceInEachDeck() {
        List<ChaosFault> schedule = new FaultPlan(7, 2 * ChaosFault.values().length, 3, null).schedule();
        int n = ChaosFault.values().length;
        assertThat(EnumSet.copyOf(schedule.subList(0, n))).containsExactlyInAnyOrder(ChaosFault.values());
        assertThat(EnumSet.copyOf(schedule.subList(n, 2 * n))).containsExactlyInAnyOrder(ChaosFault.values());
    }

    @Test
    void targetsAreTheSecondOrThirdSaveAfterTheLatestOnAWorkerOfTheWorld() {
        FaultPlan plan = new FaultPlan(3, 5, 3, List.of("worker-stall"));
        assertThat(plan.schedule()).containsOnly(ChaosFault.WORKER_STALL).hasSize(5);
        for (int i = 0; i < 100; i++) {
            FaultPlan.Target t = plan.next(40);
            assertThat(t.faultStep()).isIn(40 + 2 * ChaosSettings.SAVE_EVERY, 40 + 3 * ChaosSettings.SAVE_EVERY);
            assertThat(t.victim()).isBetween(0, 2);
        }
    }
}
