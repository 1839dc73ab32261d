package dev.cairn.harness;

import dev.cairn.coordinator.CoordinatorHooks;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where a coordination round's time goes: the coordinator's phases (from its {@link
 * CoordinatorHooks}) and the CPU time of this JVM's threads by role, per measured round. The
 * coordinator, its gRPC server and the simulated workers share the JVM, so the CPU is split by
 * thread name: the coordinator's event loop and I/O threads, gRPC's shared Netty threads (the
 * server's, and with full agents also the agents' connections), the simulated workers' own Netty
 * and heartbeat threads, and the rest (the bench, the agents' other threads; JIT and GC are
 * counted in the process total only).
 */
final class CoordinationProfile implements CoordinatorHooks {
    private static final String[] GROUPS = {"coordinatorLoop", "coordinatorIo", "grpcNetty", "simulatedWorkers", "otherJavaThreads"};

    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final com.sun.management.OperatingSystemMXBean os =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    private volatile long barrierStarted;
    private volatile long allReported;
    private volatile long manifestWritten;
    private long[] cpuAtStart;
    private long processCpuAtStart;
    private long gcMillisAtStart;
    private long gcCountAtStart;
    private long jitNanosAtStart;
    /** Per round (the measured ones once the warm-up is cleared): to barrier, barrier to all reported, commit, announcement, the whole round (ms). */
    private final List<double[]> phases = new ArrayList<>();
    /** Per round: CPU ms of each group, then of the process, then GC collections and their ms, then the JIT compiler threads' CPU ms. */
    private final List<double[]> cpu = new ArrayList<>();

    @Override
    public void onPhase(Phase phase, long step, String saveId) {
        long now = System.nanoTime();
        switch (phase) {
            case BARRIER_STARTED -> barrierStarted = now;
            case ALL_REPORTED -> allReported = now;
            case MANIFEST_WRITTEN -> manifestWritten = now;
        }
    }

    /** Forgets the rounds recorded so far (the warm-up's). */
    void clear() {
        phases.clear();
        cpu.clear();
    }

    /** Right before a round's first prepare (not timed). */
    void startRound() {
        cpuAtStart = cpuByGroup();
        processCpuAtStart = os.getProcessCpuTime();
        gcMillisAtStart = gcMillis();
        gcCountAtStart = gcCount();
        jitNanosAtStart = JvmActivity.compilerCpuNanos();
    }

    /** Right after a round ended: {@code t0} its first prepare, {@code last} the last worker seeing the commit. */
    void endRound(long t0, long last) {
        long[] now = cpuByGroup();
        double[] c = new double[GROUPS.length + 4];
        for (int g = 0; g < GROUPS.length; g++) {
            c[g] = (now[g] - cpuAtStart[g]) / 1e6;
        }
        c[GROUPS.length] = (os.getProcessCpuTime() - processCpuAtStart) / 1e6;
        c[GROUPS.length + 1] = gcCount() - gcCountAtStart;
        c[GROUPS.length + 2] = gcMillis() - gcMillisAtStart;
        c[GROUPS.length + 3] = Math.max(0, JvmActivity.compilerCpuNanos() - jitNanosAtStart) / 1e6;
        cpu.add(c);
        phases.add(new double[] {(barrierStarted - t0) / 1e6, (allReported - barrierStarted) / 1e6,
                (manifestWritten - allReported) / 1e6, (last - manifestWritten) / 1e6, (last - t0) / 1e6});
    }

    /** Medians over the measured rounds, for the figure's row. */
    Map<String, Object> summary() {
        Map<String, Object> out = new LinkedHashMap<>();
        Map<String, Object> p = new LinkedHashMap<>();
        String[] names = {"toBarrierOpenMs", "barrierOpenToAllReportedMs", "commitMs", "announceMs"};
        for (int i = 0; i < names.length; i++) {
            p.put(names[i], median(phases, i));
        }
        out.put("phaseMediansMs", p);
        Map<String, Object> c = new LinkedHashMap<>();
        for (int g = 0; g < GROUPS.length; g++) {
            c.put(GROUPS[g], median(cpu, g));
        }
        c.put("process", median(cpu, GROUPS.length));
        out.put("cpuMsPerRoundMedians", c);
        out.put("slowestRounds", slowest(3, names));
        return out;
    }

    /**
     * The {@code n} slowest measured rounds, slowest first, each whole: what its phases took, the
     * CPU of each thread group and of the process, the GC collections and the JIT compiler
     * threads' CPU in it. (Whether a p99 is a phase, a collection, compiling, or the round
     * descheduled: little CPU in a long round.)
     */
    private List<Map<String, Object>> slowest(int n, String[] phaseNames) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < phases.size(); i++) {
            order.add(i);
        }
        order.sort((a, b) -> Double.compare(phases.get(b)[4], phases.get(a)[4]));
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i : order.subList(0, Math.min(n, order.size()))) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("round", i + 1);
            r.put("ms", BenchStats.round2(phases.get(i)[4]));
            for (int k = 0; k < phaseNames.length; k++) {
                r.put(phaseNames[k], BenchStats.round2(phases.get(i)[k]));
            }
            Map<String, Object> c = new LinkedHashMap<>();
            for (int g = 0; g < GROUPS.length; g++) {
                c.put(GROUPS[g], BenchStats.round2(cpu.get(i)[g]));
            }
            c.put("process", BenchStats.round2(cpu.get(i)[GROUPS.length]));
            r.put("cpuMs", c);
            r.put("gcCollections", (long) cpu.get(i)[GROUPS.length + 1]);
            r.put("gcMs", (long) cpu.get(i)[GROUPS.length + 2]);
            r.put("jitCompilerCpuMs", BenchStats.round2(cpu.get(i)[GROUPS.length + 3]));
            out.add(r);
        }
        return out;
    }

    private static long gcMillis() {
        long sum = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            sum += Math.max(0, gc.getCollectionTime());
        }
        return sum;
    }

    private static long gcCount() {
        long sum = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            sum += Math.max(0, gc.getCollectionCount());
        }
        return sum;
    }

    private static double median(List<double[]> rows, int column) {
        List<Double> values = new ArrayList<>();
        for (double[] r : rows) {
            values.add(r[column]);
        }
        return values.isEmpty() ? 0 : BenchStats.round2(BenchStats.median(values));
    }

    private long[] cpuByGroup() {
        long[] sums = new long[GROUPS.length];
        long[] ids = threads.getAllThreadIds();
        ThreadInfo[] infos = threads.getThreadInfo(ids);
        for (int i = 0; i < ids.length; i++) {
            if (infos[i] == null) {
                continue;
            }
            long t = threads.getThreadCpuTime(ids[i]);
            if (t > 0) {
                sums[group(infos[i].getThreadName())] += t;
            }
        }
        return sums;
    }

    private static int group(String name) {
        if (name.startsWith("cairn-coordinator-loop")) {
            return 0;
        }
        if (name.startsWith("cairn-coordinator-io")) {
            return 1;
        }
        if (name.startsWith("grpc-")) {
            return 2;
        }
        if (name.startsWith("bench-sim")) {
            return 3;
        }
        return 4;
    }
}
