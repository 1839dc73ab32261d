package dev.cairn.testkit;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;

/**
 * A {@code cairn} subcommand running in its own JVM (a coordinator or a toy worker), for the demo,
 * chaos campaigns and integration tests. It collects the {@code EVENT} lines the process prints and
 * lets callers wait for one — no sleeping. {@link #kill()} is a real SIGKILL.
 */
public final class ClusterProcess implements AutoCloseable {
    /** The {@code cairn} command's main class, run from the current class path (the fat jar, or a test's class path). */
    static final String CAIRN_MAIN = "dev.cairn.cli.Main";

    /** One {@code EVENT kind k=v ...} line. */
    public record Event(String kind, Map<String, String> fields) {
        public String get(String key) {
            return fields.get(key);
        }

        public long getLong(String key) {
            return Long.parseLong(fields.get(key));
        }
    }

    /**
     * Prints one {@code EVENT kind k=v ...} line on stdout: how a process started by
     * {@link #start} tells its parent what happened (values must not contain spaces).
     */
    public static synchronized void emit(String kind, Object... kv) {
        StringBuilder b = new StringBuilder("EVENT ").append(kind);
        for (int i = 0; i + 1 < kv.length; i += 2) {
            b.append(' ').append(kv[i]).append('=').append(kv[i + 1]);
        }
        System.out.println(b);
        System.out.flush();
    }

    private final String name;
    private final Process process;
    private final List<Event> events = new ArrayList<>();
    private final Thread reader;

    private ClusterProcess(String name, Process process) {
        this.name = name;
        this.process = process;
        this.reader = new Thread(this::readEvents, "events-" + name);
        this.reader.setDaemon(true);
        this.reader.start();
    }

    /**
     * Starts {@code cairn <args>} in a new JVM with the current class path, a small heap, and its
     * stderr appended to {@code log}.
     */
    public static ClusterProcess start(String name, Path log, String heap, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx" + heap);
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-Xss512k");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(CAIRN_MAIN);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectInput(ProcessBuilder.Redirect.PIPE);
        return new ClusterProcess(name, pb.start());
    }

    private void readEvents() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (!line.startsWith("EVENT ")) {
                    continue;
                }
                String[] parts = line.substring(6).trim().split(" ");
                Map<String, String> fields = new LinkedHashMap<>();
                for (int i = 1; i < parts.length; i++) {
                    int eq = parts[i].indexOf('=');
                    if (eq > 0) {
                        fields.put(parts[i].substring(0, eq), parts[i].substring(eq + 1));
                    }
                }
                synchronized (events) {
                    events.add(new Event(parts[0], fields));
                    events.notifyAll();
                }
            }
        } catch (IOException e) {
            // process ended
        } finally {
            synchronized (events) {
                events.notifyAll();
            }
        }
    }

    public String name() {
        return name;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Events seen so far. */
    public List<Event> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    /**
     * Waits for an event of {@code kind} matching {@code match}.
     *
     * @throws TimeoutException naming the process and what it printed, when none comes in time or
     *     the process ends first
     */
    public Event await(String kind, Predicate<Event> match, Duration timeout) throws TimeoutException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (events) {
            while (true) {
                for (Event e : events) {
                    if (e.kind().equals(kind) && match.test(e)) {
                        return e;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0 || (!process.isAlive() && !reader.isAlive())) {
                    throw new TimeoutException(name + " printed no '" + kind + "' event in time"
                            + (process.isAlive() ? "" : " (exited " + process.exitValue() + ")") + "; events: " + events);
                }
                events.wait(Math.max(1, Math.min(left / 1_000_000, 500)));
            }
        }
    }

    /** How many events were seen so far: a mark for {@link #awaitAfter}. */
    public int eventCount() {
        synchronized (events) {
            return events.size();
        }
    }

    /** Like {@link #await}, ignoring the first {@code mark} events (those seen before a mark taken with {@link #eventCount}). */
    public Event awaitAfter(int mark, String kind, Predicate<Event> match, Duration timeout) throws TimeoutException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (events) {
            while (true) {
                for (int i = mark; i < events.size(); i++) {
                    Event e = events.get(i);
                    if (e.kind().equals(kind) && match.test(e)) {
                        return e;
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0 || (!process.isAlive() && !reader.isAlive())) {
                    throw new TimeoutException(name + " printed no '" + kind + "' event in time"
                            + (process.isAlive() ? "" : " (exited " + process.exitValue() + ")") + "; recent events: "
                            + events.subList(Math.max(mark, events.size() - 10), events.size()));
                }
                events.wait(Math.max(1, Math.min(left / 1_000_000, 500)));
            }
        }
    }

    public Event await(String kind, Duration timeout) throws TimeoutException, InterruptedException {
        return await(kind, e -> true, timeout);
    }

    /** Writes one line to the process's stdin (a held toy worker resumes on it). */
    public void send(String line) throws IOException {
        var in = process.getOutputStream();
        in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        in.flush();
    }

    /** SIGKILL. (Through the process handle: {@link Process#destroy} would also close our end of its stdout.) */
    public void kill() {
        process.toHandle().destroyForcibly();
    }

    /** SIGTERM (a preemption notice for a worker, a clean stop for a coordinator); its later events are still read. */
    public void terminate() {
        process.toHandle().destroy();
    }

    /** SIGSTOP / SIGCONT: a process that stalls without closing its connections. */
    public void pause(boolean paused) throws IOException, InterruptedException {
        new ProcessBuilder("kill", paused ? "-STOP" : "-CONT", Long.toString(process.pid())).inheritIO().start().waitFor();
    }

    /** Waits for the exit and returns the exit code. */
    public int waitFor(Duration timeout) throws TimeoutException, InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new TimeoutException(name + " did not exit within " + timeout.toSeconds() + " s; events: " + events());
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
