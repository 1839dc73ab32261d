package dev.cairn.storage.s3;

import static dev.cairn.testkit.FaultInjectingHttpProxy.Fault.CONNECTION_RESET;
import static dev.cairn.testkit.FaultInjectingHttpProxy.Fault.INTERNAL_ERROR_500;
import static dev.cairn.testkit.FaultInjectingHttpProxy.Fault.LOSE_RESPONSE;
import static dev.cairn.testkit.FaultInjectingHttpProxy.Fault.NO_ANSWER;
import static dev.cairn.testkit.FaultInjectingHttpProxy.Fault.SLOW_DOWN_503;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.testkit.FaultInjectingHttpProxy;
import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageException;
import java.io.IOException;
import java.io.InputStream;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * How the S3 store meets transient failures and unknown outcomes: a real S3Proxy behind a relay
 * that injects connection resets, 503 SlowDown, 500s, lost responses and silence.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class S3CheckpointStoreFailureTest {
    private static final String BUCKET = "cairn-failures";

    @RegisterExtension
    static final S3ProxyPerClass S3_PROXY = new S3ProxyPerClass();

    private FaultInjectingHttpProxy proxy;
    private String prefix;

    @BeforeAll
    static void createBucket() {
        try (S3Client admin = S3CheckpointStoreTest.adminClient(S3_PROXY.endpoint())) {
            admin.createBucket(b -> b.bucket(BUCKET));
        }
    }

    @BeforeEach
    void startProxy(TestInfo test) throws IOException {
        proxy = new FaultInjectingHttpProxy(S3_PROXY.endpoint());
        prefix = test.getTestMethod().orElseThrow().getName();
    }

    @AfterEach
    void stopProxy() throws IOException {
        proxy.close();
    }

    private CheckpointStore open(String extraOptions) throws IOException {
        return CheckpointStores.open(S3CheckpointStoreTest.uri(proxy.uri(), BUCKET, prefix, extraOptions));
    }

    @Test
    void writesAndReadsSurviveSlowDownServerErrorsAndResets() throws IOException {
        try (CheckpointStore store = open("")) {
            proxy.failNext("PUT", SLOW_DOWN_503, INTERNAL_ERROR_500, CONNECTION_RESET);
            store.write("k", "payload".getBytes(UTF_8));
            assertThat(proxy.faultsInjected()).isEqualTo(3);

            proxy.failNext("GET", CONNECTION_RESET, SLOW_DOWN_503);
            assertThat(store.readAll("k")).asString(UTF_8).isEqualTo("payload");
            assertThat(proxy.faultsInjected()).isEqualTo(5);
        }
    }

    @Test
    void multipartPartUploadsAreRetried() throws IOException {
        byte[] content = new byte[11 << 20];
        new SplittableRandom(3).nextBytes(content);
        try (CheckpointStore store = open("&uploadParallelism=1")) {
            // PUT: CreateMultipartUpload is a POST; UploadPart is a PUT
            proxy.failNext("PUT", CONNECTION_RESET, SLOW_DOWN_503);
            try (ObjectWriter writer = store.create("big")) {
                writer.write(content);
                writer.commit();
            }
            assertThat(proxy.faultsInjected()).isEqualTo(2);
            try (InputStream in = store.read("big", 0, content.length)) {
                assertThat(in.readAllBytes()).isEqualTo(content);
            }
        }
    }

    @Test
    void exhaustedRetriesFailTheWriteNamingUriAndKey() throws IOException {
        try (CheckpointStore store = open("&maxAttempts=2")) {
            proxy.failNext("PUT", INTERNAL_ERROR_500, INTERNAL_ERROR_500);
            assertThatThrownBy(() -> store.write("k", new byte[] {1}))
                    .isInstanceOf(StorageException.class)
                    .hasMessageContaining(store.uri().resolve("k"));
            assertThat(store.stat("k")).isEmpty();
        }
    }

    @Test
    void createIfAbsentWhoseSuccessResponseIsLostStillReportsTheWin() throws IOException {
        try (CheckpointStore store = open("")) {
            proxy.failNext("PUT", LOSE_RESPONSE);
            assertThat(store.createIfAbsent("manifest", "ours".getBytes(UTF_8))).isTrue();
            assertThat(proxy.faultsInjected()).isEqualTo(1);
            assertThat(store.createIfAbsent("manifest", "theirs".getBytes(UTF_8))).isFalse();
            assertThat(store.readAll("manifest")).asString(UTF_8).isEqualTo("ours");
        }
    }

    @Test
    void createIfAbsentWithoutAnAnswerIsCommitStateUnknown() throws IOException {
        try (CheckpointStore store = open("&maxAttempts=2&requestTimeout=2000")) {
            proxy.failNext("PUT", NO_ANSWER, NO_ANSWER);
            assertThatThrownBy(() -> store.createIfAbsent("manifest", "ours".getBytes(UTF_8)))
                    .isInstanceOf(CommitStateUnknownException.class)
                    .hasMessageContaining(store.uri().resolve("manifest"));
            assertThat(proxy.faultsInjected()).isEqualTo(2);
            // the request never reached the server: a re-check finds nothing, a retry can win
            assertThat(store.stat("manifest")).isEmpty();
            assertThat(store.createIfAbsent("manifest", "ours".getBytes(UTF_8))).isTrue();
        }
    }
}
