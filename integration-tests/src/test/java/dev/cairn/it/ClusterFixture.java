package dev.cairn.it;

import dev.cairn.testkit.ClusterProcess;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeoutException;

/** Starts a real coordinator process and real toy-worker processes for integration tests. */
final class ClusterFixture implements AutoCloseable {
    static final Duration TIMEOUT = Duration.ofSeconds(90);

    private final Path logs;
    private final List<ClusterProcess> processes = new ArrayList<>();

    ClusterFixture(Path logs) {
        this.logs = logs;
    }

    /** Starts {@code cairn coordinator} and returns its port once it listens. */
    int startCoordinator(String storageUri, int world, String runId, String... extra) throws IOException, TimeoutException, InterruptedException {
        return startCoordinatorNamed("coordinator", storageUri, world, runId, extra);
    }

    /** {@link #startCoordinator} under another process name (and log file), e.g. a second coordinator. */
    int startCoordinatorNamed(String name, String storageUri, int world, String runId, String... extra)
            throws IOException, TimeoutException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("coordinator", "--storage", storageUri, "--world", Integer.toString(world),
                "--run-id", runId, "--port", "0"));
        args.addAll(List.of(extra));
        ClusterProcess coordinator = track(ClusterProcess.start(name, logs.resolve(name + ".log"), "256m", args));
        return (int) coordinator.await("listening", TIMEOUT).getLong("port");
    }

    ClusterProcess coordinator() {
        return processes.stream().filter(p -> p.name().equals("coordinator")).findFirst().orElseThrow();
    }

    ClusterProcess startWorker(int port, String runId, int index, int world, long steps, String... extra) throws IOException {
        List<String> args = new ArrayList<>(List.of("toy-worker", "--coordinator", "127.0.0.1:" + port, "--run-id", runId,
                "--index", Integer.toString(index), "--world", Integer.toString(world), "--steps", Long.toString(steps),
                "--state-kib", "2048"));
        args.addAll(List.of(extra));
        return track(ClusterProcess.start("worker-" + index, logs.resolve("worker-" + index + "-" + processes.size() + ".log"), "256m", args));
    }

    private ClusterProcess track(ClusterProcess p) {
        processes.add(p);
        return p;
    }

    @Override
    public void close() {
        processes.forEach(ClusterProcess::close);
    }
}
