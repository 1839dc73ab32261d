package dev.cairn.harness;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUri;
import dev.cairn.testkit.EmbeddedStorage;
import dev.cairn.testkit.FaultInjectingHttpProxy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The storage of a chaos campaign: the work directory (process logs; the data of the embedded
 * servers), the embedded store of the backend, the relay that breaks S3 requests, the checker's own
 * store handle, and the immutable flag that makes local storage refuse writes.
 */
final class ChaosStorage implements AutoCloseable {
    private final String backend;
    private final Path work;
    private final EmbeddedStorage server;
    private final FaultInjectingHttpProxy relay;
    /** The storage URI with its options (StorageUri#toString drops them), as the processes get it. */
    private final String storageText;
    private final StorageUri uri;
    private final Path root;
    private final ChaosReport report;
    private CheckpointStore store;
    private CheckpointCatalog catalog;
    private boolean chattrWorks = true;
    private boolean frozen;

    private ChaosStorage(String backend, Path work, EmbeddedStorage server, FaultInjectingHttpProxy relay, ChaosReport report)
            throws IOException {
        this.backend = backend;
        this.work = work;
        this.server = server;
        this.relay = relay;
        this.report = report;
        this.storageText = uriText(ChaosSettings.RUN_ID);
        this.root = backend.equals("file") ? Files.createDirectories(Path.of(storageText)) : null;
        this.uri = StorageUri.parse(storageText);
    }

    /** Starts the backend's embedded store in a fresh work directory; S3 is reached through a fault-injecting relay. */
    static ChaosStorage start(String backend, ChaosReport report) throws IOException {
        Path work = Files.createTempDirectory("cairn-chaos-");
        EmbeddedStorage server = EmbeddedStorage.start(backend, work);
        FaultInjectingHttpProxy relay = null;
        if (backend.equals("s3")) {
            // agents, coordinator and checker all reach S3Proxy through a relay that can break requests
            relay = new FaultInjectingHttpProxy(server.s3Endpoint());
            server.routeS3Through(relay.uri());
        }
        return new ChaosStorage(backend, work, server, relay, report);
    }

    /** The URI text of the root {@code name}; on S3 a stalled request is given up after 2 s and retried, well within the save's deadlines. */
    String uriText(String name) {
        return server.uri(name) + (backend.equals("s3") ? "&socketTimeout=2000" : "");
    }

    /** Opens the checker's handle on the run's root. */
    void open() throws IOException {
        store = CheckpointStores.open(uri, true);
        catalog = new CheckpointCatalog(store);
    }

    Path work() {
        return work;
    }

    String storageText() {
        return storageText;
    }

    StorageUri uri() {
        return uri;
    }

    CheckpointCatalog catalog() {
        return catalog;
    }

    EmbeddedStorage server() {
        return server;
    }

    /** The S3 relay, or null on other backends. */
    FaultInjectingHttpProxy relay() {
        return relay;
    }

    /** Every object key under the root {@code name}, temporary files included. */
    List<String> rawKeys(String name, CheckpointStore via) throws IOException {
        return server.rawKeys(name, via);
    }

    List<String> rawKeys() throws IOException {
        return server.rawKeys(ChaosSettings.RUN_ID, store);
    }

    /**
     * Makes the local data directory immutable (even for root: chmod cannot stop root; the
     * immutable attribute can, on ext4/xfs with CAP_LINUX_IMMUTABLE) or mutable again. Returns
     * false when that is not possible here.
     */
    boolean freeze(boolean on) throws IOException, InterruptedException {
        if (on && !chattrWorks) {
            return false;
        }
        Path data = Files.createDirectories(root.resolve("data"));
        Process p = new ProcessBuilder("chattr", on ? "+i" : "-i", data.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        int code = p.waitFor();
        if (code != 0) {
            if (on) {
                chattrWorks = false;
                report.notes.add("storage fault not injected: 'chattr +i' failed (" + output.trim() + "); chmod cannot stop root");
            }
            return false;
        }
        frozen = on;
        return true;
    }

    /** Makes the data directory writable again if it was frozen. */
    void unfreeze() {
        if (frozen) {
            try {
                freeze(false);
            } catch (IOException | InterruptedException e) {
                report.violations.add("could not make " + root.resolve("data") + " writable again: " + e);
            }
        }
    }

    /** Removes the work directory (logs and the embedded servers' data). */
    void deleteWork() throws IOException {
        StorageCleanup.deleteTree(work);
    }

    @Override
    public void close() throws IOException {
        try {
            if (store != null) {
                store.close();
            }
        } finally {
            unfreeze();
            if (relay != null) {
                relay.close();
            }
            server.close();
        }
    }
}
