package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.proto.v1.Join;
import dev.cairn.protocol.SaveOutcome;
import dev.cairn.storage.StorageUri;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Save targets that no worker reaches expire; workers that close their session leave rather than get lost. */
class SaveTargetExpiryTest {
    private static final String RUN = "run-1";
    private static final int WORLD = 2;

    private final SaveCoordinatorTest.ManualClock clock = new SaveCoordinatorTest.ManualClock();
    private final SaveCoordinatorTest.RecordingOutbox outbox = new SaveCoordinatorTest.RecordingOutbox();
    private final Object[] sessions = {new Object(), new Object(), new Object(), new Object()};
    private final SaveCoordinator machine = new SaveCoordinator(CoordinatorConfig.builder(RUN, WORLD, StorageUri.parse("file:///ckpt/run-1"))
            .heartbeatInterval(Duration.ofSeconds(1))
            .heartbeatTimeout(Duration.ofSeconds(60))
            .barrierTimeout(Duration.ofSeconds(4))
            .build(), clock, outbox, Optional.empty());

    private static Join join(int worker) {
        return Join.newBuilder().setRunId(RUN).setWorkerIndex(worker).setWorldSize(WORLD).build();
    }

    private void joinBoth(int sessionOffset) throws Exception {
        for (int w = 0; w < WORLD; w++) {
            machine.join(sessions[sessionOffset + w], join(w));
            machine.heartbeat(w, sessions[sessionOffset + w], 10);
        }
    }

    @Test
    void aTargetNoWorkerReachesExpiresAfterTheBarrierTimeoutAndShowsInTheHistory() throws Exception {
        joinBoth(0);
        long target = machine.trigger("operator request");
        assertThat(machine.pendingTargetStep()).isEqualTo(target);

        clock.advance(Duration.ofSeconds(4));
        machine.tick();
        assertThat(machine.pendingTargetStep()).as("not yet: exactly the timeout").isEqualTo(target);

        clock.advance(Duration.ofMillis(1));
        machine.tick();

        assertThat(machine.pendingTargetStep()).isEqualTo(-1);
        assertThat(machine.pendingTargetReason()).isEmpty();
        assertThat(machine.history()).singleElement().satisfies(r -> {
            assertThat(r.step()).isEqualTo(target);
            assertThat(r.outcome()).isEqualTo(SaveOutcome.TARGET_EXPIRED);
            assertThat(r.saveId()).isEmpty();
            assertThat(r.message()).contains("step " + target).contains("operator request").contains("4000 ms");
        });
        assertThat(outbox.ended).as("no save was attempted: listeners hear nothing").isEmpty();
        // the next trigger picks a fresh target
        assertThat(machine.trigger("again")).isPositive();
        assertThat(machine.pendingTargetReason()).isEqualTo("again");
    }

    @Test
    void aTargetOfAJobWhoseWorkersAllLeftIsNotSentToTheNextJob() throws Exception {
        joinBoth(0);
        long target = machine.trigger("operator request");
        machine.sessionLeft(0, sessions[0]);
        assertThat(machine.pendingTargetStep()).as("one worker still runs").isEqualTo(target);

        machine.sessionLeft(1, sessions[1]);

        assertThat(machine.pendingTargetStep()).isEqualTo(-1);
        assertThat(machine.history()).singleElement().satisfies(r -> {
            assertThat(r.outcome()).isEqualTo(SaveOutcome.TARGET_EXPIRED);
            assertThat(r.message()).contains("every worker left");
        });
        int sentBefore = outbox.sent.size();
        joinBoth(2);
        assertThat(outbox.sent.subList(sentBefore, outbox.sent.size())).noneMatch(s -> s.message().hasSaveTarget());
    }

    @Test
    void aBarrierInFlightIsNotExpiredButTimesOutAsABarrier() throws Exception {
        joinBoth(0);
        long target = machine.trigger("operator request");
        machine.prepare(0, sessions[0], target);

        clock.advance(Duration.ofSeconds(5));
        machine.tick();

        assertThat(machine.history()).singleElement().satisfies(r -> assertThat(r.outcome()).isEqualTo(SaveOutcome.BARRIER_TIMEOUT));
    }

    @Test
    void aWorkerThatLeavesDuringASaveAbortsItAsLeftNotLost() throws Exception {
        joinBoth(0);
        long target = machine.trigger("operator request");
        machine.prepare(0, sessions[0], target);

        machine.sessionLeft(1, sessions[1]);

        assertThat(machine.connected()).containsExactly(0);
        assertThat(machine.history()).singleElement().satisfies(r -> {
            assertThat(r.outcome()).isEqualTo(SaveOutcome.WORKER_LOST);
            assertThat(r.message()).contains("worker 1 left").doesNotContain("lost");
        });
    }
}
