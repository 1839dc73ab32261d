package dev.cairn.harness;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cairn.testkit.ClusterProcess;
import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a chaos campaign found: the violations, every round's result and the campaign's tallies;
 * printed at the end as a table or one JSON object (the fields of docs/chaos.md).
 */
final class ChaosReport {
    final List<String> violations = new ArrayList<>();
    final List<String> notes = new ArrayList<>();
    private final List<ChaosRound.Result> results = new ArrayList<>();
    private final Map<ChaosFault, Integer> faultCounts = new EnumMap<>(ChaosFault.class);
    long maxDetectMs;
    long maxStorageDetectMs;
    int storageFaultsInjected;
    int splitBrainRaces;
    int coordinatorStarts;
    int workerStarts;

    void countFault(ChaosFault fault) {
        faultCounts.merge(fault, 1, Integer::sum);
    }

    void add(ChaosRound.Result result) {
        results.add(result);
    }

    void workerLostFor(long detectMs) {
        maxDetectMs = Math.max(maxDetectMs, detectMs);
    }

    void storageFailedFor(long detectMs) {
        maxStorageDetectMs = Math.max(maxStorageDetectMs, detectMs);
    }

    /** A progress line on stderr. */
    static void progress(String format, Object... args) {
        System.err.printf("cairn chaos: " + format + "%n", args);
        System.err.flush();
    }

    /** Prints the report; {@code saves} are the coordinators' save events of the whole campaign. */
    void print(ChaosSettings s, List<ClusterProcess.Event> saves, String workDir, long millis) throws IOException {
        long committed = 0;
        long aborted = 0;
        Map<String, Integer> reasons = new TreeMap<>();
        for (ClusterProcess.Event e : saves) {
            if ("COMMITTED".equals(e.get("outcome"))) {
                committed++;
            } else {
                aborted++;
                reasons.merge(e.get("outcome"), 1, Integer::sum);
            }
        }
        Map<String, Integer> faults = new LinkedHashMap<>();
        for (ChaosFault f : ChaosFault.values()) {
            faults.put(f.label(), faultCounts.getOrDefault(f, 0));
        }
        if (s.json()) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("rounds", s.rounds());
            o.put("seed", s.seed());
            o.put("workers", s.workers());
            o.put("backend", s.backend());
            o.put("storageFaultsInjected", storageFaultsInjected);
            o.put("faults", faults);
            o.put("committed", committed);
            o.put("aborted", aborted);
            o.put("abortReasons", reasons);
            o.put("violations", violations.size());
            o.put("violationMessages", violations);
            o.put("maxDetectMs", maxDetectMs);
            o.put("maxStorageDetectMs", maxStorageDetectMs);
            o.put("splitBrainRaces", splitBrainRaces);
            o.put("coordinatorStarts", coordinatorStarts);
            o.put("workerStarts", workerStarts);
            o.put("notes", notes);
            o.put("durationMs", millis);
            System.out.println(new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(o));
            return;
        }
        System.out.println();
        System.out.printf("%5s  %-34s  %-40s  %6s  %9s  %6s  %s%n", "ROUND", "FAULT", "MOMENT", "STEP", "DETECT ms", "LATEST", "RESULT");
        for (ChaosRound.Result r : results) {
            System.out.printf("%5d  %-34s  %-40s  %6d  %9s  %6d  %s%n", r.round(), r.fault(), r.moment(), r.faultStep(),
                    r.detectMs() >= 0 ? Long.toString(r.detectMs()) : "-", r.latest(),
                    r.violations() == 0 ? "ok" : r.violations() + " violation(s)");
        }
        System.out.println();
        System.out.printf("faults: %s%n", faults);
        System.out.printf("saves: %d committed, %d aborted %s; split-brain races: %d (each with one loser told ALREADY_EXISTS)%n",
                committed, aborted, reasons, splitBrainRaces);
        System.out.printf("slowest detection of a killed or stalled worker: %d ms (limit %d ms); of a storage failure: %d ms%n",
                maxDetectMs, ChaosSettings.DETECT_LIMIT_MS, maxStorageDetectMs);
        notes.forEach(n -> System.out.println("note: " + n));
        if (violations.isEmpty()) {
            System.out.printf("chaos campaign passed: %d rounds, seed %d, every invariant held (%.1f s)%n", s.rounds(), s.seed(),
                    millis / 1000.0);
        } else {
            violations.forEach(v -> System.out.println("VIOLATION: " + v));
            System.out.printf("chaos campaign FAILED: %d violation(s) in %d rounds, seed %d (%.1f s); logs in %s%n",
                    violations.size(), s.rounds(), s.seed(), millis / 1000.0, workDir);
        }
    }
}
