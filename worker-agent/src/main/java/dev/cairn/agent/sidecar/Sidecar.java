package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.storage.CorruptObjectException;
import dev.cairn.storage.ManifestException;
import dev.cairn.storage.NoSuchObjectException;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code cairn agent}: a Cairn agent serving one local (non-JVM) trainer over a Unix domain socket,
 * with tensor bytes in a shared staging file (see docs/sidecar-protocol.md). It exits when the
 * trainer's connection closes, the trainer sends {@code close}, or the parent process ends, and
 * then deletes the shared file and the socket.
 */
public final class Sidecar implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Sidecar.class);
    static final String VERSION = CairnAgent.VERSION;

    /**
     * The sidecar's settings.
     *
     * @param stagingBytes size of the shared staging file
     * @param parentPid exit when this process ends; ≤ 0 for none
     * @param shmDir where the shared file is created ({@code /dev/shm})
     * @param busyTimeout how long {@code begin_save} waits for staging space before answering Busy
     */
    public record Options(AgentConfig agent, Path socket, long stagingBytes, long parentPid, Path shmDir, Duration busyTimeout) {}

    private final Options options;
    private final SharedStaging staging;
    private final CairnAgent agent;
    private final ServerSocketChannel server;
    private final ExecutorService blocking;
    private final ExecutorService copier;
    private final SaveOps saves;
    private final RestoreOps restores;
    private final Object writeLock = new Object();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private volatile SocketChannel connection;

    private Sidecar(Options options, SharedStaging staging, CairnAgent agent, ServerSocketChannel server) {
        this.options = options;
        this.staging = staging;
        this.agent = agent;
        this.server = server;
        int rank = options.agent().workerIndex();
        this.blocking = Executors.newSingleThreadExecutor(r -> daemon(r, "cairn-sidecar-" + rank));
        this.copier = Executors.newSingleThreadExecutor(r -> daemon(r, "cairn-sidecar-copy-" + rank));
        this.saves = new SaveOps(agent, staging, copier, options.busyTimeout());
        this.restores = new RestoreOps(agent, staging, options.busyTimeout());
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    /**
     * Creates the shared file, joins the coordinator, binds the socket and hands the ready line
     * ({@code EVENT ready socket=… shm=… bytes=…}) to {@code ready}.
     */
    public static Sidecar start(Options options, Consumer<String> ready) throws IOException {
        AgentConfig a = options.agent();
        Path shm = options.shmDir().resolve("cairn-" + a.runId() + "-" + a.workerIndex() + "-" + ProcessHandle.current().pid());
        SharedStaging.sweepStale(options.shmDir());
        SharedStaging staging = SharedStaging.create(shm, options.stagingBytes());
        CairnAgent agent = null;
        try {
            agent = CairnAgent.connect(a);
            Files.deleteIfExists(options.socket());
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(options.socket()));
            Files.setPosixFilePermissions(options.socket(), PosixFilePermissions.fromString("rw-------"));
            Sidecar sidecar = new Sidecar(options, staging, agent, server);
            if (options.parentPid() > 0) {
                ProcessHandle.of(options.parentPid()).ifPresentOrElse(
                        p -> p.onExit().thenRun(() -> sidecar.stop("parent process " + options.parentPid() + " ended")),
                        () -> sidecar.stop("parent process " + options.parentPid() + " is not running"));
            }
            ready.accept("EVENT ready socket=" + options.socket() + " shm=" + shm + " bytes=" + staging.capacity());
            return sidecar;
        } catch (IOException | RuntimeException e) {
            if (agent != null) {
                agent.closeNow();
            }
            staging.close();
            throw e;
        }
    }

    /** Path of the shared staging file. */
    public Path sharedFile() {
        return staging.path();
    }

    /** The agent's Prometheus metrics (stall per save, staging bytes in use, uploads). */
    public io.prometheus.metrics.model.registry.PrometheusRegistry metrics() {
        return agent.metrics();
    }

    /**
     * Serves one trainer connection until it closes (or sends {@code close}), then shuts down.
     * Returns the exit code: 0.
     */
    public int serve() {
        try {
            SocketChannel ch = server.accept();
            connection = ch;
            if (closed.get()) {
                return 0;
            }
            LOG.info("sidecar of worker {}: trainer connected on {}", options.agent().workerIndex(), options.socket());
            while (!closed.get()) {
                JsonNode request;
                try {
                    request = Frames.read(ch);
                } catch (Frames.ProtocolViolation e) {
                    LOG.warn("sidecar of worker {}: protocol violation, closing: {}", options.agent().workerIndex(), e.getMessage());
                    respondError(0, new RequestException("BadRequest", e.getMessage()));
                    break;
                }
                dispatch(request);
            }
        } catch (EOFException e) {
            LOG.info("sidecar of worker {}: trainer connection closed", options.agent().workerIndex());
        } catch (IOException e) {
            if (!closed.get()) {
                LOG.info("sidecar of worker {}: connection ended: {}", options.agent().workerIndex(), e.toString());
            }
        }
        close();
        stopped.join(); // a stop begun on another thread (close op, parent exit) deletes the files first
        return 0;
    }

    private void dispatch(JsonNode request) {
        JsonNode idNode = request.get("id");
        long id = idNode != null && idNode.isIntegralNumber() && idNode.canConvertToLong() ? idNode.asLong() : 0;
        if (id < 1) {
            respondError(0, RequestException.badRequest("'id' must be an integer ≥ 1"));
            return;
        }
        String op = request.path("op").asText("");
        try {
            switch (op) {
                case "hello" -> respond(id, hello(request));
                case "save_due" -> respond(id, Json.object().put("due", agent.isSaveDue(Json.step(request))));
                case "preempt" -> {
                    agent.requestEmergencySave(Json.step(request));
                    respond(id, Json.object());
                }
                case "latest_step" -> {
                    long latest = agent.lastCommittedStep();
                    respond(id, latest < 0 ? Json.object().putNull("step") : Json.object().put("step", latest));
                }
                case "commit_save" -> respond(id, saves.commit(request));
                case "abort_save" -> respond(id, saves.abort(request));
                case "wait_save" -> saves.await(request).whenComplete((fields, err) -> {
                    if (err == null) {
                        respond(id, fields);
                    } else {
                        respondError(id, err);
                    }
                });
                case "begin_save" -> offThread(id, () -> saves.begin(request));
                case "all_steps" -> offThread(id, () -> Json.object().set("steps", Json.array(agent.committedSteps())));
                case "restore_open" -> offThread(id, () -> restores.open(request));
                case "restore_read" -> offThread(id, () -> restores.read(request));
                case "restore_region" -> offThread(id, () -> restores.region(request));
                case "restore_close" -> offThread(id, () -> restores.close(request));
                case "close" -> offThread(id, () -> {
                    saves.drainCopies();
                    agent.close(); // waits for uploads in flight and their commits
                    return Json.object();
                }, () -> daemon(() -> stop("the trainer sent close"), "cairn-sidecar-stop").start());
                default -> throw RequestException.badRequest("unknown op '" + op + "'");
            }
        } catch (Exception e) {
            respondError(id, e);
        }
    }

    private ObjectNode hello(JsonNode request) throws RequestException {
        if (request.path("version").asInt(-1) != 1) {
            throw RequestException.badRequest("protocol version " + request.path("version") + " is not supported (this sidecar speaks 1)");
        }
        long latest = agent.lastCommittedStep();
        ObjectNode r = Json.object()
                .put("run_id", options.agent().runId())
                .put("rank", agent.workerIndex())
                .put("world_size", agent.worldSize())
                .put("save_every_steps", agent.saveEverySteps())
                .put("shm_path", staging.path().toString())
                .put("shm_bytes", staging.capacity())
                .put("sidecar_version", VERSION);
        if (latest < 0) {
            r.putNull("latest");
        } else {
            r.set("latest", Json.object().put("step", latest));
        }
        return r;
    }

    /** A request whose work may block: run on the sidecar's blocking thread, answered when done. */
    private void offThread(long id, Json.Op work) {
        offThread(id, work, () -> { });
    }

    private void offThread(long id, Json.Op work, Runnable afterAnswer) {
        try {
            blocking.execute(() -> {
                try {
                    respond(id, work.run());
                } catch (Exception e) {
                    respondError(id, e);
                }
                afterAnswer.run();
            });
        } catch (RejectedExecutionException e) {
            respondError(id, new RequestException("Internal", "the sidecar is shutting down"));
        }
    }

    private void respond(long id, ObjectNode fields) {
        ObjectNode msg = Json.object().put("id", id).put("ok", true);
        msg.setAll(fields);
        write(msg);
    }

    private void respondError(long id, Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        RequestException r;
        if (e instanceof RequestException re) {
            r = re;
        } else if (e instanceof IllegalArgumentException) {
            r = RequestException.badRequest(e.getMessage());
        } else if (e instanceof NoSuchElementException) {
            r = new RequestException("NotFound", e.getMessage());
        } else if (e instanceof NoSuchObjectException || e instanceof CorruptObjectException || e instanceof ManifestException) {
            r = new RequestException("Corrupt", e.getMessage());
        } else {
            r = new RequestException("Internal", e.getMessage() == null ? e.toString() : e.getMessage());
        }
        ObjectNode error = Json.object().put("type", r.type()).put("message", oneLine(r.getMessage()));
        if (r.reason() != null) {
            error.put("reason", r.reason());
        }
        ObjectNode msg = Json.object().put("id", id).put("ok", false);
        msg.set("error", error);
        write(msg);
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ');
    }

    private void write(ObjectNode msg) {
        SocketChannel ch = connection;
        if (ch == null) {
            return;
        }
        synchronized (writeLock) {
            try {
                Frames.write(ch, msg);
            } catch (IOException e) {
                LOG.debug("sidecar: answer not sent: {}", e.toString());
            }
        }
    }

    private void stop(String why) {
        if (!closed.get()) {
            LOG.info("sidecar of worker {}: stopping: {}", options.agent().workerIndex(), why);
        }
        close();
    }

    /** Ends the session (saves not fully reported are aborted by the coordinator), deletes the shared file and the socket. Idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try {
            server.close();
            SocketChannel ch = connection;
            if (ch != null) {
                ch.close();
            }
        } catch (IOException e) {
            LOG.debug("closing socket: {}", e.toString());
        }
        blocking.shutdownNow();
        copier.shutdownNow();
        agent.closeNow();
        try {
            Files.deleteIfExists(options.socket());
            staging.close();
        } catch (IOException e) {
            LOG.warn("sidecar of worker {}: could not delete {} or {}: {}", options.agent().workerIndex(), options.socket(), staging.path(), e.toString());
        } finally {
            stopped.complete(null);
        }
    }
}
