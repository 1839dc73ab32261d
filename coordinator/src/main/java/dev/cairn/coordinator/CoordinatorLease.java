package dev.cairn.coordinator;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fence that keeps a storage root to one acting coordinator: an epoch and a lease, kept as
 * immutable objects below {@code _coordinator/} and written only with the store's atomic
 * create-if-absent (the commit's own primitive, on every backend; S3 has no rename, so nothing is
 * ever replaced):
 *
 * <pre>
 *   _coordinator/epoch-00000000000000000007/lease-0000000000   taking epoch 7 (holder, expiry)
 *   _coordinator/epoch-00000000000000000007/lease-0000000042   the 42nd renewal (holder, expiry)
 * </pre>
 *
 * <p>A coordinator takes epoch N+1 (N the newest) by creating its {@code lease-0}: of two racing,
 * one wins. It renews by creating {@code lease-<seq+1>} with a new expiry and deleting the one
 * before, so a listing of {@code _coordinator/} stays a few objects long; the new holder of an
 * epoch deletes the objects of older epochs. A clean stop writes a last renewal that expires at
 * once. The lease of the newest epoch is live while its newest renewal's expiry (the holder's
 * clock, in the object) is ahead of the reader's clock; clocks are assumed to agree to well
 * within the lease (NTP), as Flink's and etcd's leases assume.
 *
 * <p>{@link #check} is the fence: one listing of {@code _coordinator/}. A coordinator is deposed
 * when a newer epoch exists, or when its own lease has expired without a renewal (another
 * coordinator may then take over at any moment). Every commit and every delete calls it first.
 * Thread-safe.
 */
public final class CoordinatorLease {
    private static final Logger LOG = LoggerFactory.getLogger(CoordinatorLease.class);
    /** Where epochs and leases live, below the storage root. */
    public static final String PREFIX = "_coordinator/";
    private static final Pattern LEASE_KEY = Pattern.compile("_coordinator/epoch-(\\d{20})/lease-(\\d{10})");

    /** Who holds (or held) a lease, and until when. */
    public record Holder(long epoch, long seq, String host, long pid, Instant startedAt, String runId,
                         Instant renewedAt, Instant expiresAt, boolean released) {
        /** Live at {@code now}: not released and not expired. */
        public boolean liveAt(Instant now) {
            return !released && now.isBefore(expiresAt);
        }

        /** One line naming the holder, for errors and logs. */
        public String describe() {
            return "coordinator of run " + LogSafe.quote(runId) + " on host " + LogSafe.quote(host) + " (pid " + pid
                    + ", started " + startedAt + ", epoch " + epoch + ")";
        }
    }

    /** A live coordinator holds the lease of the root. */
    public static final class LeaseHeldException extends IOException {
        private final Holder holder;

        LeaseHeldException(String message, Holder holder) {
            super(message);
            this.holder = holder;
        }

        public Holder holder() {
            return holder;
        }
    }

    /** This coordinator no longer holds the lease: it must neither commit nor delete. */
    public static final class DeposedException extends IOException {
        DeposedException(String message) {
            super(message);
        }
    }

    private final CheckpointStore store;
    private final Clock clock;
    private final Duration duration;
    private final Holder identity;
    private final Optional<Holder> previous;
    private long seq;
    private Instant expiresAt;
    private boolean released;

    private CoordinatorLease(CheckpointStore store, Clock clock, Duration duration, Holder identity, Optional<Holder> previous) {
        this.store = store;
        this.clock = clock;
        this.duration = duration;
        this.identity = identity;
        this.previous = previous;
        this.expiresAt = identity.expiresAt();
    }

    /** The holder of the newest epoch's newest lease object, or empty when no coordinator ever took the root. */
    public static Optional<Holder> current(CheckpointStore store) throws IOException {
        List<ObjectInfo> objects = store.list(PREFIX);
        String newest = null;
        long newestEpoch = -1;
        long newestSeq = -1;
        for (ObjectInfo o : objects) {
            Matcher m = LEASE_KEY.matcher(o.key());
            if (!m.matches()) {
                continue;
            }
            long epoch = Long.parseLong(m.group(1));
            long seq = Long.parseLong(m.group(2));
            if (epoch > newestEpoch || (epoch == newestEpoch && seq > newestSeq)) {
                newestEpoch = epoch;
                newestSeq = seq;
                newest = o.key();
            }
        }
        if (newest == null) {
            return Optional.empty();
        }
        try {
            return Optional.of(decode(newestEpoch, newestSeq, store.readAll(newest)));
        } catch (NoSuchObjectException e) {
            // renewed (and the old object deleted) while we listed: look again
            return current(store);
        }
    }

    /**
     * Takes the next epoch of the root. Without {@code force}, refuses while the newest epoch's
     * lease is live; with it, takes over at once (the deposed holder stops at its next check).
     *
     * @throws LeaseHeldException naming the live holder and when its lease expires
     */
    public static CoordinatorLease acquire(CheckpointStore store, Clock clock, Duration duration, String runId, boolean force)
            throws IOException {
        if (duration.isNegative() || duration.isZero()) {
            throw new IllegalArgumentException("lease duration must be positive, was " + duration);
        }
        Optional<Holder> previous = current(store);
        Instant now = clock.instant();
        if (previous.isPresent() && previous.get().liveAt(now)) {
            Holder p = previous.get();
            if (!force) {
                throw new LeaseHeldException("storage root " + store.uri() + " is held by the " + p.describe()
                        + " until " + p.expiresAt() + " (its lease is renewed while it runs); stop it, or wait for the lease to expire,"
                        + " or pass --force to take over now", p);
            }
            LOG.warn("--force: taking storage root {} over from the live {} (lease until {}); it stops at its next fence check",
                    store.uri(), p.describe(), p.expiresAt());
        }
        long epoch = previous.map(h -> h.epoch() + 1).orElse(1L);
        Holder me = new Holder(epoch, 0, hostName(), ProcessHandle.current().pid(), now, runId, now, now.plus(duration), false);
        if (!store.createIfAbsent(key(epoch, 0), encode(me))) {
            Optional<Holder> winner = current(store);
            throw new LeaseHeldException("storage root " + store.uri() + " was taken just now by the "
                    + winner.map(Holder::describe).orElse("another coordinator"), winner.orElse(null));
        }
        CoordinatorLease lease = new CoordinatorLease(store, clock, duration, me, previous);
        lease.deleteOlderEpochs();
        LOG.info("took epoch {} of storage root {} (lease {}, renewed every {})", epoch, store.uri(), duration, duration.dividedBy(3));
        return lease;
    }

    /** The epoch this coordinator holds. */
    public long epoch() {
        return identity.epoch();
    }

    /** The lease before ours, if any (a new coordinator sweeps only what is older than its last renewal). */
    public Optional<Holder> previous() {
        return previous;
    }

    /**
     * The fence: one listing of {@code _coordinator/}.
     *
     * @throws DeposedException when a newer epoch exists, or this lease expired without renewal
     */
    public void check() throws IOException {
        Instant now = clock.instant();
        synchronized (this) {
            if (!released && !now.isBefore(expiresAt)) {
                throw new DeposedException("the lease of epoch " + epoch() + " on " + store.uri() + " expired at " + expiresAt
                        + " without a renewal; another coordinator may hold the root");
            }
        }
        Optional<Holder> newest = current(store);
        if (newest.isPresent() && newest.get().epoch() > epoch()) {
            throw new DeposedException("deposed: storage root " + store.uri() + " was taken over by the " + newest.get().describe());
        }
    }

    /** Extends the lease by its duration: a fence check, then a conditional create of the next renewal. */
    public synchronized void renew() throws IOException {
        if (released) {
            return;
        }
        check();
        Instant now = clock.instant();
        writeNext(now, now.plus(duration), false);
    }

    /** A clean stop: the last renewal expires at once, so the next coordinator need not wait. Best effort. */
    public synchronized void release() {
        if (released) {
            return;
        }
        try {
            check();
            writeNext(clock.instant(), clock.instant(), true);
            LOG.info("released epoch {} of storage root {}", epoch(), store.uri());
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not release epoch {} of storage root {} (it expires at {}): {}", epoch(), store.uri(), expiresAt, e.toString());
        }
        released = true;
    }

    private void writeNext(Instant now, Instant expiry, boolean release) throws IOException {
        long next = seq + 1;
        Holder h = new Holder(epoch(), next, identity.host(), identity.pid(), identity.startedAt(), identity.runId(), now, expiry, release);
        Optional<Holder> own = createOrFindOwn(key(epoch(), next), h);
        if (own.isPresent()) {
            // an earlier renewal of ours took effect although its answer was lost (an S3 request cut
            // off by a stop, say): adopt it, then write this one after it
            advanceTo(next, own.get().expiresAt());
            writeNext(now, expiry, release);
            return;
        }
        advanceTo(next, expiry);
    }

    /**
     * Creates {@code key}: empty when this call created it; this process's own object when an
     * earlier attempt, whose outcome was unknown, had.
     *
     * @throws DeposedException when another process wrote it
     * @throws CommitStateUnknownException when the outcome is unknown and the object is not there
     */
    private Optional<Holder> createOrFindOwn(String key, Holder h) throws IOException {
        CommitStateUnknownException unknown = null;
        try {
            if (store.createIfAbsent(key, encode(h))) {
                return Optional.empty();
            }
        } catch (CommitStateUnknownException e) {
            unknown = e;
        }
        Optional<Holder> there;
        try {
            there = Optional.of(decode(h.epoch(), h.seq(), store.readAll(key)));
        } catch (NoSuchObjectException e) {
            there = Optional.empty();
        }
        if (there.isPresent() && isOwn(there.get())) {
            return there;
        }
        if (there.isEmpty() && unknown != null) {
            throw unknown; // it did not take effect: the next renewal tries the same sequence number again
        }
        throw new DeposedException("renewal " + h.seq() + " of epoch " + epoch() + " on " + store.uri()
                + " already exists: another process writes this epoch");
    }

    private boolean isOwn(Holder h) {
        return h.host().equals(identity.host()) && h.pid() == identity.pid() && h.startedAt().equals(identity.startedAt());
    }

    private void advanceTo(long next, Instant expiry) {
        String old = key(epoch(), seq);
        seq = next;
        expiresAt = expiry;
        try {
            store.delete(old);
        } catch (IOException e) {
            LOG.debug("could not delete old lease object {} of {}: {}", old, store.uri(), e.toString());
        }
    }

    private void deleteOlderEpochs() {
        try {
            List<String> old = new ArrayList<>();
            for (ObjectInfo o : store.list(PREFIX)) {
                Matcher m = LEASE_KEY.matcher(o.key());
                if (m.matches() && Long.parseLong(m.group(1)) < epoch()) {
                    old.add(o.key());
                }
            }
            store.deleteAll(old);
        } catch (IOException e) {
            LOG.debug("could not delete lease objects of older epochs in {}: {}", store.uri(), e.toString());
        }
    }

    static String key(long epoch, long seq) {
        return String.format("%sepoch-%020d/lease-%010d", PREFIX, epoch, seq);
    }

    private static byte[] encode(Holder h) {
        Properties p = new Properties();
        p.setProperty("host", h.host());
        p.setProperty("pid", Long.toString(h.pid()));
        p.setProperty("startedAt", h.startedAt().toString());
        p.setProperty("runId", h.runId());
        p.setProperty("renewedAt", h.renewedAt().toString());
        p.setProperty("expiresAt", h.expiresAt().toString());
        p.setProperty("released", Boolean.toString(h.released()));
        StringWriter out = new StringWriter();
        try {
            p.store(out, "cairn coordinator lease");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** An unreadable lease object counts as live until its epoch is superseded: never guess a root is free. */
    private static Holder decode(long epoch, long seq, byte[] bytes) {
        Properties p = new Properties();
        try {
            p.load(new StringReader(new String(bytes, StandardCharsets.UTF_8)));
            return new Holder(epoch, seq, p.getProperty("host", "?"), Long.parseLong(p.getProperty("pid", "-1")),
                    Instant.parse(p.getProperty("startedAt")), p.getProperty("runId", "?"),
                    Instant.parse(p.getProperty("renewedAt")), Instant.parse(p.getProperty("expiresAt")), Boolean.parseBoolean(p.getProperty("released", "false")));
        } catch (IOException | RuntimeException e) {
            return new Holder(epoch, seq, "?", -1, Instant.EPOCH, "?", Instant.EPOCH, Instant.MAX, false);
        }
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
