package dev.cairn.cli;

import dev.cairn.testkit.ClusterProcess;
import dev.cairn.cli.logging.Logging;
import dev.cairn.coordinator.Coordinator;
import dev.cairn.coordinator.CoordinatorConfig;
import dev.cairn.coordinator.CoordinatorLease;
import dev.cairn.harness.PauseAtHook;
import dev.cairn.harness.ShardLosingStore;
import dev.cairn.storage.StorageUri;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "coordinator", description = "Run the coordinator (the chief) of one training run until SIGTERM or SIGINT.")
final class CoordinatorCommand implements Callable<Integer> {
    /** Exit code of a coordinator that lost its storage root's lease to another one. */
    static final int DEPOSED_EXIT = 3;

    @Mixin
    StorageOption storage;

    @Mixin
    RetentionOptions retention;

    @Option(names = "--config", paramLabel = "FILE",
            description = "Read options from FILE: a .properties file or a flat .json object whose keys are the long options "
                    + "without the dashes (world=4, storage=s3://..., save-every-seconds=600). Options on the command line win.")
    Path config;

    @Option(names = "--world", required = true, paramLabel = "N", description = "Number of workers.")
    int world;

    @Option(names = "--run-id", paramLabel = "ID", description = "Run id the workers must present (default: the storage root's last path segment).")
    String runId;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "7400", description = "Port to listen on; 0 picks a free one (default ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--metrics-port", paramLabel = "P",
            description = "Serve Prometheus metrics at http://HOST:P/metrics (same --host; default: none).")
    Integer metricsPort;

    @Option(names = "--port-file", paramLabel = "FILE", description = "Write the port listened on to FILE once serving.")
    Path portFile;

    @Option(names = "--save-every-steps", paramLabel = "K", defaultValue = "0", description = "Step policy: save at every multiple of K (0: off).")
    long saveEverySteps;

    @Option(names = "--save-every-seconds", paramLabel = "S", defaultValue = "0", description = "Time policy: save about every S seconds (0: off).")
    long saveEverySeconds;

    @Option(names = "--heartbeat-timeout-ms", defaultValue = "6000", description = "A worker silent this long is lost (default ${DEFAULT-VALUE}).")
    long heartbeatTimeoutMs;

    @Option(names = "--barrier-timeout-s", defaultValue = "60", description = "Abort a save whose barrier is not complete after this (default ${DEFAULT-VALUE}).")
    long barrierTimeoutS;

    @Option(names = "--upload-timeout-s", defaultValue = "1800", description = "Abort a save whose shards are not all durable after this (default ${DEFAULT-VALUE}).")
    long uploadTimeoutS;

    @Option(names = "--pause-at", hidden = true, paramLabel = "PHASE@STEP",
            description = "Chaos campaigns: block forever at this save moment (to be killed there).")
    String pauseAt;

    @Option(names = "--unsafe-commit-before-durable", hidden = true,
            description = "Chaos checker self-test only: lose one shard of every save right before its manifest is committed (deliberately broken store).")
    boolean unsafeCommitBeforeDurable;

    @Option(names = "--token", description = "Shared secret workers (in their join) and admin calls (status, trigger) must present "
            + "(default: \\$CAIRN_TOKEN or none; prefer the variable: a command line is visible to every user of the machine).")
    String token;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "Serve TLS with this certificate chain (PEM); with --tls-key.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "The certificate's private key (PKCS#8 PEM: BEGIN PRIVATE KEY).")
    Path tlsKey;

    @Option(names = "--tls-client-ca", paramLabel = "FILE", description = "Mutual TLS: accept only clients with a certificate signed by a CA in this PEM file.")
    Path tlsClientCa;

    @Option(names = "--lease-seconds", defaultValue = "30", paramLabel = "S",
            description = "The storage root's lease: renewed every S/3 seconds; another coordinator may take the root S seconds after the last renewal (default ${DEFAULT-VALUE}).")
    long leaseSeconds;

    @Option(names = "--force", description = "Take the storage root over even while another coordinator's lease is live; "
            + "that coordinator can then neither commit nor delete and stops.")
    boolean force;

    @Override
    public Integer call() throws Exception {
        if (leaseSeconds < 1 || leaseSeconds > 3600) {
            throw new UserError("--lease-seconds must be between 1 and 3600, was " + leaseSeconds);
        }
        StorageUri uri = StorageUri.parse(storage.storage);
        if (port < 0 || port > 65535) {
            throw new UserError("--port must be between 0 and 65535, was " + port);
        }
        String run = runId != null ? runId : defaultRunId(uri);
        Logging.setRunId(run);
        // before anything touches storage: a taken port must not leave a new, empty root behind
        checkCanListen("--port", host, port);
        if (metricsPort != null) {
            if (metricsPort < 1 || metricsPort > 65535) {
                throw new UserError("--metrics-port must be between 1 and 65535, was " + metricsPort);
            }
            checkCanListen("--metrics-port", host, metricsPort);
        }
        CoordinatorConfig config = CoordinatorConfig.builder(run, world, uri)
                .saveEverySteps(saveEverySteps)
                .saveEvery(Duration.ofSeconds(saveEverySeconds))
                .heartbeatTimeout(Duration.ofMillis(heartbeatTimeoutMs))
                .barrierTimeout(Duration.ofSeconds(barrierTimeoutS))
                .uploadTimeout(Duration.ofSeconds(uploadTimeoutS))
                .retention(retention.policy())
                .token(token != null ? token : System.getenv().getOrDefault("CAIRN_TOKEN", ""))
                .tls(tlsCert, tlsKey, tlsClientCa)
                .hooks(PauseAtHook.parse(pauseAt))
                .storeDecorator(unsafeCommitBeforeDurable ? ShardLosingStore::new : UnaryOperator.identity())
                .lease(Duration.ofSeconds(leaseSeconds))
                .forceTakeover(force)
                .build();
        Coordinator coordinator;
        try {
            coordinator = Coordinator.start(config, host, port);
        } catch (CoordinatorLease.LeaseHeldException e) {
            throw new UserError(e.getMessage());
        }
        HTTPServer metrics = null;
        if (metricsPort != null) {
            try {
                metrics = HTTPServer.builder().hostname(host).port(metricsPort).registry(coordinator.metrics()).buildAndStart();
            } catch (IOException e) {
                coordinator.close();
                throw new UserError("--metrics-port " + metricsPort + ": cannot serve metrics on " + host + ": " + e.getMessage());
            }
        }
        HTTPServer metricsServer = metrics;
        // save outcomes as events, with the wall-clock time, so a chaos campaign can time detection
        coordinator.addListener(r -> ClusterProcess.emit("save", "step", r.step(), "saveId", r.saveId().isEmpty() ? "-" : r.saveId(),
                "outcome", r.outcome(), "atMs", System.currentTimeMillis()));
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean deposed = new AtomicBoolean();
        coordinator.deposition().thenAccept(reason -> {
            ClusterProcess.emit("deposed", "epoch", coordinator.epoch());
            System.err.println("cairn: error: " + reason);
            deposed.set(true);
            stopped.countDown();
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (metricsServer != null) {
                metricsServer.close();
            }
            coordinator.close();
            stopped.countDown();
        }, "cairn-coordinator-shutdown"));
        if (portFile != null) {
            Path tmp = portFile.resolveSibling(portFile.getFileName() + ".tmp");
            Files.writeString(tmp, Integer.toString(coordinator.port()), StandardCharsets.UTF_8);
            Files.move(tmp, portFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        ClusterProcess.emit("listening", "host", host, "port", coordinator.port(), "run", run, "world", world, "storage", uri);
        stopped.await();
        return deposed.get() ? DEPOSED_EXIT : 0;
    }

    /** Fails with a message naming {@code --host}/{@code --port} when the address cannot be bound. */
    static void checkCanListen(String option, String host, int port) {
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new UserError("--host '" + host + "' is not an address of this machine (use an IP address, a host name, or 0.0.0.0 for all)");
        }
        if (port == 0) {
            return;
        }
        try (ServerSocket probe = new ServerSocket()) {
            probe.setReuseAddress(true);
            probe.bind(new InetSocketAddress(address, port));
        } catch (BindException e) {
            throw new UserError(option + " " + port + ": " + host + ":" + port + " is already in use or not available ("
                    + e.getMessage() + "); stop what listens there or pick another " + option
                    + (option.equals("--port") ? " (0 picks a free one)" : ""));
        } catch (IOException e) {
            throw new UserError("--host " + host + " " + option + " " + port + ": cannot listen there: " + e.getMessage());
        }
    }

    static String defaultRunId(StorageUri uri) {
        String p = uri.path();
        String last = p.substring(p.lastIndexOf('/') + 1);
        return last.isEmpty() ? "default" : last;
    }
}
