package dev.cairn.storage.s3;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CheckpointStoreContractTest;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.InvalidStorageUriException;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.S3Object;

/** The contract suite against S3Proxy (filesystem blob store) in the test JVM, one server per class. */
class S3CheckpointStoreTest extends CheckpointStoreContractTest {
    static final String BUCKET = "cairn-test";

    @RegisterExtension
    static final S3ProxyPerClass S3_PROXY = new S3ProxyPerClass();

    private static final AtomicInteger TEST_COUNTER = new AtomicInteger();
    private static S3Client admin;

    private String prefix;
    private CheckpointStore store;

    @BeforeAll
    static void createBucket() {
        admin = adminClient(S3_PROXY.endpoint());
        admin.createBucket(b -> b.bucket(BUCKET));
    }

    @AfterAll
    static void closeAdmin() {
        if (admin != null) {
            admin.close();
        }
    }

    static S3Client adminClient(URI endpoint) {
        return S3Client.builder()
                .endpointOverride(endpoint)
                .region(Region.US_EAST_1)
                .forcePathStyle(true)
                .credentialsProvider(StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(S3ProxyPerClass.ACCESS_KEY, S3ProxyPerClass.SECRET_KEY)))
                .build();
    }

    static String uri(URI endpoint, String bucket, String prefix, String extraOptions) {
        return "s3://" + bucket + "/" + prefix + "?endpoint=" + endpoint + "&region=us-east-1&pathStyle=true"
                + "&accessKey=" + S3ProxyPerClass.ACCESS_KEY + "&secretKey=" + S3ProxyPerClass.SECRET_KEY
                + "&partSize=5m&uploadParallelism=3" + extraOptions;
    }

    @BeforeEach
    void openStore() throws IOException {
        prefix = "test-" + TEST_COUNTER.incrementAndGet();
        store = CheckpointStores.open(uri(S3_PROXY.endpoint(), BUCKET, prefix, ""));
    }

    @AfterEach
    void closeStore() throws IOException {
        store.close();
    }

    @Override
    protected CheckpointStore store() {
        return store;
    }

    /**
     * Each request costs S3Proxy and the SDK ~5-10 ms of CPU on a 2-core machine; 1,100 keys still
     * take two ListObjectsV2 pages and two DeleteObjects batches.
     */
    @Override
    protected int manyKeysCount() {
        return 1_100;
    }

    /** Every object below the prefix, and every multipart upload not completed or aborted. */
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

    @Test
    void opensThroughServiceLoaderAsS3Store() {
        assertThat(store.getClass().getSimpleName()).isEqualTo("S3CheckpointStore");
        assertThat(store.uri().toString()).isEqualTo("s3://" + BUCKET + "/" + prefix);
    }

    @Test
    void unknownBucketIsUnavailableAndNamesTheUri() {
        assertThatThrownBy(() -> CheckpointStores.open(uri(S3_PROXY.endpoint(), "no-such-bucket", "p", "")))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining("s3://no-such-bucket/p");
    }

    @Test
    void badCredentialsAreUnavailableAndNameTheUri() {
        String uri = uri(S3_PROXY.endpoint(), BUCKET, "p", "").replace("secretKey=" + S3ProxyPerClass.SECRET_KEY, "secretKey=wrong");
        assertThatThrownBy(() -> CheckpointStores.open(uri))
                .isInstanceOf(StorageUnavailableException.class)
                .hasMessageContaining("s3://" + BUCKET + "/p")
                .hasMessageNotContaining("wrong");
    }

    @Test
    void unknownOptionIsRejected() {
        assertThatThrownBy(() -> CheckpointStores.open(uri(S3_PROXY.endpoint(), BUCKET, "p", "&partsize=5m")))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("partsize");
        assertThatThrownBy(() -> CheckpointStores.open(uri(S3_PROXY.endpoint(), BUCKET, "p", "&partSize=1m")))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("partSize");
    }

    @Test
    void objectsOfSeveralPartsUseMultipartAndSmallOnesASinglePut() throws IOException {
        byte[] big = randomBytes(7, 17 * (1 << 20) + 5); // 5 MiB parts: 3 full parts and a tail
        store.write("big", big);
        store.write("small", randomBytes(8, 1000));
        assertThat(store.readAll("big")).isEqualTo(big);
        assertThat(admin.headObject(b -> b.bucket(BUCKET).key(prefix + "/big")).eTag()).as("multipart ETag").endsWith("-4\"");
        assertThat(admin.headObject(b -> b.bucket(BUCKET).key(prefix + "/small")).eTag()).doesNotContain("-");
        assertThat(rawObjects()).containsExactlyInAnyOrder("big", "small");
    }

    @Test
    void objectOfExactlyOnePartIsComplete() throws IOException {
        byte[] onePart = randomBytes(9, 5 << 20);
        store.write("one", onePart);
        assertThat(store.readAll("one")).isEqualTo(onePart);
        byte[] twoParts = randomBytes(10, 10 << 20);
        store.write("two", twoParts);
        assertThat(store.readAll("two")).isEqualTo(twoParts);
    }

    @Test
    void closingAMultipartWriteWithoutCommitAbortsTheUpload() throws IOException {
        try (ObjectWriter writer = store.create("abandoned")) {
            writer.write(randomBytes(11, 12 << 20));
            assertThat(admin.listMultipartUploads(b -> b.bucket(BUCKET).prefix(prefix + "/")).uploads()).hasSize(1);
        }
        assertThat(rawObjects()).isEmpty();
        assertThat(store.stat("abandoned")).isEmpty();
    }

    @Test
    void checkThenPutFallbackCreatesOnceAndNeverReplaces() throws IOException {
        try (CheckpointStore fallback = CheckpointStores.open(uri(S3_PROXY.endpoint(), BUCKET, prefix, "&conditionalWrites=false"))) {
            assertThat(fallback.createIfAbsent("m", "first".getBytes(UTF_8))).isTrue();
            assertThat(fallback.createIfAbsent("m", "second".getBytes(UTF_8))).isFalse();
            assertThat(fallback.readAll("m")).asString(UTF_8).isEqualTo("first");
        }
    }

    @Test
    void createIfAbsentRetriedAfterItsOwnSuccessStillReportsTheWin() throws IOException {
        // what a retried conditional PUT sees when its first attempt won but the response was lost
        byte[] content = "mine".getBytes(UTF_8);
        admin.putObject(b -> b.bucket(BUCKET).key(prefix + "/m"), software.amazon.awssdk.core.sync.RequestBody.fromBytes(content));
        assertThat(store.createIfAbsent("m", content)).isTrue();
        assertThat(store.createIfAbsent("m", "theirs".getBytes(UTF_8))).isFalse();
    }

    @Test
    void storeUriHidesCredentials() {
        assertThat(StorageUri.parse(uri(S3_PROXY.endpoint(), BUCKET, "p", "")).toString()).doesNotContain(S3ProxyPerClass.SECRET_KEY);
    }
}
