package dev.cairn.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {
    @Test
    void plainLinesComeOncePerIntervalWithBytesRateAndEta() {
        AtomicLong nanos = new AtomicLong(1_000_000_000L);
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
        long mib = 1 << 20;
        Progress.Lines p = new Progress.Lines("restore step 30", 100 * mib, out, nanos::get, Duration.ofSeconds(5));

        p.add(10 * mib);
        nanos.addAndGet(Duration.ofSeconds(4).toNanos());
        p.add(10 * mib);
        assertThat(buf.toString(StandardCharsets.UTF_8)).as("nothing before the interval").isEmpty();

        nanos.addAndGet(Duration.ofSeconds(1).toNanos());
        p.add(5 * mib);
        nanos.addAndGet(Duration.ofSeconds(1).toNanos());
        p.add(5 * mib);

        // 25 MiB in 5 s: 5 MiB/s, 75 MiB left: 15 s
        assertThat(buf.toString(StandardCharsets.UTF_8).lines()).containsExactly(
                "cairn: restore step 30: 25.0 MiB of 100.0 MiB (25%), 5.0 MiB/s, ETA 15 s");
    }

    @Test
    void quietIsSilentAndSizesAreReadable() {
        try (Progress p = Progress.start("verify", 10, true)) {
            p.add(10);
        }
        assertThat(Progress.bytes(512)).isEqualTo("512 B");
        assertThat(Progress.bytes(3L << 30)).isEqualTo("3.0 GiB");
    }

    @Test
    void underMavenStderrIsNotATerminal() {
        assertThat(Progress.stderrIsTerminal()).isFalse();
    }
}
