package dev.cairn.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;
import me.tongfei.progressbar.InteractiveConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of long work (restore, verify) on stderr: a progress bar (bytes, rate, ETA) when stderr
 * is a terminal, a plain line every few seconds otherwise, nothing with {@code --quiet}. Never on
 * stdout, so {@code --json} output stays one object. Single-threaded use.
 */
abstract class Progress implements AutoCloseable {
    static final Duration PLAIN_INTERVAL = Duration.ofSeconds(5);

    /** Counts {@code bytes} more as done. */
    abstract void add(long bytes);

    @Override
    public abstract void close();

    /** The progress display for {@code task} over {@code totalBytes}, chosen by where stderr goes. */
    static Progress start(String task, long totalBytes, boolean quiet) {
        if (quiet) {
            return none();
        }
        if (stderrIsTerminal()) {
            return new Bar(task, totalBytes);
        }
        return new Lines(task, totalBytes, System.err, System::nanoTime, PLAIN_INTERVAL);
    }

    static Progress none() {
        return new Progress() {
            @Override
            void add(long bytes) {}

            @Override
            public void close() {}
        };
    }

    /** Linux: is fd 2 a terminal device? Elsewhere: whether the JVM has a console at all. */
    static boolean stderrIsTerminal() {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (Exception e) {
            return System.console() != null;
        }
    }

    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    private static final class Bar extends Progress {
        private final ProgressBar bar;

        Bar(String task, long totalBytes) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(Math.max(1, totalBytes / (1 << 20)))
                    .setUnit(" MiB", 1).setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK).showSpeed()
                    .setConsumer(new InteractiveConsoleProgressBarConsumer(System.err)).setUpdateIntervalMillis(250).build();
        }

        private long done;

        @Override
        void add(long bytes) {
            long before = done >> 20;
            done += bytes;
            bar.stepBy((done >> 20) - before);
        }

        @Override
        public void close() {
            bar.close();
        }
    }

    /** A line every {@code interval}: done, total, percent, rate and ETA. */
    static final class Lines extends Progress {
        private final String task;
        private final long total;
        private final PrintStream out;
        private final LongSupplier nanos;
        private final long intervalNanos;
        private final long startNanos;
        private long lastPrintNanos;
        private long done;

        Lines(String task, long totalBytes, PrintStream out, LongSupplier nanos, Duration interval) {
            this.task = task;
            this.total = totalBytes;
            this.out = out;
            this.nanos = nanos;
            this.intervalNanos = interval.toNanos();
            this.startNanos = nanos.getAsLong();
            this.lastPrintNanos = startNanos;
        }

        @Override
        void add(long bytes) {
            done += bytes;
            long now = nanos.getAsLong();
            if (now - lastPrintNanos >= intervalNanos) {
                lastPrintNanos = now;
                out.println(line(now));
            }
        }

        String line(long now) {
            double seconds = Math.max(1e-9, (now - startNanos) / 1e9);
            double rate = done / seconds;
            String eta = rate <= 0 || done >= total ? "-" : Math.round((total - done) / rate) + " s";
            return String.format(Locale.ROOT, "cairn: %s: %s of %s (%d%%), %s/s, ETA %s", task, bytes(done), bytes(total),
                    total == 0 ? 100 : Math.min(100, done * 100 / total), bytes((long) rate), eta);
        }

        @Override
        public void close() {}
    }
}
