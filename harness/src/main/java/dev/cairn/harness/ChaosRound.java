package dev.cairn.harness;

import java.util.List;
import java.util.Random;

/** The mutable state of one chaos round in progress; its violations go to the campaign's list. */
final class ChaosRound {
    final int number;
    final String name;
    final ChaosFault fault;
    final long latestBefore;
    final long faultStep;
    final int victim;
    /** The seeded choices of the fault's variant (stall phase, DataNode, S3 errors). */
    final Random random;
    private final List<String> violations;
    final int violationsBefore;
    String moment = "";
    String outcome = "";
    long detectMs = -1;
    /** A worker held before preparing, so the barrier stays open; -1 if none. */
    int holder = -1;
    /** The coordinator's event count when the round's workers started. */
    int coordinatorMark;

    ChaosRound(int number, String name, ChaosFault fault, long latestBefore, long faultStep, int victim, Random random,
               List<String> violations) {
        this.number = number;
        this.name = name;
        this.fault = fault;
        this.latestBefore = latestBefore;
        this.faultStep = faultStep;
        this.victim = victim;
        this.random = random;
        this.violations = violations;
        this.violationsBefore = violations.size();
    }

    void violation(String message) {
        violations.add(name + " (" + fault.label() + (moment.isEmpty() ? "" : " " + moment) + ", step " + faultStep + "): " + message);
    }

    int violationCount() {
        return violations.size() - violationsBefore;
    }

    /** What one round did, for the report. */
    record Result(int round, String fault, String moment, long faultStep, String outcome, long detectMs, long latest,
                  int violations, long millis) {}
}
