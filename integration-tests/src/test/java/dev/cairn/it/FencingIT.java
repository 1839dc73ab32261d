package dev.cairn.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.cairn.coordinator.CoordinatorLease;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.Layout;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.StorageUri;
import dev.cairn.testkit.ClusterProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two real coordinator processes on one storage root. The second refuses to start while the first
 * holds the lease, naming it, and changes nothing. With the first SIGSTOPped past its lease and the
 * second started with {@code --force}, the first — resumed with a save in flight that could now
 * complete — neither commits nor deletes anything, and exits non-zero.
 */
class FencingIT {
    private static final String RUN = "fence-run";
    private static final int WORLD = 2;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    @Test
    void aSecondCoordinatorIsRefusedAndADeposedOneNeitherCommitsNorDeletes() throws Exception {
        Path root = tmp.resolve("checkpoints");
        String uri = root.toUri().toString();
        try (ClusterFixture cluster = new ClusterFixture(tmp);
             CheckpointStore store = CheckpointStores.open(StorageUri.parse(root.toString()), true)) {
            // keep-last 1: a commit of step 20 by the first coordinator would also delete step 10
            int port = cluster.startCoordinator(uri, WORLD, RUN, "--save-every-steps", "10", "--keep-last", "1",
                    "--lease-seconds", "3", "--heartbeat-timeout-ms", "120000");
            ClusterProcess first = cluster.coordinator();
            ClusterProcess w0 = cluster.startWorker(port, RUN, 0, WORLD, 20);
            ClusterProcess w1 = cluster.startWorker(port, RUN, 1, WORLD, 20, "--hold-before-save", "20");
            w0.await("committed", e -> e.getLong("step") == 10, ClusterFixture.TIMEOUT);
            w1.await("paused", e -> e.getLong("step") == 20, ClusterFixture.TIMEOUT);
            // worker 0 prepares step 20 on its own: the first coordinator's save of step 20 is in flight

            Map<String, Long> before = snapshot(store);
            ClusterProcess refused = ClusterProcess.start("coordinator-refused", tmp.resolve("refused.log"), "192m",
                    List.of("coordinator", "--storage", uri, "--world", "2", "--run-id", RUN, "--port", "0"));
            assertThat(refused.waitFor(ClusterFixture.TIMEOUT)).isEqualTo(2);
            String refusal = Files.readString(tmp.resolve("refused.log"));
            assertThat(refusal).contains("cairn: error: storage root").contains("pid " + first.pid())
                    .contains("run '" + RUN + "'").contains("--force").doesNotContain("\tat ");
            assertThat(snapshot(store)).as("the refused coordinator changed nothing").isEqualTo(before);

            first.pause(true);
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200))
                    .until(() -> !CoordinatorLease.current(store).orElseThrow().liveAt(Instant.now()));
            cluster.startCoordinatorNamed("coordinator-2", uri, WORLD, RUN, "--force", "--keep-last", "1");
            assertThat(CoordinatorLease.current(store).orElseThrow().epoch()).isEqualTo(2);
            Map<String, Long> afterTakeover = snapshot(store);

            // worker 1 now prepares step 20 towards the stopped first coordinator: resumed, it could
            // complete the barrier and commit (and retention would delete step 10)
            w1.send("go");
            first.pause(false);
            assertThat(first.waitFor(ClusterFixture.TIMEOUT)).as("a deposed coordinator exits non-zero").isEqualTo(3);

            CheckpointCatalog catalog = new CheckpointCatalog(store);
            assertThat(catalog.steps()).as("no commit by the deposed coordinator").containsExactly(10L);
            Map<String, Long> after = snapshot(store);
            assertThat(after).as("nothing deleted by the deposed coordinator").containsAllEntriesOf(afterTakeover);
            assertThat(after.keySet().stream().filter(k -> k.startsWith(Layout.MANIFESTS)))
                    .containsExactly(Layout.manifestKey(10));
        }
    }

    /** Every object below the root except the lease records, with its length. */
    private static Map<String, Long> snapshot(CheckpointStore store) throws Exception {
        return store.list("").stream().filter(o -> !o.key().startsWith(CoordinatorLease.PREFIX))
                .collect(Collectors.toMap(ObjectInfo::key, ObjectInfo::length, (a, b) -> a, TreeMap::new));
    }
}
