package dev.cairn.storage.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.cairn.storage.CheckpointStores;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Opening an S3 store fails fast, in one line that says what to do. */
class S3OpenErrorsTest {
    private static Throwable open(String uri) {
        return catchThrowable(() -> CheckpointStores.open(StorageUri.parse(uri), false).close());
    }

    @Test
    void withoutCredentialsTheMessageNamesTheVariablesAndTheUriOptions() {
        assumeTrue(System.getenv("AWS_ACCESS_KEY_ID") == null && System.getenv("AWS_PROFILE") == null
                && !Files.exists(Path.of(System.getProperty("user.home"), ".aws")), "this machine has AWS credentials configured");
        System.setProperty("aws.disableEc2Metadata", "true");
        long t0 = System.nanoTime();

        Throwable e = open("s3://bucket/run?endpoint=http://127.0.0.1:9&pathStyle=true&region=us-east-1");

        assertThat(e).isInstanceOf(StorageUnavailableException.class);
        assertThat(e.getMessage()).startsWith("no S3 credentials for s3://bucket/run").contains("AWS_ACCESS_KEY_ID")
                .contains("AWS_SECRET_ACCESS_KEY").contains("accessKey=").doesNotContain("\n").hasSizeLessThan(400);
        assertThat((System.nanoTime() - t0) / 1e9).isLessThan(10);
    }

    @Test
    void anEndpointThatNeverAnswersFailsWithinSecondsNamingIt() throws Exception {
        // accepts connections into its backlog but never reads or answers
        try (ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            String endpoint = "http://127.0.0.1:" + silent.getLocalPort();
            long t0 = System.nanoTime();

            Throwable e = open("s3://bucket/run?endpoint=" + endpoint + "&pathStyle=true&region=us-east-1"
                    + "&accessKey=a&secretKey=b&connectTimeout=2000");

            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(e).isInstanceOf(StorageUnavailableException.class);
            assertThat(e.getMessage()).contains("cannot reach S3 endpoint " + endpoint).contains("no answer within 2000 ms");
            assertThat(seconds).as("seconds to fail").isLessThan(6);
        }
    }

    @Test
    void aClosedPortFailsWithinSecondsNamingTheEndpoint() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        long t0 = System.nanoTime();

        Throwable e = open("s3://bucket/run?endpoint=http://127.0.0.1:" + port + "&pathStyle=true&region=us-east-1&accessKey=a&secretKey=b");

        assertThat(e).isInstanceOf(StorageUnavailableException.class);
        assertThat(e.getMessage()).contains("cannot reach S3 endpoint http://127.0.0.1:" + port).doesNotContain("\n");
        assertThat((System.nanoTime() - t0) / 1e9).isLessThan(8);
    }
}
