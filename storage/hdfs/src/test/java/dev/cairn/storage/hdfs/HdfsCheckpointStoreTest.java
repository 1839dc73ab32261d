package dev.cairn.storage.hdfs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreContractTest;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The contract suite against an in-process MiniDFSCluster (one per class, 2 DataNodes, replication 2). */
class HdfsCheckpointStoreTest extends CheckpointStoreContractTest {

    @TempDir
    static Path clusterDir;

    private static MiniDFSCluster cluster;
    private static String nameNode;
    private static final AtomicInteger TEST_COUNTER = new AtomicInteger();

    private String rootPath;
    private CheckpointStore store;

    @BeforeAll
    static void startCluster() throws IOException {
        Configuration conf = new Configuration();
        conf.setInt("dfs.replication", 2);
        conf.setLong("dfs.blocksize", 32L << 20);
        // small caches and thread pools: the whole cluster lives in the -Xmx512m test JVM
        conf.setInt("dfs.namenode.handler.count", 8);
        conf.setInt("dfs.datanode.handler.count", 4);
        // listings come in pages of 100 entries, so the 2,000-key test walks many pages
        conf.setInt("dfs.ls.limit", 100);
        cluster = new MiniDFSCluster.Builder(conf, clusterDir.toFile()).numDataNodes(2).build();
        cluster.waitActive();
        nameNode = "127.0.0.1:" + cluster.getNameNodePort();
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.shutdown();
        }
    }

    @BeforeEach
    void openStore() throws IOException {
        rootPath = "/cairn/test-" + TEST_COUNTER.incrementAndGet();
        store = CheckpointStores.open(StorageUri.parse("hdfs://" + nameNode + rootPath + "?dfs.replication=2&dfs.client.block.write.locateFollowingBlock.initial.delay.ms=20"), true);
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Override
    protected CheckpointStore store() {
        return store;
    }

    /** Every file below the root, temp files included. */
    @Override
    protected Collection<String> rawObjects() throws IOException {
        FileSystem fs = cluster.getFileSystem();
        List<String> names = new ArrayList<>();
        org.apache.hadoop.fs.Path root = new org.apache.hadoop.fs.Path(rootPath);
        RemoteIterator<LocatedFileStatus> files = fs.listFiles(root, true);
        String rootPrefix = fs.makeQualified(root).toUri().getPath() + "/";
        while (files.hasNext()) {
            names.add(files.next().getPath().toUri().getPath().substring(rootPrefix.length()));
        }
        return names;
    }

    @Test
    void opensThroughServiceLoaderAsHdfsStore() {
        assertThat(store.getClass().getSimpleName()).isEqualTo("HdfsCheckpointStore");
        assertThat(store.uri().toString()).isEqualTo("hdfs://" + nameNode + rootPath);
    }

    @Test
    void missingRootWithoutCreateIsUnavailable() {
        String uri = "hdfs://" + nameNode + "/cairn/never-created";
        assertThatThrownBy(() -> CheckpointStores.open(uri))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining(uri);
    }

    @Test
    void rootThatIsAFileIsUnavailable() throws IOException {
        store.write("plain", new byte[] {1});
        String uri = "hdfs://" + nameNode + rootPath + "/plain";
        assertThatThrownBy(() -> CheckpointStores.open(StorageUri.parse(uri), true))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining(uri);
    }

    @Test
    void portWithNothingListeningFailsQuicklyAndNamesTheUri() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        String uri = "hdfs://127.0.0.1:" + closedPort + "/cairn";
        long start = System.nanoTime();
        assertThatThrownBy(() -> CheckpointStores.open(uri))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining(uri)
                .hasRootCauseInstanceOf(java.net.ConnectException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(15));
    }

    @Test
    void listenerThatNeverAnswersFailsWithinSecondsAndNamesTheUri() throws IOException {
        try (ServerSocket silent = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            // accepts connections (the kernel completes the handshake) but never speaks
            String uri = "hdfs://127.0.0.1:" + silent.getLocalPort() + "/cairn";
            long start = System.nanoTime();
            assertThatThrownBy(() -> CheckpointStores.open(uri))
                    .isInstanceOf(StorageUnavailableException.class)
                    .hasMessageContaining(uri)
                    .hasMessageContaining("does not answer");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(20));
        }
    }

    @Test
    void siteFilesFromHadoopConfDirWinOverFailFastDefaults(@TempDir Path confDir) throws IOException {
        java.nio.file.Files.writeString(confDir.resolve("core-site.xml"), """
                <?xml version="1.0"?>
                <configuration>
                  <property><name>ipc.client.connect.max.retries</name><value>9</value></property>
                  <property><name>fs.trash.interval</name><value>17</value></property>
                </configuration>
                """);
        Configuration conf = HdfsCheckpointStore.configuration(StorageUri.parse("hdfs://" + nameNode + "/x"), confDir.toString());
        assertThat(conf.getInt("ipc.client.connect.max.retries", 0)).isEqualTo(9);
        assertThat(conf.getInt("fs.trash.interval", 0)).isEqualTo(17);
        assertThat(conf.getInt("ipc.client.connect.timeout", 0)).isEqualTo(5000);
    }

    @Test
    void killedWritersTempFileIsListedAsAbandonedAndCanBeSwept() throws IOException {
        dev.cairn.storage.SupportsAbandonedWrites abandoned = (dev.cairn.storage.SupportsAbandonedWrites) store;
        dev.cairn.storage.ObjectWriter writer = store.create("save-1/shard.bin"); // never committed nor closed: a killed writer
        writer.write(new byte[] {1, 2, 3});
        store.write("save-1/done.bin", new byte[] {4});

        List<dev.cairn.storage.ObjectInfo> left = abandoned.listAbandonedWrites("save-1/");
        assertThat(left).hasSize(1);
        assertThat(left.get(0).key()).startsWith("save-1/.shard.bin.").endsWith(".tmp");
        assertThat(abandoned.listAbandonedWrites("save-2/")).isEmpty();
        assertThat(store.list("save-1/")).extracting(dev.cairn.storage.ObjectInfo::key).containsExactly("save-1/done.bin");
        assertThatThrownBy(() -> abandoned.deleteAbandonedWrite("save-1/done.bin")).isInstanceOf(IllegalArgumentException.class);

        abandoned.deleteAbandonedWrite(left.get(0).key());
        abandoned.deleteAbandonedWrite(left.get(0).key()); // missing is not an error
        assertThat(abandoned.listAbandonedWrites("save-1/")).isEmpty();
        assertThat(rawObjects()).containsExactly("save-1/done.bin");
        assertThatThrownBy(writer::commit).isInstanceOf(IOException.class);
    }

    @Test
    void keysWithColonAreRejected() {
        assertThatThrownBy(() -> store.write("a:b", new byte[] {1})).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void uriOptionsBecomeHadoopSettings() throws IOException {
        StorageUri uri = StorageUri.parse("hdfs://" + nameNode + "/x?dfs.replication=1&ipc.client.connect.max.retries=7");
        Configuration conf = HdfsCheckpointStore.configuration(uri, null);
        assertThat(conf.getInt("dfs.replication", 0)).isEqualTo(1);
        assertThat(conf.getInt("ipc.client.connect.max.retries", 0)).isEqualTo(7);
        assertThat(conf.getInt("ipc.client.connect.max.retries.on.timeouts", 0)).isEqualTo(2);
    }

    @Test
    void replicationOptionIsApplied() throws IOException {
        store.write("replicated", new byte[] {1, 2, 3});
        FileSystem fs = cluster.getFileSystem();
        assertThat(fs.getFileStatus(new org.apache.hadoop.fs.Path(rootPath + "/replicated")).getReplication()).isEqualTo((short) 2);
    }

    /**
     * A rename whose temp file is gone when it runs: the object at the key decides (HDFS has no
     * conditional write, so after an ambiguous rename the commit reads the target back).
     */
    @Test
    void aCommitWhoseTempFileVanishesBeforeTheRenameIsDecidedByReadingTheTargetBack() throws Exception {
        StorageUri uri = StorageUri.parse("hdfs://" + nameNode + rootPath);
        byte[] ours = "manifest-ours".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] theirs = "manifest-theirs".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        HdfsConnection conn = HdfsConnection.open(uri, true, null);
        try {
            FileSystem fs = conn.fs();
            // swept by another process: nothing was created, and the commit does not say it was
            HdfsCommitter swept = new HdfsCommitter(conn, temp -> quietly(() -> fs.delete(temp, false)));
            assertThatThrownBy(() -> swept.createIfAbsent("manifests/1.json", ours)).isInstanceOf(IOException.class)
                    .hasMessageContaining("temp file vanished without creating the object");
            assertThat(store.stat("manifests/1.json")).isEmpty();

            // the rename happened (our bytes are there) although the call failed: committed
            HdfsCommitter renamed = new HdfsCommitter(conn, temp -> quietly(() -> fs.rename(temp, conn.pathOf("manifests/2.json"))));
            assertThat(renamed.createIfAbsent("manifests/2.json", ours)).isTrue();
            assertThat(store.readAll("manifests/2.json")).isEqualTo(ours);

            // another writer's bytes are there: not ours to claim
            HdfsCommitter lost = new HdfsCommitter(conn, temp -> quietly(() -> {
                try (var out = fs.create(conn.pathOf("manifests/3.json"), false)) {
                    out.write(theirs);
                }
                return fs.delete(temp, false);
            }));
            assertThat(lost.createIfAbsent("manifests/3.json", ours)).isFalse();
            assertThat(store.readAll("manifests/3.json")).isEqualTo(theirs);
        } finally {
            conn.close();
        }
    }

    private interface IoAction {
        Object run() throws IOException;
    }

    private static void quietly(IoAction action) {
        try {
            action.run();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
