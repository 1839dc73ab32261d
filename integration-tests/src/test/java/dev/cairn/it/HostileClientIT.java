package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.agent.AgentConfig;
import dev.cairn.agent.CairnAgent;
import dev.cairn.cli.Main;
import dev.cairn.coordinator.AdminClient;
import dev.cairn.proto.v1.AbortReason;
import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.CoordinatorMessage;
import dev.cairn.proto.v1.EntryInfo;
import dev.cairn.proto.v1.Heartbeat;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.ListCheckpointsRequest;
import dev.cairn.proto.v1.Prepare;
import dev.cairn.proto.v1.Release;
import dev.cairn.proto.v1.ShardReport;
import dev.cairn.proto.v1.StatusRequest;
import dev.cairn.proto.v1.TriggerSaveRequest;
import dev.cairn.proto.v1.WorkerSessionServiceGrpc;
import dev.cairn.protocol.BearerToken;
import dev.cairn.protocol.TestCertificates;
import dev.cairn.protocol.TlsFiles;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.StorageUri;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A client that speaks protocol v1 with the generated stubs only (no agent library) against a real
 * {@code cairn coordinator} process serving mutual TLS with a token, sending the attacks of issue
 * #10. It asserts the coordinator's answers, and at the end that every committed checkpoint still
 * verifies and restores and that an honest agent still commits.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class HostileClientIT {
    private static final String RUN = "run";
    private static final String TOKEN = "s3cret-token";
    private static final Duration WAIT = Duration.ofSeconds(15);

    @TempDir
    static Path tmp;
    static TestCertificates certs;
    static ClusterFixture cluster;
    static String address;
    static String storage;
    static CheckpointStore store;
    static ManagedChannel channel;
    /** Steps for the save attacks: each attack saves at a step of its own, after every earlier one. */
    static long nextStep = 100;
    static final byte[] SHARD = new byte[64];

    @BeforeAll
    static void start() throws Exception {
        new Random(10).nextBytes(SHARD);
        certs = TestCertificates.generate(tmp.resolve("certs"));
        Path root = Files.createDirectories(tmp.resolve("ckpt").resolve(RUN));
        storage = root.toUri().toString();
        cluster = new ClusterFixture(tmp);
        int port = cluster.startCoordinator(storage, 1, RUN, "--token", TOKEN, "--keep-last", "2",
                "--tls-cert", certs.serverCert.toString(), "--tls-key", certs.serverKey.toString(), "--tls-client-ca", certs.caCert.toString());
        address = "127.0.0.1:" + port;
        channel = NettyChannelBuilder.forAddress("127.0.0.1", port, clientTls()).build();
        store = CheckpointStores.open(StorageUri.parse(storage), false);
    }

    @AfterAll
    static void stop() throws Exception {
        if (channel != null) {
            channel.shutdownNow();
        }
        if (store != null) {
            store.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    static ChannelCredentials clientTls() {
        return TlsFiles.client(certs.caCert, certs.clientCert, certs.clientKey);
    }

    // ------------------------------------------------------------------ a raw session

    /** One session over the generated stub: what the coordinator sent, and how the stream ended. */
    static final class Raw implements StreamObserver<CoordinatorMessage>, AutoCloseable {
        final LinkedBlockingQueue<CoordinatorMessage> received = new LinkedBlockingQueue<>();
        final CompletableFuture<Status> ended = new CompletableFuture<>();
        final StreamObserver<AgentMessage> out;

        Raw(String headerToken) {
            out = WorkerSessionServiceGrpc.newStub(channel).withInterceptors(BearerToken.clientInterceptor(headerToken)).session(this);
        }

        Raw send(AgentMessage m) {
            out.onNext(m);
            return this;
        }

        CoordinatorMessage await(Predicate<CoordinatorMessage> p) throws InterruptedException {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (true) {
                CoordinatorMessage m = received.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                assertThat(m).as("a message from the coordinator").isNotNull();
                if (p.test(m)) {
                    return m;
                }
            }
        }

        Status end() throws Exception {
            return ended.get(WAIT.toSeconds(), TimeUnit.SECONDS);
        }

        @Override
        public void onNext(CoordinatorMessage value) {
            received.add(value);
        }

        @Override
        public void onError(Throwable t) {
            ended.complete(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            ended.complete(Status.OK);
        }

        /** Ends the session from this side and waits until the coordinator has let it go. */
        @Override
        public void close() throws Exception {
            if (!ended.isDone()) {
                out.onCompleted();
            }
            end();
        }
    }

    static Join.Builder join(int index, int world) {
        return Join.newBuilder().setRunId(RUN).setWorkerIndex(index).setWorldSize(world).setAgentVersion("hostile/1");
    }

    static AgentMessage msg(Join.Builder j) {
        return AgentMessage.newBuilder().setJoin(j).build();
    }

    static AgentMessage prepare(long step) {
        return AgentMessage.newBuilder().setPrepare(Prepare.newBuilder().setStep(step)).build();
    }

    static AgentMessage report(ShardReport.Builder r) {
        return AgentMessage.newBuilder().setShardReport(r).build();
    }

    /** A joined worker 0 (token in the metadata). */
    static Raw joined() throws Exception {
        Raw r = new Raw(TOKEN).send(msg(join(0, 1)));
        r.await(CoordinatorMessage::hasWelcome);
        return r;
    }

    /** Joins (or is refused): the status the session ended with. */
    static Status refusedJoin(String headerToken, Join.Builder j) throws Exception {
        try (Raw r = new Raw(headerToken)) {
            r.send(msg(j));
            Status s = r.end();
            assertThat(r.received).as("no welcome").isEmpty();
            return s;
        }
    }

    /** Prepares a fresh step, gets its release and (optionally) writes the shard object. */
    static Release release(Raw w, boolean write) throws Exception {
        long step = nextStep;
        nextStep += 10;
        w.send(prepare(step));
        Release rel = w.await(CoordinatorMessage::hasRelease).getRelease();
        assertThat(rel.getStep()).isEqualTo(step);
        if (write) {
            store.write(Layout.shardKey(rel.getSaveId(), 0), SHARD);
        }
        return rel;
    }

    static ShardReport.Builder validReport(Release rel) {
        CRC32C crc = new CRC32C();
        crc.update(SHARD);
        int c = (int) crc.getValue();
        return ShardReport.newBuilder().setSaveId(rel.getSaveId()).setStep(rel.getStep())
                .setObjectKey(Layout.shardKey(rel.getSaveId(), 0)).setLength(SHARD.length).setCrc32C(c)
                .addEntries(EntryInfo.newBuilder().setName("w").setOffset(0).setLength(SHARD.length).setCrc32C(c));
    }

    static void assertStatus(Status s, Status.Code code, String... parts) {
        assertThat(s.getCode()).as(String.valueOf(s)).isEqualTo(code);
        if (parts.length > 0) {
            assertThat(s.getDescription()).contains(parts);
        }
        assertThat(s.getDescription()).doesNotContain(TOKEN);
        assertThat(s.getDescription().length()).as("a bounded description").isLessThan(1000);
    }

    // ------------------------------------------------------------------ authentication and transport

    @Test
    @Order(1)
    void adminCallsWithoutTheTokenAreUnauthenticated() {
        for (String token : new String[] {"", "wrong"}) {
            try (AdminClient admin = new AdminClient(address, token, clientTls())) {
                for (Runnable call : List.<Runnable>of(
                        () -> admin.stub.status(StatusRequest.getDefaultInstance()),
                        () -> admin.stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance()),
                        () -> admin.stub.triggerSave(TriggerSaveRequest.getDefaultInstance()))) {
                    assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class,
                            e -> assertStatus(e.getStatus(), Status.Code.UNAUTHENTICATED));
                }
            }
        }
        try (AdminClient admin = new AdminClient(address, TOKEN, clientTls())) {
            assertThat(admin.stub.status(StatusRequest.getDefaultInstance()).getRunId()).isEqualTo(RUN);
        }
    }

    @Test
    @Order(2)
    void plaintextAndUnknownCertificatesAreRefusedQuickly() {
        for (ChannelCredentials creds : List.of(TlsFiles.client(null, null, null), TlsFiles.client(certs.caCert, null, null),
                TlsFiles.client(certs.otherCaCert, certs.clientCert, certs.clientKey),
                TlsFiles.client(certs.caCert, certs.strangerCert, certs.strangerKey))) {
            long t0 = System.nanoTime();
            try (AdminClient admin = new AdminClient(address, TOKEN, creds)) {
                assertThatThrownBy(() -> admin.stub.status(StatusRequest.getDefaultInstance()))
                        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
            }
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(8));
        }
    }

    @Test
    @Order(3)
    void joinsWithAWrongOrMissingTokenAreUnauthenticated() throws Exception {
        assertStatus(refusedJoin("wrong", join(0, 1)), Status.Code.UNAUTHENTICATED);
        assertStatus(refusedJoin("", join(0, 1).setToken("wrong")), Status.Code.UNAUTHENTICATED, "wrong or missing token");
        assertStatus(refusedJoin("", join(0, 1)), Status.Code.UNAUTHENTICATED, "wrong or missing token");
        // protocol v1: the token in the join alone is accepted
        try (Raw r = new Raw("")) {
            r.send(msg(join(0, 1).setToken(TOKEN)));
            assertThat(r.await(CoordinatorMessage::hasWelcome).getWelcome().getRunId()).isEqualTo(RUN);
        }
    }

    // ------------------------------------------------------------------ session protocol

    @Test
    @Order(4)
    void sessionViolationsEndTheSession() throws Exception {
        // messages before the join
        try (Raw r = new Raw(TOKEN)) {
            r.send(prepare(5));
            assertStatus(r.end(), Status.Code.FAILED_PRECONDITION, "first message of a session must be a join");
        }
        // a second join on one stream
        try (Raw r = joined()) {
            r.send(msg(join(0, 1)));
            assertStatus(r.end(), Status.Code.FAILED_PRECONDITION, "second join");
        }
        // unknown worker indexes and a world size that is not the coordinator's
        assertStatus(refusedJoin(TOKEN, join(1, 1)), Status.Code.INVALID_ARGUMENT, "outside the world size 1");
        assertStatus(refusedJoin(TOKEN, join(-1, 1)), Status.Code.INVALID_ARGUMENT, "outside the world size 1");
        assertStatus(refusedJoin(TOKEN, join(0, 7)), Status.Code.INVALID_ARGUMENT, "expects world size 7");
        assertStatus(refusedJoin(TOKEN, join(0, 1).setRunId("another-run")), Status.Code.FAILED_PRECONDITION, "another-run");
        // steps outside [0, 2^62)
        for (long step : new long[] {-5, Long.MAX_VALUE, 1L << 62}) {
            try (Raw r = joined()) {
                r.send(prepare(step));
                assertStatus(r.end(), Status.Code.INVALID_ARGUMENT, "prepare.step " + step + " is outside");
            }
        }
        try (Raw r = joined()) {
            r.send(AgentMessage.newBuilder().setHeartbeat(Heartbeat.newBuilder().setStep(-7)).build());
            assertStatus(r.end(), Status.Code.INVALID_ARGUMENT, "heartbeat.step -7");
        }
        // an empty message (no kind set)
        try (Raw r = joined()) {
            r.send(AgentMessage.getDefaultInstance());
            assertStatus(r.end(), Status.Code.INVALID_ARGUMENT, "unknown message");
        }
    }

    @Test
    @Order(5)
    void hugeAndForgingRunIdsAreRefusedWithoutFloodingOrForgingTheLog() throws Exception {
        Path log = tmp.resolve("coordinator.log");
        long before = Files.size(log);
        String huge = "r".repeat(60 << 20);
        // refused by its bounds, or (when the 60 MiB take longer than that to arrive over TLS on a busy machine) by the join deadline
        Status s = refusedJoin(TOKEN, join(0, 1).setRunId(huge));
        assertThat(s.getCode()).as(String.valueOf(s)).isIn(Status.Code.INVALID_ARGUMENT, Status.Code.DEADLINE_EXCEEDED);
        assertThat(s.getDescription().length()).isLessThan(1000);
        String forging = "x\n12:00:00.000 [main] INFO dev.cairn.coordinator.SaveCoordinator - FORGED save committed";
        assertStatus(refusedJoin(TOKEN, join(0, 1).setRunId(forging)), Status.Code.INVALID_ARGUMENT, "join.run_id must be");
        assertThat(Files.size(log) - before).as("log growth").isLessThan(64 << 10);
        assertThat(Files.readAllLines(log)).noneMatch(l -> l.startsWith("12:00:00.000") || l.contains("FORGED") && !l.contains("\\n"));
        // metadata and a token over their limits
        assertStatus(refusedJoin(TOKEN, join(0, 1).setToken("t".repeat(5000))), Status.Code.INVALID_ARGUMENT, "join.token is longer");
    }

    // ------------------------------------------------------------------ shard reports

    @Test
    @Order(6)
    void invalidShardReportsAbortTheSaveAndCommitNothing() throws Exception {
        record Attack(String what, UnaryOperator<ShardReport.Builder> change, boolean write, String answer) {}
        List<Attack> attacks = List.of(
                new Attack("length -1", r -> r.setLength(-1).setEntries(0, r.getEntries(0).toBuilder().setLength(0)), true, "length -1 is negative"),
                new Attack("key ../../x", r -> r.setObjectKey("../../x"), true, "object_key"),
                new Attack("key /etc/passwd", r -> r.setObjectKey("/etc/passwd"), true, "object_key"),
                new Attack("empty key", r -> r.setObjectKey(""), true, "object_key"),
                new Attack("offset+length overflow", r -> r.setEntries(0, r.getEntries(0).toBuilder().setOffset(Long.MAX_VALUE - 10)), true,
                        "entries.offset/length"),
                new Attack("object never written", r -> r, false, "does not exist"),
                new Attack("wrong length", r -> r.setLength(100).setEntries(0, r.getEntries(0).toBuilder().setLength(100)), true,
                        "reported length 100"),
                new Attack("step not the released one", r -> r.setStep(r.getStep() + 1), true, "is not the released step"),
                new Attack("escaping entry name", r -> r.setEntries(0, r.getEntries(0).toBuilder().setName("../escape")), true, "entries.name"),
                new Attack("metadata not an object", r -> r.setMetadataJson("[1,2]"), true, "metadata_json"),
                new Attack("duplicate entry names", r -> r.addEntries(r.getEntries(0)), true, "appears twice"));
        try (Raw w = joined()) {
            for (Attack a : attacks) {
                Release rel = release(w, a.write());
                w.send(report(a.change().apply(validReport(rel))));
                var aborted = w.await(CoordinatorMessage::hasAborted).getAborted();
                assertThat(aborted.getReason()).as(a.what()).isEqualTo(AbortReason.INVALID_SHARD);
                assertThat(aborted.getMessage()).as(a.what()).contains(a.answer());
                assertThat(store.stat(Layout.manifestKey(rel.getStep())).isPresent()).as(a.what() + ": no manifest").isFalse();
            }
        }
        assertThat(new CheckpointCatalog(store).steps()).isEmpty();
    }

    @Test
    @Order(7)
    void unknownAndDuplicateReportsAreIgnoredAndTheSessionGoesOn() throws Exception {
        try (Raw w = joined()) {
            // a report for a save that was never released: ignored, the session is still usable
            Release fake = Release.newBuilder().setSaveId("123-deadbeef").setStep(123).build();
            w.send(report(validReport(fake)));
            Release rel = release(w, true);
            w.send(report(validReport(rel)));
            w.send(report(validReport(rel))); // the same report again
            assertThat(w.await(CoordinatorMessage::hasCommitted).getCommitted().getCheckpoint().getStep()).isEqualTo(rel.getStep());
            w.send(report(validReport(rel))); // and after the commit
            // a step at or before the latest checkpoint is refused for that save only
            w.send(prepare(rel.getStep()));
            var aborted = w.await(CoordinatorMessage::hasAborted).getAborted();
            assertThat(aborted.getReason()).isEqualTo(AbortReason.STEP_ALREADY_COMMITTED);
            assertThat(w.received).noneMatch(CoordinatorMessage::hasAborted);
            assertThat(w.ended).isNotDone();
            // and the next save commits
            Release next = release(w, true);
            w.send(report(validReport(next)));
            assertThat(w.await(CoordinatorMessage::hasCommitted).getCommitted().getCheckpoint().getStep()).isEqualTo(next.getStep());
        }
        assertThat(store.stat(Layout.shardKey("123-deadbeef", 0)).isPresent()).isFalse();
    }

    // ------------------------------------------------------------------ afterwards

    @Test
    @Order(8)
    void afterTheAttacksAnHonestAgentCommitsAndEveryCheckpointVerifiesAndRestores() throws Exception {
        long step = nextStep;
        AgentConfig config = AgentConfig.builder(address, RUN, 0, 1).token(TOKEN).tlsCa(certs.caCert)
                .tlsClientCert(certs.clientCert, certs.clientKey).stagingBytes(1 << 20).connectTimeout(WAIT).build();
        try (CairnAgent agent = CairnAgent.connect(config)) {
            assertThat(agent.save(step, snap -> snap.put("model/w", new float[] {1f, 2f, 3f})).await(WAIT).step()).isEqualTo(step);
        }
        CheckpointCatalog catalog = new CheckpointCatalog(store);
        List<Long> steps = catalog.steps();
        assertThat(steps).as("retention keeps the last 2, all valid").hasSize(2).contains(step);
        for (long s : steps) {
            assertThat(Main.execute("verify", "--storage", storage, "--step", Long.toString(s))).as("verify step %d", s).isZero();
            Path to = tmp.resolve("restored-" + s);
            assertThat(Main.execute("restore", "--storage", storage, "--step", Long.toString(s), "--to", to.toString()))
                    .as("restore step %d", s).isZero();
            try (var files = Files.walk(to)) {
                assertThat(files.filter(Files::isRegularFile).count()).isGreaterThanOrEqualTo(1);
            }
        }
        assertThat(cluster.coordinator().isAlive()).isTrue();
    }
}
