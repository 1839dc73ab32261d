package dev.cairn.agent.sidecar;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class SidecarMainTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        return SidecarMain.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Test
    void helpNamesEveryOptionOnStdout() {
        assertThat(run("--help")).isZero();
        assertThat(out.toString(StandardCharsets.UTF_8)).contains("--socket PATH", "--parent-pid", "--staging-mib");
    }

    @Test
    void badArgumentsAreOneLineErrorsWithExitTwo() {
        assertThat(run("--coordinator", "h:1", "--run-id", "r", "--rank", "0", "--world", "1")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("cairn: error: missing required option --socket\n");
        err.reset();
        assertThat(run("--coordinator", "h:1", "--run-id", "r", "--rank", "3", "--world", "2", "--socket", "/tmp/s")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).startsWith("cairn: error: worker index 3 is outside the world size 2");
        err.reset();
        assertThat(run("--staging-mib", "4096", "--coordinator", "h:1", "--run-id", "r", "--rank", "0", "--world", "1", "--socket", "/s"))
                .isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--staging-mib must be 1..2047");
        err.reset();
        assertThat(run("--bogus", "1")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown option '--bogus'");
    }
}
