package dev.cairn.storage.hdfs;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.RegionReadContractTest;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

/** Region reads (one open per object, positional reads of the ranges) against an in-process MiniDFSCluster. */
class HdfsRegionReadTest extends RegionReadContractTest {
    @TempDir
    static Path clusterDir;

    private static MiniDFSCluster cluster;
    private static String nameNode;
    private static final AtomicInteger TEST_COUNTER = new AtomicInteger();

    @BeforeAll
    static void startCluster() throws IOException {
        Configuration conf = new Configuration();
        conf.setInt("dfs.replication", 1);
        conf.setInt("dfs.namenode.handler.count", 4);
        conf.setInt("dfs.datanode.handler.count", 4);
        cluster = new MiniDFSCluster.Builder(conf, clusterDir.toFile()).numDataNodes(1).build();
        cluster.waitActive();
        nameNode = "127.0.0.1:" + cluster.getNameNodePort();
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.shutdown();
        }
    }

    /** Each ranged read is a DataNode request; fewer random regions keep the class quick. */
    @Override
    protected int randomRegions() {
        return 60;
    }

    @Override
    protected CheckpointStore openStore() throws IOException {
        return CheckpointStores.open(StorageUri.parse("hdfs://" + nameNode + "/cairn/regions-" + TEST_COUNTER.incrementAndGet() + "?dfs.replication=1"),
                true);
    }
}
