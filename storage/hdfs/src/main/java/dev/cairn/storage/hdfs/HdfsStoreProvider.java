package dev.cairn.storage.hdfs;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreProvider;
import dev.cairn.storage.StorageUri;
import java.io.IOException;

/**
 * Opens {@code hdfs://namenode:port/path} stores. Hadoop settings come from {@code HADOOP_CONF_DIR}
 * ({@code core-site.xml}, {@code hdfs-site.xml}) when it is set, then from the URI's options, each
 * taken as a Hadoop {@code key=value} setting, e.g. {@code hdfs://nn:8020/ckpt?dfs.replication=2}.
 */
public final class HdfsStoreProvider implements CheckpointStoreProvider {

    @Override
    public String scheme() {
        return "hdfs";
    }

    @Override
    public CheckpointStore open(StorageUri uri, boolean create) throws IOException {
        return HdfsCheckpointStore.open(uri, create, System.getenv("HADOOP_CONF_DIR"));
    }
}
