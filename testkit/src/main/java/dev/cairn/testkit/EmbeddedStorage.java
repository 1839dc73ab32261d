package dev.cairn.testkit;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.gaul.s3proxy.BlobStores;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.blobstore.BlobStore;

/**
 * A storage server on loopback for trying Cairn out: a directory ({@code file}), an in-process
 * MiniDFSCluster ({@code hdfs}: 2 DataNodes, replication 2) or an in-process S3Proxy ({@code s3}:
 * filesystem blob store, bucket {@value #BUCKET}, static credentials). {@link #uri(String)} names a
 * run root below it in the form the stores expect; {@link #close()} stops the server.
 */
public final class EmbeddedStorage implements AutoCloseable {
    public static final String BUCKET = "cairn";
    public static final String ACCESS_KEY = "cairn-access";
    public static final String SECRET_KEY = "cairn-secret";

    private final String backend;
    private final Path dir;
    private final MiniDFSCluster hdfs;
    private final S3Proxy s3;
    private final BlobStore blobStore;
    private volatile URI s3Endpoint;

    private EmbeddedStorage(String backend, Path dir, MiniDFSCluster hdfs, S3Proxy s3, BlobStore blobStore) {
        this.backend = backend;
        this.dir = dir;
        this.hdfs = hdfs;
        this.s3 = s3;
        this.blobStore = blobStore;
        this.s3Endpoint = s3 == null ? null : URI.create("http://127.0.0.1:" + s3.getPort());
    }

    /** Starts the server of {@code backend} ({@code file}, {@code hdfs} or {@code s3}) with its data below {@code workDir}. */
    public static EmbeddedStorage start(String backend, Path workDir) throws IOException {
        quietServerLogs();
        return switch (backend) {
            case "file" -> new EmbeddedStorage(backend, Files.createDirectories(workDir.resolve("checkpoints")), null, null, null);
            case "hdfs" -> startHdfs(Files.createDirectories(workDir.resolve("hdfs")));
            case "s3" -> startS3(Files.createDirectories(workDir.resolve("s3")));
            default -> throw new IllegalArgumentException("--backend must be file, hdfs or s3, was '" + backend + "'");
        };
    }

    private static EmbeddedStorage startHdfs(Path base) throws IOException {
        Configuration conf = new Configuration();
        conf.setInt("dfs.replication", 2);
        conf.setLong("dfs.blocksize", 32L << 20);
        // small thread pools: the cluster lives in the cairn JVM
        conf.setInt("dfs.namenode.handler.count", 8);
        conf.setInt("dfs.datanode.handler.count", 4);
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.datanode.hostname", "127.0.0.1");
        // a stopped DataNode is declared dead quickly, so chaos rounds see the cluster heal
        conf.setInt("dfs.heartbeat.interval", 1);
        conf.setInt("dfs.namenode.heartbeat.recheck-interval", 5000);
        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf, base.toFile()).numDataNodes(2).build();
        try {
            cluster.waitActive();
        } catch (IOException | RuntimeException e) {
            cluster.shutdown();
            throw e;
        }
        return new EmbeddedStorage("hdfs", base, cluster, null, null);
    }

    private static EmbeddedStorage startS3(Path base) throws IOException {
        Properties props = new Properties();
        props.setProperty("jclouds.filesystem.basedir", base.toAbsolutePath().toString());
        props.setProperty("jclouds.identity", ACCESS_KEY);
        props.setProperty("jclouds.credential", SECRET_KEY);
        BlobStore blobStore = BlobStores.create("filesystem", props);
        blobStore.createContainer(BUCKET);
        S3Proxy proxy = S3Proxy.builder()
                .blobStore(blobStore)
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
                .endpoint(URI.create("http://127.0.0.1:0"))
                .build();
        try {
            proxy.start();
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (!"STARTED".equals(proxy.getState())) {
                if (System.nanoTime() > deadline) {
                    throw new IOException("S3Proxy did not start within 30 s (state " + proxy.getState() + ")");
                }
                Thread.sleep(10);
            }
        } catch (IOException e) {
            stopQuietly(proxy);
            throw e;
        } catch (Exception e) {
            stopQuietly(proxy);
            throw new IOException("S3Proxy did not start: " + e, e);
        }
        return new EmbeddedStorage("s3", base, null, proxy, blobStore);
    }

    private static void stopQuietly(S3Proxy proxy) {
        try {
            proxy.stop();
        } catch (Exception ignored) {
            // failing anyway
        }
    }

    /**
     * The embedded servers' own logging would drown the demo's output (a MiniDFSCluster logs WARN and
     * even ERROR lines on every clean start and shutdown); cairn's loggers keep their level. Set
     * {@code -Dorg.slf4j.simpleLogger.log.org.apache.hadoop=warn} to see them.
     */
    private static void quietServerLogs() {
        quiet("org.apache.hadoop", "off");
        quiet("org.eclipse.jetty", "error");
        quiet("org.gaul", "error");
    }

    private static void quiet(String logger, String level) {
        String key = "org.slf4j.simpleLogger.log." + logger;
        if (System.getProperty(key) == null) {
            System.setProperty(key, level);
        }
    }

    public String backend() {
        return backend;
    }

    /** What this server is, in one line (for reports such as {@code cairn bench --json}'s {@code storageServer}). */
    public String describe() {
        return switch (backend) {
            case "file" -> "a directory: " + dir;
            case "hdfs" -> "embedded MiniDFSCluster in this JVM: NameNode 127.0.0.1:" + hdfs.getNameNodePort()
                    + ", 2 DataNodes, replication 2, block size 32 MiB, data on the local disk in " + dir;
            default -> "embedded S3Proxy in this JVM: " + s3Endpoint() + ", filesystem blob store on the local disk in " + dir
                    + ", bucket " + BUCKET;
        };
    }

    /** The storage URI of the run root {@code name} below this server, with the options the store needs. */
    public String uri(String name) {
        return switch (backend) {
            case "file" -> dir.resolve(name).toAbsolutePath().toString();
            case "hdfs" -> "hdfs://127.0.0.1:" + hdfs.getNameNodePort() + "/cairn/" + name
                    + "?dfs.replication=2&dfs.client.block.write.replace-datanode-on-failure.policy=NEVER";
            default -> "s3://" + BUCKET + "/" + name + "?endpoint=" + s3Endpoint + "&region=us-east-1&pathStyle=true"
                    + "&accessKey=" + ACCESS_KEY + "&secretKey=" + SECRET_KEY;
        };
    }

    /** The S3Proxy endpoint ({@code s3} only). */
    public URI s3Endpoint() {
        return URI.create("http://127.0.0.1:" + s3.getPort());
    }

    /** Makes {@link #uri(String)} point S3 clients at {@code endpoint} (e.g. a fault-injecting relay) instead of S3Proxy. */
    public void routeS3Through(URI endpoint) {
        this.s3Endpoint = endpoint;
    }

    /** The MiniDFSCluster ({@code hdfs} only). */
    public MiniDFSCluster hdfs() {
        return hdfs;
    }

    /**
     * Every object below the run root {@code name} as its key, including what the store's own
     * listing hides (an HDFS writer's temp files); for {@code s3}, what {@code fallback} lists.
     */
    public java.util.List<String> rawKeys(String name, dev.cairn.storage.CheckpointStore fallback) throws IOException {
        java.util.List<String> keys = new java.util.ArrayList<>();
        switch (backend) {
            case "file" -> {
                Path root = dir.resolve(name);
                if (Files.isDirectory(root)) {
                    try (java.util.stream.Stream<Path> walk = Files.walk(root)) {
                        walk.filter(Files::isRegularFile).forEach(p -> keys.add(root.relativize(p).toString().replace('\\', '/')));
                    }
                }
            }
            case "hdfs" -> {
                org.apache.hadoop.fs.FileSystem fs = hdfs.getFileSystem();
                org.apache.hadoop.fs.Path root = new org.apache.hadoop.fs.Path("/cairn/" + name);
                if (fs.exists(root)) {
                    String prefix = fs.makeQualified(root).toUri().getPath() + "/";
                    var files = fs.listFiles(root, true);
                    while (files.hasNext()) {
                        keys.add(files.next().getPath().toUri().getPath().substring(prefix.length()));
                    }
                }
            }
            default -> fallback.list("").forEach(o -> keys.add(o.key()));
        }
        keys.sort(null);
        return keys;
    }

    @Override
    public void close() {
        if (hdfs != null) {
            hdfs.shutdown();
        }
        if (s3 != null) {
            stopQuietly(s3);
            try {
                blobStore.close();
            } catch (Exception ignored) {
                // stopping anyway
            }
        }
    }
}
