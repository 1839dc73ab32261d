package dev.cairn.storage.s3;

import dev.cairn.storage.Keys;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * One store's connection to its bucket: the configured {@link S3Client}, the bucket and key prefix, the
 * upload executor, and the open/closed state. Shared by the store's writer, committer, reader and namespace.
 */
final class S3Bucket {
    private static final Logger LOG = LoggerFactory.getLogger(S3Bucket.class);
    private static final AtomicInteger STORE_IDS = new AtomicInteger();

    private final StorageUri uri;
    private final S3Options options;
    private final S3Client s3;
    private final String bucket;
    /** Object name prefix of every key: "" or "prefix/". */
    private final String base;
    private final ExecutorService uploads;
    private volatile boolean closed;

    private S3Bucket(StorageUri uri, S3Options options, S3Client s3) {
        this.uri = uri;
        this.options = options;
        this.s3 = s3;
        this.bucket = uri.authority();
        this.base = uri.path().isEmpty() ? "" : uri.path() + "/";
        int storeId = STORE_IDS.incrementAndGet();
        AtomicInteger threadIds = new AtomicInteger();
        ThreadPoolExecutor pool = new ThreadPoolExecutor(options.uploadParallelism(), options.uploadParallelism(),
                30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, "cairn-s3-upload-" + storeId + "-" + threadIds.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        this.uploads = pool;
    }

    static S3Bucket open(StorageUri uri) throws IOException {
        S3Options options = S3Options.of(uri);
        S3Client s3;
        try {
            s3 = client(options);
        } catch (SdkException e) {
            throw new StorageUnavailableException("cannot configure S3 client for " + uri + ": " + e.getMessage(), e);
        }
        S3Bucket store = new S3Bucket(uri, options, s3);
        try {
            store.checkBucket();
            return store;
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    // ApacheHttpClient (Apache HttpClient 4) is deprecated in SDK 2.57 in favour of apache5-client;
    // kept as the project's chosen sync transport until that move is made deliberately
    @SuppressWarnings("deprecation")
    private static S3Client client(S3Options options) {
        AwsCredentialsProvider credentials = options.accessKey().isPresent()
                ? StaticCredentialsProvider.create(AwsBasicCredentials.create(options.accessKey().get(), options.secretKey().get()))
                : DefaultCredentialsProvider.builder().build();
        Region region = options.region().map(Region::of).orElseGet(S3Bucket::defaultRegion);
        S3ClientBuilder builder = S3Client.builder()
                .httpClientBuilder(ApacheHttpClient.builder()
                        .maxConnections(Math.max(50, options.uploadParallelism() * 8))
                        .connectionTimeout(options.connectTimeout())
                        .socketTimeout(options.socketTimeout()))
                .credentialsProvider(credentials)
                .region(region)
                .forcePathStyle(options.pathStyle())
                // checksums only where the API requires them: S3-compatible servers differ in the
                // flexible-checksum headers they accept, and part checksums would have to be
                // declared at CreateMultipartUpload and repeated at CompleteMultipartUpload
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .overrideConfiguration(o -> {
                    o.retryStrategy(AwsRetryStrategy.standardRetryStrategy().toBuilder()
                            .maxAttempts(options.maxAttempts())
                            .backoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofMillis(50), Duration.ofSeconds(5)))
                            .throttlingBackoffStrategy(BackoffStrategy.exponentialDelay(Duration.ofMillis(250), Duration.ofSeconds(20)))
                            // a burst of failures must not turn off retries for the whole store
                            .circuitBreakerEnabled(false)
                            .build());
                    options.requestTimeout().ifPresent(o::apiCallAttemptTimeout);
                });
        options.endpoint().ifPresent(builder::endpointOverride);
        return builder.build();
    }

    private static Region defaultRegion() {
        try {
            return new DefaultAwsRegionProviderChain().getRegion();
        } catch (SdkClientException e) {
            return Region.US_EAST_1;
        }
    }

    /** Where requests go, for messages: the endpoint option, else AWS S3 of the region. */
    private String endpointName() {
        return options.endpoint().map(URI::toString).orElse("AWS S3 (region " + s3.serviceClientConfiguration().region() + ")");
    }

    /**
     * The first request: credentials are resolved and the bucket is checked within {@code
     * connectTimeout} (at least 2 s) in all, retries included, so a wrong or unreachable endpoint
     * fails in seconds naming it, and missing credentials fail in one line naming where they come from.
     */
    private void checkBucket() throws IOException {
        if (options.accessKey().isEmpty()) {
            try {
                s3.serviceClientConfiguration().credentialsProvider().resolveIdentity().join();
            } catch (RuntimeException e) {
                throw new StorageUnavailableException("no S3 credentials for " + uri + ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                        + "(or AWS_PROFILE, or run with an instance/container role), or give the URI options accessKey=...&secretKey=...", e);
            }
        }
        Duration budget = options.connectTimeout().compareTo(Duration.ofSeconds(2)) < 0 ? Duration.ofSeconds(2) : options.connectTimeout();
        try {
            s3.headBucket(b -> b.bucket(bucket).overrideConfiguration(o -> o.apiCallTimeout(budget)));
        } catch (ApiCallTimeoutException e) {
            throw new StorageUnavailableException("cannot reach S3 endpoint " + endpointName() + " for " + uri + ": no answer within "
                    + budget.toMillis() + " ms (check the endpoint option, the network, or raise connectTimeout)", e);
        } catch (NoSuchBucketException e) {
            throw new StorageUnavailableException("bucket does not exist: " + uri, e);
        } catch (S3Exception e) {
            String reason = switch (e.statusCode()) {
                case 404 -> "bucket does not exist";
                case 301, 400 -> "bucket is in another region or the endpoint is wrong";
                case 401, 403 -> "access denied (check credentials)";
                default -> "HTTP " + e.statusCode();
            };
            throw new StorageUnavailableException("cannot use " + uri + ": " + reason + " (" + e.getMessage() + ")", e);
        } catch (SdkException e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage().lines().findFirst().orElse("");
            throw new StorageUnavailableException("cannot reach S3 endpoint " + endpointName() + " for " + uri + ": " + why, e);
        }
    }

    StorageUri uri() {
        return uri;
    }

    String objectKey(String key) {
        return base + Keys.check(key);
    }

    void checkOpen() throws IOException {
        if (closed) {
            throw new StorageException("store " + uri + " is closed");
        }
    }

    StorageException failure(String what, String key, Exception e) {
        return new StorageException(what + " " + uri.resolve(key) + " failed: " + e.getMessage(), e);
    }

    // ------------------------------------------------------------------ writes

    S3Options options() {
        return options;
    }

    S3Client s3() {
        return s3;
    }

    String bucket() {
        return bucket;
    }

    /** Object name prefix of every key: "" or "prefix/". */
    String base() {
        return base;
    }

    ExecutorService uploads() {
        return uploads;
    }

    /** Stops the upload threads and the HTTP client. Idempotent. */
    void close() {
        if (closed) {
            return;
        }
        closed = true;
        uploads.shutdownNow();
        s3.close();
    }
}
