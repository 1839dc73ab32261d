package dev.cairn.coordinator;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The workers with a live session and what their heartbeats say: the step each one is at and how
 * fast it moves (for picking a save target just ahead of the fastest). Event-loop thread only.
 */
final class Members {
    /** One worker's session. */
    static final class Member {
        final Object session;
        /** The abort sequence number when the session joined (see {@link SaveHistory}). */
        final long joinedAtAbortSeq;
        long lastSeenMillis;
        long step = -1;
        private long prevStep = -1;
        private long prevStepAtMillis;
        private long stepAtMillis;
        private long firstStep = -1;
        private long firstStepAtMillis;

        Member(Object session, long now, long abortSeq) {
            this.session = session;
            this.joinedAtAbortSeq = abortSeq;
            this.lastSeenMillis = now;
            this.stepAtMillis = now;
        }

        /** Records a heartbeat at {@code step}. */
        void heartbeat(long step, long now) {
            lastSeenMillis = now;
            if (firstStep < 0 && step >= 0) {
                firstStep = step;
                firstStepAtMillis = now;
            }
            if (step != this.step) {
                prevStep = this.step;
                prevStepAtMillis = stepAtMillis;
                this.step = step;
                stepAtMillis = now;
            }
        }

        /** Steps per second: the last interval, or the whole session when that is all there is. */
        double rate() {
            double rate = 0;
            if (prevStep >= 0 && stepAtMillis > prevStepAtMillis) {
                rate = Math.max(rate, (step - prevStep) * 1000.0 / (stepAtMillis - prevStepAtMillis));
            }
            if (firstStep >= 0 && stepAtMillis > firstStepAtMillis) {
                rate = Math.max(rate, (step - firstStep) * 1000.0 / (stepAtMillis - firstStepAtMillis));
            }
            return rate;
        }
    }

    private final Map<Integer, Member> members = new TreeMap<>();

    boolean contains(int worker) {
        return members.containsKey(worker);
    }

    void add(int worker, Member m) {
        members.put(worker, m);
    }

    /** The member of {@code worker} if {@code session} is its current session. */
    Member get(int worker, Object session) {
        Member m = members.get(worker);
        return m != null && m.session == session ? m : null;
    }

    Member get(int worker) {
        return members.get(worker);
    }

    void remove(int worker) {
        members.remove(worker);
    }

    int size() {
        return members.size();
    }

    Set<Integer> workers() {
        return Set.copyOf(members.keySet());
    }

    Map<Integer, Member> snapshot() {
        return Map.copyOf(members);
    }

    /** The highest step any worker reported (-1 for none). */
    long maxStep() {
        long max = -1;
        for (Member m : members.values()) {
            max = Math.max(max, m.step);
        }
        return max;
    }

    /** The fastest worker's rate in steps per second. */
    double maxRate() {
        double rate = 0;
        for (Member m : members.values()) {
            rate = Math.max(rate, m.rate());
        }
        return rate;
    }
}
