package dev.cairn.harness;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.Heartbeat;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.Prepare;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import io.grpc.Channel;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Lightweight simulated workers for the coordination figure at large world sizes: each worker is
 * one raw {@code cairn.v1} session stream made with the generated stubs (no {@code CairnAgent},
 * no staging, no upload thread), many streams multiplexed over a few shared channels, one shared
 * Netty event loop of two threads and one scheduler thread for the heartbeats.
 *
 * <p>A save is what an agent does for an empty snapshot: every worker sends {@code prepare(step)};
 * on the release it reports an empty shard (length 0, no object key, no entries — an empty shard
 * has no object, so the coordinator's commit has nothing to stat for it); on the commit of that
 * step it is done. An {@code Aborted} or a broken stream fails the save. The workers write nothing
 * to storage.
 */
final class SimulatedWorkers implements AutoCloseable {
    /** Streams per connection: the coordinator's cap of concurrent calls per connection. */
    static final int STREAMS_PER_CHANNEL = 16;

    private final String runId;
    private final Worker[] workers;
    private final List<ManagedChannel> owned = new ArrayList<>();
    private final EventLoopGroup group;
    private final ScheduledExecutorService heartbeats = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "bench-sim-heartbeats");
        t.setDaemon(true);
        return t;
    });

    /**
     * {@code world} workers of {@code runId} on the given channels (worker i uses channel i mod
     * size), heartbeating every {@code heartbeat}. The channels stay the caller's.
     */
    SimulatedWorkers(List<? extends Channel> channels, String runId, int world, Duration heartbeat) {
        this(channels, null, runId, world, heartbeat);
    }

    private SimulatedWorkers(List<? extends Channel> channels, EventLoopGroup group, String runId, int world, Duration heartbeat) {
        if (channels.isEmpty() || world < 1) {
            throw new IllegalArgumentException("simulated workers need a channel and a world of at least 1");
        }
        this.runId = runId;
        this.group = group;
        this.workers = new Worker[world];
        for (int i = 0; i < world; i++) {
            workers[i] = new Worker(i, channels.get(i % channels.size()));
        }
        long interval = heartbeat.toNanos();
        for (int i = 0; i < world; i++) {
            Worker w = workers[i];
            // spread over the interval, as independent agents' heartbeats are
            heartbeats.scheduleAtFixedRate(w::heartbeat, interval + interval * i / world, interval, TimeUnit.NANOSECONDS);
        }
    }

    /**
     * {@code world} workers connected to a coordinator on {@code host:port} over
     * ceil(world / {@link #STREAMS_PER_CHANNEL}) plaintext connections that share one event loop.
     */
    static SimulatedWorkers connect(String host, int port, String runId, int world, Duration heartbeat) {
        EventLoopGroup group = new NioEventLoopGroup(2, r -> {
            Thread t = new Thread(r, "bench-sim-net");
            t.setDaemon(true);
            return t;
        });
        List<ManagedChannel> channels = new ArrayList<>();
        for (int c = 0; c < (world + STREAMS_PER_CHANNEL - 1) / STREAMS_PER_CHANNEL; c++) {
            channels.add(NettyChannelBuilder.forAddress(host, port, InsecureChannelCredentials.create())
                    .eventLoopGroup(group)
                    .channelType(NioSocketChannel.class)
                    .keepAliveTime(2, TimeUnit.SECONDS)
                    .keepAliveTimeout(2, TimeUnit.SECONDS)
                    .keepAliveWithoutCalls(true)
                    .disableRetry() // a session stream is never replayed; without it every call carries a retry buffer
                    // inbound only answers a release or completes a future: no hop to another executor
                    .directExecutor()
                    .build());
        }
        SimulatedWorkers sim = new SimulatedWorkers(channels, group, runId, world, heartbeat);
        sim.owned.addAll(channels);
        return sim;
    }

    int world() {
        return workers.length;
    }

    /** Opens every worker's session and waits for every welcome. */
    void join(Duration timeout) throws Exception {
        List<CompletableFuture<Void>> welcomes = new ArrayList<>();
        for (Worker w : workers) {
            welcomes.add(w.open());
        }
        await(CompletableFuture.allOf(welcomes.toArray(CompletableFuture[]::new)), timeout, "the welcome of " + workers.length + " workers");
    }

    /**
     * Runs one save of empty shards at {@code step}: every worker prepares it, in index order.
     * The future completes with the {@link System#nanoTime()} at which the last worker saw its
     * commit, or fails with the first abort or broken stream.
     */
    CompletableFuture<Long> save(long step) {
        List<CompletableFuture<Long>> commits = new ArrayList<>(workers.length);
        for (Worker w : workers) {
            commits.add(w.prepare(step));
        }
        return CompletableFuture.allOf(commits.toArray(CompletableFuture[]::new)).thenApply(v -> {
            long last = 0;
            for (CompletableFuture<Long> c : commits) {
                last = Math.max(last, c.join());
            }
            return last;
        });
    }

    static <T> T await(CompletableFuture<T> f, Duration timeout, String what) throws Exception {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new TimeoutException("simulated workers: no " + what + " within " + timeout.toMillis() + " ms");
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof Exception ex ? ex : e;
        }
    }

    /** Ends every session (half-close: the coordinator sees the workers leave), then the channels it made. */
    @Override
    public void close() {
        heartbeats.shutdownNow();
        for (Worker w : workers) {
            w.leave();
        }
        for (ManagedChannel c : owned) {
            c.shutdown();
        }
        for (ManagedChannel c : owned) {
            try {
                if (!c.awaitTermination(5, TimeUnit.SECONDS)) {
                    c.shutdownNow();
                }
            } catch (InterruptedException e) {
                c.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }

    /** One worker: its stream, the step it is saving and the future of that save's commit. */
    private final class Worker implements StreamObserver<CoordinatorMessage> {
        private final int index;
        private final Channel channel;
        private final CompletableFuture<Void> welcomed = new CompletableFuture<>();
        private StreamObserver<AgentMessage> out;
        private long step;
        private CompletableFuture<Long> committed;
        private boolean ended;

        Worker(int index, Channel channel) {
            this.index = index;
            this.channel = channel;
        }

        CompletableFuture<Void> open() {
            StreamObserver<AgentMessage> stream = WorkerSessionServiceGrpc.newStub(channel).session(this);
            synchronized (this) {
                out = stream;
                send(AgentMessage.newBuilder().setJoin(Join.newBuilder()
                        .setRunId(runId)
                        .setWorkerIndex(index)
                        .setWorldSize(workers.length)
                        .setAgentVersion("bench-sim")).build());
            }
            return welcomed;
        }

        synchronized CompletableFuture<Long> prepare(long step) {
            CompletableFuture<Long> f = new CompletableFuture<>();
            if (ended) {
                f.completeExceptionally(new IllegalStateException("simulated worker " + index + ": session ended"));
                return f;
            }
            this.step = step;
            this.committed = f;
            send(AgentMessage.newBuilder().setPrepare(Prepare.newBuilder().setStep(step)).build());
            return f;
        }

        synchronized void heartbeat() {
            if (out != null && !ended) {
                send(AgentMessage.newBuilder().setHeartbeat(Heartbeat.newBuilder().setStep(step)).build());
            }
        }

        synchronized void leave() {
            if (out != null && !ended) {
                ended = true;
                try {
                    out.onCompleted();
                } catch (RuntimeException e) {
                    // the stream is already gone
                }
            }
        }

        /** Callers hold the monitor: a stream's sends must not interleave. */
        private void send(AgentMessage msg) {
            try {
                out.onNext(msg);
            } catch (RuntimeException e) {
                fail(new IllegalStateException("simulated worker " + index + ": send failed: " + e, e));
            }
        }

        @Override
        public synchronized void onNext(CoordinatorMessage msg) {
            switch (msg.getKindCase()) {
                case WELCOME -> welcomed.complete(null);
                case RELEASE -> {
                    if (msg.getRelease().getStep() == step) {
                        // an empty snapshot: no object, no entries
                        send(AgentMessage.newBuilder().setShardReport(ShardReport.newBuilder()
                                .setSaveId(msg.getRelease().getSaveId())
                                .setStep(step)
                                .setLength(0)).build());
                    }
                }
                case COMMITTED -> {
                    if (committed != null && msg.getCommitted().getCheckpoint().getStep() == step) {
                        committed.complete(System.nanoTime());
                    }
                }
                case ABORTED -> {
                    if (committed != null && msg.getAborted().getStep() == step) {
                        committed.completeExceptionally(new IllegalStateException("simulated worker " + index + ": save of step " + step
                                + " aborted: " + msg.getAborted().getReason() + ": " + msg.getAborted().getMessage()));
                    }
                }
                default -> { } // save targets: this worker saves when the bench says so
            }
        }

        @Override
        public synchronized void onError(Throwable t) {
            ended = true;
            fail(new IllegalStateException("simulated worker " + index + ": stream broken: " + io.grpc.Status.fromThrowable(t), t));
        }

        @Override
        public synchronized void onCompleted() {
            ended = true;
            fail(new IllegalStateException("simulated worker " + index + ": the coordinator ended the session"));
        }

        private void fail(Exception e) {
            welcomed.completeExceptionally(e);
            if (committed != null) {
                committed.completeExceptionally(e);
            }
        }
    }
}
