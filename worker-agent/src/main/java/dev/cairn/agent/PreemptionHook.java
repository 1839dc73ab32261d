package dev.cairn.agent;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.PreemptionNotice;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A JVM shutdown hook (SIGTERM: a preemption notice) that asks the coordinator for an emergency
 * save at the trainer's next step boundary and holds shutdown until a checkpoint after the current
 * step commits or the grace period passes. Callbacks the trainer chained on that save's
 * {@code committed()} future run before shutdown goes on: the commit wakes this hook on the network
 * thread, which has already queued their completion on the agent's events thread, and the hook
 * waits for that queue too (within the same grace period).
 */
final class PreemptionHook {
    private static final Logger LOG = LoggerFactory.getLogger(PreemptionHook.class);

    private PreemptionHook() {}

    static Thread install(CoordinatorSession session, SaveTracker tracker, int worker, Duration grace, BooleanSupplier agentClosed) {
        Thread hook = new Thread(() -> {
            if (agentClosed.getAsBoolean() || !session.connected()) {
                return;
            }
            long step = session.currentStep();
            LOG.warn("worker {}: preemption signal at step {}; asking for an emergency save", worker, step);
            session.send(AgentMessage.newBuilder().setPreemption(PreemptionNotice.newBuilder().setStep(step)).build());
            try {
                long deadline = System.nanoTime() + grace.toNanos();
                session.awaitCommitAfter(step, deadline);
                tracker.awaitQueuedEvents(deadline);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "cairn-preemption-" + worker);
        Runtime.getRuntime().addShutdownHook(hook);
        return hook;
    }
}
