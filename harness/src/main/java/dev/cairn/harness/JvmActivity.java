package dev.cairn.harness;

import java.io.File;
import java.io.IOException;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongSupplier;

/**
 * What the JVM itself does beside the code a figure times — the JIT compilers above all — read from
 * Linux's {@code /proc/self/task}, which, unlike Java's thread list, has the JVM's own threads
 * (compilers, GC, VM thread). Elsewhere the compilers' activity falls back to the JVM's total
 * compilation time, which grows only when a compile ends.
 */
final class JvmActivity {
    private static final File TASKS = new File("/proc/self/task");
    /** Thread id to name, for the compiler threads' lookup (names do not change). */
    private static final Map<String, String> NAMES = new HashMap<>();
    /** Reads of the compiler threads' CPU the first wait makes before it waits (see {@link #warmUpOnce}). */
    private static final int WARM_UP_READS = 5_000;
    private static boolean warmed;

    private JvmActivity() {}

    /**
     * CPU nanos of this process's threads summed by name (digits dropped, so pools add up), from
     * {@code /proc/self/task/<tid>/schedstat}. Empty where there is no such directory.
     */
    static Map<String, Long> threadCpu() {
        Map<String, Long> out = new TreeMap<>();
        File[] tasks = TASKS.listFiles();
        if (tasks == null) {
            return out;
        }
        for (File t : tasks) {
            try {
                String comm = Files.readString(t.toPath().resolve("comm")).trim();
                out.merge(comm.replaceAll("\\d+", "#"), schedNanos(t), Long::sum);
            } catch (IOException | RuntimeException e) {
                // the thread ended meanwhile
            }
        }
        return out;
    }

    /**
     * CPU nanos the JIT's compiler threads have used so far ({@code C1 CompilerThread…}, {@code C2
     * CompilerThread…}), or -1 where {@code /proc/self/task} is not there. Compiler threads come
     * and go (HotSpot starts and stops them with the queue), so a total can drop; callers compare
     * successive readings for any change.
     */
    static synchronized long compilerCpuNanos() {
        File[] tasks = TASKS.listFiles();
        if (tasks == null) {
            return -1;
        }
        long sum = 0;
        Set<String> live = new HashSet<>();
        for (File t : tasks) {
            live.add(t.getName());
            try {
                String name = NAMES.get(t.getName());
                if (name == null) {
                    name = Files.readString(t.toPath().resolve("comm")).trim();
                    NAMES.put(t.getName(), name);
                }
                if (name.startsWith("C1 Compiler") || name.startsWith("C2 Compiler")) {
                    sum += schedNanos(t);
                }
            } catch (IOException | RuntimeException e) {
                // the thread ended meanwhile
            }
        }
        NAMES.keySet().retainAll(live);
        return sum;
    }

    private static long schedNanos(File task) throws IOException {
        return Long.parseLong(Files.readString(task.toPath().resolve("schedstat")).trim().split(" ")[0]);
    }

    /**
     * The first time: reads the compiler threads' CPU {@value #WARM_UP_READS} times in a row, so
     * that the wait's own polling (directory listing, file reads, parsing) is compiled before any
     * timed window instead of inside one (PrintCompilation showed C2 compiles of
     * {@code ChannelInputStream.read} and {@code Files.readString} landing in the stalls the wait
     * preceded). Returns whether {@code /proc/self/task} is there.
     */
    private static synchronized boolean warmUpOnce() {
        boolean proc = compilerCpuNanos() >= 0;
        if (proc && !warmed) {
            for (int i = 0; i < WARM_UP_READS; i++) {
                compilerCpuNanos();
            }
        }
        warmed = true;
        return proc;
    }

    /**
     * Waits until the JIT has compiled nothing for {@code quietMillis} (at most 3 s; no wait for 0).
     * Compilation is asynchronous: code that a figure's warm-up or the bench's other phases made hot
     * is compiled later, and on 2 cores the compiler threads then took 2–77 ms of CPU inside a timed
     * ~85 ms copy ({@code --phases}), and C2 compiles of gRPC's and Netty's inlined paths take
     * 0.5–1.7 s each. "Nothing" is read from the compiler threads' CPU (every 10 ms), so a long
     * compile in progress is not mistaken for quiet, as the JVM's total compilation time (which
     * grows when a compile ends) would let it be.
     */
    static void awaitJitQuiet(int quietMillis) throws InterruptedException {
        if (quietMillis <= 0) {
            return;
        }
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        LongSupplier activity;
        if (warmUpOnce()) {
            activity = JvmActivity::compilerCpuNanos;
        } else if (jit != null && jit.isCompilationTimeMonitoringSupported()) {
            activity = jit::getTotalCompilationTime;
        } else {
            return;
        }
        long deadline = System.nanoTime() + 3_000_000_000L;
        long seen = activity.getAsLong();
        long quietSince = System.nanoTime();
        while (System.nanoTime() < deadline) {
            Thread.sleep(10);
            long now = activity.getAsLong();
            if (now != seen) {
                seen = now;
                quietSince = System.nanoTime();
            } else if (System.nanoTime() - quietSince >= quietMillis * 1_000_000L) {
                return;
            }
        }
    }
}
