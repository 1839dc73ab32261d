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

    @Test
    void aBadTlsFileIsNamedWithExitTwo() {
        assertThat(run("--help")).isZero();
        assertThat(out.toString(StandardCharsets.UTF_8)).contains("--tls-ca FILE", "--tls-cert FILE", "--tls-key FILE");
        assertThat(run("--coordinator", "h:1", "--run-id", "r", "--rank", "0", "--world", "1", "--socket", "/tmp/s",
                "--tls-ca", "/nonexistent/ca.pem")).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("cairn: error: TLS CA certificate file /nonexistent/ca.pem does not exist\n");
    }

    @Test
    void aBadPauseAtIsAnErrorNamingThePhases() {
        assertThat(run("--coordinator", "h:1", "--run-id", "r", "--rank", "0", "--world", "1", "--socket", "/s", "--pause-at", "UPLOAD@3"))
                .isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).startsWith("cairn: error: --pause-at must be PHASE@STEP with PHASE one of [")
                .contains("UPLOAD_HALFWAY").contains("was 'UPLOAD@3'");
    }

    @Test
    void thePauseHookPrintsItsEventAndHoldsOnlyItsPhaseAndStep() throws Exception {
        java.util.concurrent.CountDownLatch printed = new java.util.concurrent.CountDownLatch(1);
        PrintStream events = new PrintStream(new java.io.FilterOutputStream(out) {
            @Override
            public void flush() {
                printed.countDown();
            }
        }, false, StandardCharsets.UTF_8);
        dev.cairn.agent.AgentHooks hook = PauseHook.parse("upload_halfway@7", events);
        hook.onPhase(dev.cairn.agent.AgentHooks.Phase.UPLOAD_HALFWAY, 6);
        hook.onPhase(dev.cairn.agent.AgentHooks.Phase.SHARD_DURABLE, 7);
        assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
        Thread held = new Thread(() -> hook.onPhase(dev.cairn.agent.AgentHooks.Phase.UPLOAD_HALFWAY, 7));
        held.start();
        assertThat(printed.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("EVENT paused phase=UPLOAD_HALFWAY step=7\n");
        assertThat(held.isAlive()).isTrue();
        held.interrupt();
        held.join(10_000);
        assertThat(held.isAlive()).isFalse();
        assertThat(PauseHook.parse(null, System.out)).isSameAs(dev.cairn.agent.AgentHooks.NONE);
    }
}
