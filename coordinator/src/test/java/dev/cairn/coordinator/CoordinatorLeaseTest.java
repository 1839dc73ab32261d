package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.coordinator.SaveCoordinatorTest.ManualClock;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.StorageUri;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The storage root's epoch and lease on a real local store, with a clock the test moves. */
class CoordinatorLeaseTest {
    private static final Duration LEASE = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    private final ManualClock clock = new ManualClock();
    private CheckpointStore store;

    @BeforeEach
    void open() throws Exception {
        store = CheckpointStores.open(StorageUri.parse(dir.toUri().toString()), true);
    }

    @AfterEach
    void close() throws Exception {
        store.close();
    }

    @Test
    void firstCoordinatorTakesEpochOne() throws Exception {
        CoordinatorLease lease = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);

        assertThat(lease.epoch()).isEqualTo(1);
        assertThat(lease.previous()).isEmpty();
        CoordinatorLease.Holder holder = CoordinatorLease.current(store).orElseThrow();
        assertThat(holder.runId()).isEqualTo("run-a");
        assertThat(holder.pid()).isEqualTo(ProcessHandle.current().pid());
        assertThat(holder.expiresAt()).isEqualTo(clock.instant().plus(LEASE));
        lease.check();
    }

    @Test
    void secondIsRefusedWhileTheLeaseIsLiveNamingTheHolder() throws Exception {
        CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        clock.advance(Duration.ofSeconds(29));

        assertThatThrownBy(() -> CoordinatorLease.acquire(store, clock, LEASE, "run-b", false))
                .isInstanceOf(CoordinatorLease.LeaseHeldException.class)
                .hasMessageContaining("run 'run-a'")
                .hasMessageContaining("pid " + ProcessHandle.current().pid())
                .hasMessageContaining("until 2024-01-01T00:00:30Z")
                .hasMessageContaining("--force");
        assertThat(CoordinatorLease.current(store).orElseThrow().epoch()).isEqualTo(1);
    }

    @Test
    void anExpiredLeaseIsTakenWithoutForceAndTheOldHolderIsDeposed() throws Exception {
        CoordinatorLease first = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        clock.advance(Duration.ofSeconds(10));
        first.renew();
        clock.advance(Duration.ofSeconds(30));

        CoordinatorLease second = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);

        assertThat(second.epoch()).isEqualTo(2);
        assertThat(second.previous().orElseThrow().renewedAt()).isEqualTo(java.time.Instant.parse("2024-01-01T00:00:10Z"));
        assertThatThrownBy(first::check).isInstanceOf(CoordinatorLease.DeposedException.class);
        assertThatThrownBy(first::renew).isInstanceOf(CoordinatorLease.DeposedException.class);
        second.check();
        // the old epoch's objects are gone: the listing the fence reads stays short
        assertThat(store.list(CoordinatorLease.PREFIX)).extracting(ObjectInfo::key)
                .containsExactly(CoordinatorLease.key(2, 0));
    }

    @Test
    void renewalKeepsTheLeaseAndReplacesTheOldRecord() throws Exception {
        CoordinatorLease lease = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        for (int i = 0; i < 5; i++) {
            clock.advance(Duration.ofSeconds(10));
            lease.renew();
        }
        clock.advance(Duration.ofSeconds(29));

        lease.check();
        assertThatThrownBy(() -> CoordinatorLease.acquire(store, clock, LEASE, "run-b", false))
                .isInstanceOf(CoordinatorLease.LeaseHeldException.class);
        assertThat(store.list(CoordinatorLease.PREFIX)).extracting(ObjectInfo::key).containsExactly(CoordinatorLease.key(1, 5));
    }

    @Test
    void aLeaseThatExpiredUnrenewedFencesItsHolderEvenWithoutASuccessor() throws Exception {
        CoordinatorLease lease = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        clock.advance(LEASE);

        assertThatThrownBy(lease::check).isInstanceOf(CoordinatorLease.DeposedException.class)
                .hasMessageContaining("expired at 2024-01-01T00:00:30Z");
        assertThatThrownBy(lease::renew).isInstanceOf(CoordinatorLease.DeposedException.class);
    }

    @Test
    void forceTakesALiveLeaseAndDeposesItsHolder() throws Exception {
        CoordinatorLease first = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        clock.advance(Duration.ofSeconds(1));

        CoordinatorLease second = CoordinatorLease.acquire(store, clock, LEASE, "run-a", true);

        assertThat(second.epoch()).isEqualTo(2);
        assertThatThrownBy(first::check).isInstanceOf(CoordinatorLease.DeposedException.class)
                .hasMessageContaining("taken over").hasMessageContaining("epoch 2");
    }

    @Test
    void aReleasedLeaseIsFreeAtOnce() throws Exception {
        CoordinatorLease first = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        first.release();
        assertThat(CoordinatorLease.current(store).orElseThrow().liveAt(clock.instant())).isFalse();

        assertThat(CoordinatorLease.acquire(store, clock, LEASE, "run-b", false).epoch()).isEqualTo(2);
    }

    @Test
    void ofTwoRacingForTheSameEpochOneWins() throws Exception {
        // a competitor created epoch 1 between our listing and our create: simulated by writing it first
        store.createIfAbsent(CoordinatorLease.key(1, 0), "garbage".getBytes());

        assertThatThrownBy(() -> CoordinatorLease.acquire(store, clock, LEASE, "run-b", false))
                .isInstanceOf(CoordinatorLease.LeaseHeldException.class)
                .as("an unreadable lease record counts as live, never as free").hasMessageContaining("epoch 1");
        assertThat(CoordinatorLease.acquire(store, clock, LEASE, "run-b", true).epoch()).isEqualTo(2);
    }

    @Test
    void aRenewalWhoseAnswerWasLostIsAdoptedSoTheReleaseStillFreesTheRoot() throws Exception {
        // the create takes effect, then the answer is lost and so is the read that would tell (an S3
        // request, and the one after it, cut off by the stop that follows)
        java.util.concurrent.atomic.AtomicBoolean loseNextAnswer = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean failNextRead = new java.util.concurrent.atomic.AtomicBoolean();
        CheckpointStore lossy = (CheckpointStore) java.lang.reflect.Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {CheckpointStore.class}, (proxy, method, args) -> {
                    if (method.getName().equals("readAll") && failNextRead.getAndSet(false)) {
                        throw new java.io.InterruptedIOException("interrupted");
                    }
                    Object result;
                    try {
                        result = method.invoke(store, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (method.getName().equals("createIfAbsent") && loseNextAnswer.getAndSet(false)) {
                        failNextRead.set(true);
                        throw new dev.cairn.storage.CommitStateUnknownException("atomic create of " + args[0] + " may or may not have taken effect",
                                new java.io.InterruptedIOException());
                    }
                    return result;
                });
        CoordinatorLease lease = CoordinatorLease.acquire(lossy, clock, LEASE, "run-a", false);
        clock.advance(Duration.ofSeconds(10));
        loseNextAnswer.set(true);
        assertThatThrownBy(lease::renew).isInstanceOf(java.io.InterruptedIOException.class);
        assertThat(store.list(CoordinatorLease.PREFIX)).extracting(ObjectInfo::key).contains(CoordinatorLease.key(1, 1));

        lease.release();

        assertThat(CoordinatorLease.current(store).orElseThrow().liveAt(clock.instant())).isFalse();
        assertThat(CoordinatorLease.acquire(store, clock, LEASE, "run-b", false).epoch()).isEqualTo(2);
    }

    @Test
    void aRenewalNumberWrittenByAnotherProcessDeposes() throws Exception {
        CoordinatorLease lease = CoordinatorLease.acquire(store, clock, LEASE, "run-a", false);
        store.createIfAbsent(CoordinatorLease.key(1, 1), "someone else".getBytes());
        clock.advance(Duration.ofSeconds(10));

        assertThatThrownBy(lease::renew).isInstanceOf(CoordinatorLease.DeposedException.class).hasMessageContaining("another process");
    }
}
