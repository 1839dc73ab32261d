package dev.cairn.cli;

import static dev.cairn.cli.CliRun.cairn;
import static org.assertj.core.api.Assertions.assertThat;

import dev.cairn.cli.CliRun.Result;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Errors that say what to do: one line, exit 2, naming the option to change, nothing created on storage. */
class OperatorErrorsTest {
    @TempDir
    Path tmp;

    private static void assertOneErrorLine(Result r, String... mentions) {
        assertThat(r.exit()).as("exit code; stderr: %s", r.err()).isEqualTo(2);
        assertThat(r.err().strip().lines()).as("stderr: %s", r.err()).singleElement().satisfies(line -> {
            assertThat(line).startsWith("cairn: error: ");
            for (String m : mentions) {
                assertThat(line).contains(m);
            }
        });
    }

    @Test
    void aPortInUseNamesPortAndCreatesNothing() throws Exception {
        Path root = tmp.resolve("new-root");
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();

            Result r = cairn("coordinator", "--storage", root.toString(), "--world", "1", "--port", Integer.toString(port));

            assertOneErrorLine(r, "--port " + port, "already in use");
        }
        assertThat(root).doesNotExist();
    }

    @Test
    void anUnknownHostNamesHost() {
        Path root = tmp.resolve("new-root");

        Result r = cairn("coordinator", "--storage", root.toString(), "--world", "1", "--host", "no-such-host.invalid", "--port", "0");

        assertOneErrorLine(r, "--host 'no-such-host.invalid'");
        assertThat(root).doesNotExist();
    }

    @Test
    void probingAFreePortLeavesItFree() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        CoordinatorCommand.checkCanListen("--port", "127.0.0.1", port);
        try (ServerSocket again = new ServerSocket()) {
            again.bind(new InetSocketAddress("127.0.0.1", port));
            assertThat(again.isBound()).isTrue();
        }
    }
}
