package dev.cairn.coordinator;

import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.SaveTarget;
import java.time.Duration;

/**
 * The pending save target (time policy, operator trigger, preemption): a step just ahead of the
 * fastest worker — {@code max(progress) + 1 + ceil(rate × 2 heartbeats) × leadFactor} — never at or
 * past the protocol's largest step. Event-loop thread only.
 */
final class SaveTargets {
    private long step = -1;
    private String reason = "";
    private long pickedAtMillis;

    /** The pending target, or -1. */
    long step() {
        return step;
    }

    String reason() {
        return reason;
    }

    /** When the pending target was picked (the coordinator's clock). */
    long pickedAtMillis() {
        return pickedAtMillis;
    }

    boolean pending() {
        return step >= 0;
    }

    /** Forgets the target if it is {@code s} (its save started or ended). */
    void clearIf(long s) {
        if (step == s) {
            step = -1;
        }
    }

    void clear() {
        step = -1;
    }

    /**
     * Picks the next target after {@code floor} (the latest checkpoint's step) and the fastest
     * worker; returns it, or -1 (nothing pending) when it would pass the largest step.
     */
    long pick(Members members, long floor, Duration heartbeat, int leadFactor, String why, long nowMillis) {
        long lead = 1 + (long) Math.min(1 << 20, Math.ceil(members.maxRate() * 2.0 * heartbeat.toMillis() / 1000.0)) * leadFactor;
        long next = Math.max(members.maxStep(), floor) + lead; // both below 2^62: no overflow
        if (!ProtocolLimits.isStep(next)) {
            return -1;
        }
        step = next;
        reason = why;
        pickedAtMillis = nowMillis;
        return step;
    }

    /** The message announcing the pending target. */
    CoordinatorMessage message() {
        return CoordinatorMessage.newBuilder().setSaveTarget(SaveTarget.newBuilder().setStep(step).setReason(reason)).build();
    }
}
