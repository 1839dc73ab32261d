package dev.cairn.agent.sidecar;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.AgentException;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code cairn agent --coordinator HOST:PORT --run-id RUN --rank I --world N --socket PATH
 * [--token T] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--staging-mib M] [--parent-pid PID]
 * [--storage URI] [--shm-dir DIR]}: runs the
 * sidecar until its trainer disconnects. Exit codes: 0 after a clean stop, 2 for bad arguments or
 * a coordinator that refuses the worker, 1 for other failures to start. The token may also come from
 * {@code CAIRN_TOKEN}.
 */
public final class SidecarMain {
    private static final Set<String> OPTIONS = Set.of("--coordinator", "--run-id", "--rank", "--world", "--socket", "--token",
            "--tls-ca", "--tls-cert", "--tls-key", "--staging-mib", "--parent-pid", "--storage", "--shm-dir", "--metrics-port", "--pause-at");

    static final String USAGE = String.join("\n",
            "Usage: cairn agent --coordinator HOST:PORT --run-id RUN --rank I --world N --socket PATH",
            "                   [--token T] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]",
            "                   [--staging-mib M] [--parent-pid PID] [--storage URI] [--shm-dir DIR] [--metrics-port P]",
            "Runs the local sidecar agent of one non-JVM trainer (see docs/sidecar-protocol.md).",
            "      --coordinator HOST:PORT  the coordinator",
            "      --run-id RUN             the run to join",
            "      --rank I                 this trainer's worker index",
            "      --world N                number of workers",
            "      --socket PATH            the Unix socket to serve (mode 0600)",
            "      --token T                shared secret (or CAIRN_TOKEN)",
            "      --tls-ca FILE            connect with TLS, trusting the CA certificate(s) in this PEM file",
            "      --tls-cert FILE          client certificate (PEM) for a coordinator requiring mutual TLS",
            "      --tls-key FILE           its private key (PKCS#8 PEM)",
            "      --staging-mib M          size of the shared staging file, 1..2047 (default 1024)",
            "      --parent-pid PID         exit when this process ends",
            "      --storage URI            storage root instead of the coordinator's",
            "      --shm-dir DIR            where the shared file is created (default /dev/shm)",
            "      --metrics-port P         serve Prometheus metrics at http://0.0.0.0:P/metrics");

    private SidecarMain() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Parses {@code args}, runs the sidecar until it stops, and returns the exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (java.util.Arrays.asList(args).contains("--help") || java.util.Arrays.asList(args).contains("-h")) {
            out.println(USAGE);
            return 0;
        }
        Sidecar.Options options;
        int metricsPort;
        try {
            options = parse(args, System.getenv("CAIRN_TOKEN"), out);
            metricsPort = metricsPort(args);
        } catch (IllegalArgumentException e) {
            err.println("cairn: error: " + e.getMessage());
            return 2;
        }
        Sidecar sidecar;
        try {
            sidecar = Sidecar.start(options, line -> {
                out.println(line);
                out.flush();
            });
        } catch (AgentException e) {
            err.println((e.badInput() ? "cairn: error: " : "cairn: failed: ") + e.getMessage());
            return e.badInput() ? 2 : 1;
        } catch (IOException | RuntimeException e) {
            err.println("cairn: failed: could not start the sidecar: " + e);
            return 1;
        }
        HTTPServer metrics = null;
        if (metricsPort > 0) {
            try {
                metrics = HTTPServer.builder().port(metricsPort).registry(sidecar.metrics()).buildAndStart();
            } catch (IOException e) {
                sidecar.close();
                err.println("cairn: error: --metrics-port " + metricsPort + ": cannot serve metrics: " + e.getMessage());
                return 2;
            }
        }
        try {
            return sidecar.serve();
        } finally {
            if (metrics != null) {
                metrics.close();
            }
        }
    }

    /** The value of {@code --metrics-port}, or 0 when absent. */
    static int metricsPort(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String value = args[i].startsWith("--metrics-port=") ? args[i].substring("--metrics-port=".length())
                    : args[i].equals("--metrics-port") && i + 1 < args.length ? args[i + 1] : null;
            if (value != null) {
                try {
                    int port = Integer.parseInt(value);
                    if (port >= 1 && port <= 65535) {
                        return port;
                    }
                } catch (NumberFormatException e) {
                    // below
                }
                throw new IllegalArgumentException("--metrics-port must be a port 1..65535, was '" + value + "'");
            }
        }
        return 0;
    }

    static Sidecar.Options parse(String[] args, String envToken, PrintStream out) {
        Map<String, String> v = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String value;
            int eq = a.indexOf('=');
            if (eq > 0) {
                value = a.substring(eq + 1);
                a = a.substring(0, eq);
            } else {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option " + a + " needs a value");
                }
                value = args[++i];
            }
            if (!OPTIONS.contains(a)) {
                throw new IllegalArgumentException("unknown option '" + a + "' (see docs/sidecar-protocol.md)");
            }
            v.put(a, value);
        }
        for (String required : new String[] {"--coordinator", "--run-id", "--rank", "--world", "--socket"}) {
            if (!v.containsKey(required)) {
                throw new IllegalArgumentException("missing required option " + required);
            }
        }
        long stagingMib = number(v, "--staging-mib", 1024);
        if (stagingMib < 1 || stagingMib > 2047) {
            throw new IllegalArgumentException("--staging-mib must be 1..2047, was " + stagingMib);
        }
        String token = v.getOrDefault("--token", envToken == null ? "" : envToken);
        // the agent's own staging (the copy the upload streams from) is bounded; a larger save streams through it
        long agentStaging = Math.max(8L << 20, Math.min(stagingMib << 20, 256L << 20));
        AgentConfig agent = AgentConfig.builder(v.get("--coordinator"), v.get("--run-id"),
                        (int) number(v, "--rank", 0), (int) number(v, "--world", 0))
                .token(token)
                .tlsCa(path(v, "--tls-ca"))
                .tlsClientCert(path(v, "--tls-cert"), path(v, "--tls-key"))
                .stagingBytes(agentStaging)
                .storageOverride(v.get("--storage"))
                .hooks(PauseHook.parse(v.get("--pause-at"), out)) // a test hook; not in the usage
                .build();
        return new Sidecar.Options(agent, Path.of(v.get("--socket")), stagingMib << 20, number(v, "--parent-pid", 0),
                Path.of(v.getOrDefault("--shm-dir", "/dev/shm")), Duration.ofSeconds(60));
    }

    private static Path path(Map<String, String> v, String option) {
        String s = v.get(option);
        return s == null ? null : Path.of(s);
    }

    private static long number(Map<String, String> v, String option, long otherwise) {
        String s = v.get(option);
        if (s == null) {
            return otherwise;
        }
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " must be a whole number, was '" + s + "'");
        }
    }
}
