package dev.cairn.storage.s3;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreContractTest;
import dev.cairn.storage.CheckpointStores;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.testcontainers.containers.MinIOContainer;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * The contract suite against MinIO in a container. Needs a Docker engine: without one the whole
 * class is reported as skipped (never failed). The image can be changed with
 * {@code -Dcairn.minio.image=...}; MinIO supports {@code If-None-Match: *} since its 2024 releases.
 */
@Testcontainers(disabledWithoutDocker = true)
class MinioCheckpointStoreTest extends CheckpointStoreContractTest {
    private static final String BUCKET = "cairn-test";

    @Container
    static final MinIOContainer MINIO = new MinIOContainer(System.getProperty("cairn.minio.image", "minio/minio:RELEASE.2024-12-18T13-15-44Z"));

    private static final AtomicInteger TEST_COUNTER = new AtomicInteger();
    private static S3Client admin;

    private String prefix;
    private CheckpointStore store;

    @BeforeAll
    static void createBucket() {
        admin = S3Client.builder()
                .endpointOverride(URI.create(MINIO.getS3URL()))
                .region(Region.US_EAST_1)
                .forcePathStyle(true)
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(MINIO.getUserName(), MINIO.getPassword())))
                .build();
        admin.createBucket(b -> b.bucket(BUCKET));
    }

    @AfterAll
    static void closeAdmin() {
        if (admin != null) {
            admin.close();
        }
    }

    @BeforeEach
    void openStore() throws IOException {
        prefix = "test-" + TEST_COUNTER.incrementAndGet();
        store = CheckpointStores.open("s3://" + BUCKET + "/" + prefix + "?endpoint=" + MINIO.getS3URL()
                + "&region=us-east-1&pathStyle=true&accessKey=" + MINIO.getUserName() + "&secretKey=" + MINIO.getPassword()
                + "&partSize=5m");
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Override
    protected CheckpointStore store() {
        return store;
    }

    @Override
    protected Collection<String> rawObjects() {
        List<String> names = new ArrayList<>();
        for (S3Object o : admin.listObjectsV2Paginator(b -> b.bucket(BUCKET).prefix(prefix + "/")).contents()) {
            names.add(o.key().substring(prefix.length() + 1));
        }
        for (MultipartUpload u : admin.listMultipartUploads(b -> b.bucket(BUCKET).prefix(prefix + "/")).uploads()) {
            names.add("(unfinished upload) " + u.key());
        }
        return names;
    }
}
