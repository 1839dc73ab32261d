package dev.cairn.harness;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.coordinator.CoordinatorHooks;
import org.junit.jupiter.api.Test;

class PauseAtHookTest {
    @Test
    void noSpecIsNoHookAndABadOneNamesThePhases() {
        assertThat(PauseAtHook.parse(null)).isSameAs(CoordinatorHooks.NONE);
        for (String bad : new String[] {"COMMIT", "COMMIT@x", "NOPE@3", "A@1@2"}) {
            assertThatThrownBy(() -> PauseAtHook.parse(bad)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("--pause-at must be PHASE@STEP with PHASE one of [").hasMessageEndingWith("was '" + bad + "'");
        }
    }

    @Test
    void theHookLetsEveryOtherMomentPass() {
        CoordinatorHooks.Phase[] phases = CoordinatorHooks.Phase.values();
        CoordinatorHooks hook = PauseAtHook.parse(phases[0].name().toLowerCase(java.util.Locale.ROOT) + "@30");

        assertThat(hook).isInstanceOf(PauseAtHook.class);
        // each returns at once: another step, another phase (blocking at the named moment is what chaos campaigns kill)
        hook.onPhase(phases[0], 29, "29-00000000");
        if (phases.length > 1) {
            hook.onPhase(phases[1], 30, "30-00000000");
        }
    }
}
