package dev.cairn.storage.s3;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.Keys;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.RangeInputStream;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUnavailableException;
import dev.cairn.storage.StorageUri;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * A store on S3 or an S3-compatible server, through the AWS SDK v2 sync {@link S3Client} over the
 * Apache HTTP client. Options are described in {@link S3Options}. A key {@code k} of the store
 * {@code s3://bucket/prefix} is the object {@code prefix/k}.
 *
 * <ul>
 *   <li>{@link #create}: streams with bounded memory. Bytes collect in a part buffer; the first
 *       full part starts a multipart upload and parts upload in parallel on the store's executor,
 *       at most {@code uploadParallelism} per writer. {@code commit()} completes the upload (or, for
 *       an object smaller than one part, is a single PutObject): the object appears atomically,
 *       replacing any object at the key. {@code close()} without commit aborts the multipart upload.
 *   <li>{@link #createIfAbsent}: one PutObject with {@code If-None-Match: *}: atomic, exactly one
 *       concurrent caller wins (412 for the others). After a 412 the object is read back: if it
 *       holds exactly our bytes (our first attempt won but its response was lost, and the SDK's
 *       retry got the 412) it is our win. A timeout or connection failure whose effect cannot be
 *       read back is {@link CommitStateUnknownException}. With {@code conditionalWrites=false}:
 *       HEAD, then PutObject, then a read-back comparing content; two racing callers can both see
 *       the key absent, so this is <b>not</b> race-free, only usable with a single committer.
 *   <li>{@link #read}: a ranged GET. A missing key is {@link NoSuchObjectException} at open; a range
 *       past the end is {@link EOFException} when read. A connection failure midway through the
 *       stream is not retried: the caller re-opens the range.
 *   <li>{@link #stat}: HEAD; a missing key is empty.
 *   <li>{@link #list}, {@link #listAfter}: paginated ListObjectsV2 ({@code StartAfter} for
 *       listAfter); strongly consistent on AWS S3; unfinished uploads are never listed. Objects
 *       whose names are not valid keys (folder markers ending in '/', '//' in names) are skipped.
 *   <li>{@link #delete}: DeleteObject, a missing key is not an error; {@link #deleteAll}: DeleteObjects
 *       in batches of 1000, each key atomic on its own, the batch not.
 * </ul>
 *
 * <p>Every request is retried by the SDK's standard strategy, configured here explicitly: up to
 * {@code maxAttempts} attempts with exponential backoff and jitter for 5xx, 503 SlowDown
 * (throttling, with a longer backoff) and I/O errors such as connection resets.
 */
final class S3CheckpointStore implements CheckpointStore {
    private static final Logger LOG = LoggerFactory.getLogger(S3CheckpointStore.class);
    private static final int MAX_PARTS = 10_000;
    private static final int DELETE_BATCH = 1000;
    private static final AtomicInteger STORE_IDS = new AtomicInteger();

    private final StorageUri uri;
    private final S3Options options;
    private final S3Client s3;
    private final String bucket;
    /** Object name prefix of every key: "" or "prefix/". */
    private final String base;
    private final ExecutorService uploads;
    private volatile boolean closed;

    private S3CheckpointStore(StorageUri uri, S3Options options, S3Client s3) {
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

    static S3CheckpointStore open(StorageUri uri) throws IOException {
        S3Options options = S3Options.of(uri);
        S3Client s3;
        try {
            s3 = client(options);
        } catch (SdkException e) {
            throw new StorageUnavailableException("cannot configure S3 client for " + uri + ": " + e.getMessage(), e);
        }
        S3CheckpointStore store = new S3CheckpointStore(uri, options, s3);
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
        Region region = options.region().map(Region::of).orElseGet(S3CheckpointStore::defaultRegion);
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

    private void checkBucket() throws IOException {
        try {
            s3.headBucket(b -> b.bucket(bucket));
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
            throw new StorageUnavailableException("cannot reach " + uri + ": " + e.getMessage(), e);
        }
    }

    @Override
    public StorageUri uri() {
        return uri;
    }

    private String objectKey(String key) {
        return base + Keys.check(key);
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new StorageException("store " + uri + " is closed");
        }
    }

    private StorageException failure(String what, String key, Exception e) {
        return new StorageException(what + " " + uri.resolve(key) + " failed: " + e.getMessage(), e);
    }

    // ------------------------------------------------------------------ writes

    @Override
    public ObjectWriter create(String key) throws IOException {
        String objectKey = objectKey(key);
        checkOpen();
        return new S3Writer(key, objectKey);
    }

    /**
     * Buffers up to one part; full parts go to the upload executor, at most
     * {@code uploadParallelism} at a time, so memory stays at (parallelism + 1) part buffers.
     */
    private final class S3Writer extends ObjectWriter {
        private final String objectKey;
        private final int partSize = options.partSize();
        private final Semaphore inFlight = new Semaphore(options.uploadParallelism());
        private final List<Future<CompletedPart>> parts = new ArrayList<>();
        private final AtomicReference<Throwable> partFailure = new AtomicReference<>();
        private byte[] buf = new byte[64 * 1024];
        private int len;
        private String uploadId;

        S3Writer(String key, String objectKey) {
            super(key);
            this.objectKey = objectKey;
        }

        private void checkWritable() throws IOException {
            if (isClosed()) {
                throw new StorageException("writer of " + uri.resolve(key()) + " is closed");
            }
            Throwable failed = partFailure.get();
            if (failed != null) {
                throw failure("upload of a part of", key(), failed instanceof Exception ex ? ex : new RuntimeException(failed));
            }
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int n) throws IOException {
            java.util.Objects.checkFromIndexSize(off, n, b.length);
            checkWritable();
            while (n > 0) {
                if (len == partSize) {
                    uploadBufferAsPart();
                }
                int chunk = Math.min(n, partSize - len);
                ensureCapacity(len + chunk);
                System.arraycopy(b, off, buf, len, chunk);
                len += chunk;
                off += chunk;
                n -= chunk;
                counted(chunk);
            }
        }

        /** Grows the buffer by doubling up to one part, so small objects stay small in memory. */
        private void ensureCapacity(int needed) {
            if (needed > buf.length) {
                buf = Arrays.copyOf(buf, Math.min(partSize, Math.max(needed, buf.length * 2)));
            }
        }

        private void uploadBufferAsPart() throws IOException {
            if (uploadId == null) {
                try {
                    uploadId = s3.createMultipartUpload(r -> r.bucket(bucket).key(objectKey)).uploadId();
                } catch (SdkException e) {
                    throw failure("starting multipart upload of", key(), e);
                }
            }
            int partNumber = parts.size() + 1;
            if (partNumber > MAX_PARTS) {
                throw new StorageException("object " + uri.resolve(key()) + " needs more than " + MAX_PARTS
                        + " parts of " + partSize + " bytes; raise the partSize option");
            }
            try {
                inFlight.acquire();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while uploading " + uri.resolve(key()));
            }
            if (partFailure.get() != null) {
                inFlight.release();
                checkWritable(); // throws: an earlier part failed, later ones are useless
            }
            byte[] data = buf;
            int length = len;
            String upload = uploadId;
            buf = new byte[partSize];
            len = 0;
            try {
                parts.add(uploads.submit(() -> {
                    try {
                        UploadPartResponse response = s3.uploadPart(r -> r.bucket(bucket).key(objectKey)
                                        .uploadId(upload).partNumber(partNumber).contentLength((long) length),
                                RequestBody.fromContentProvider(() -> new ByteArrayInputStream(data, 0, length), length,
                                        "application/octet-stream"));
                        return CompletedPart.builder().partNumber(partNumber).eTag(response.eTag()).build();
                    } catch (RuntimeException | Error e) {
                        partFailure.compareAndSet(null, e);
                        throw e;
                    } finally {
                        inFlight.release();
                    }
                }));
            } catch (java.util.concurrent.RejectedExecutionException e) {
                inFlight.release();
                throw new StorageException("store " + uri + " is closed; cannot upload " + uri.resolve(key()), e);
            }
        }

        @Override
        public void commit() throws IOException {
            checkWritable();
            try {
                if (uploadId == null) {
                    putSingle();
                } else {
                    completeMultipart();
                }
                markCommitted();
            } finally {
                close();
            }
        }

        private void putSingle() throws IOException {
            byte[] data = buf;
            int length = len;
            try {
                s3.putObject(r -> r.bucket(bucket).key(objectKey).contentLength((long) length),
                        RequestBody.fromContentProvider(() -> new ByteArrayInputStream(data, 0, length), length,
                                "application/octet-stream"));
            } catch (SdkException e) {
                throw failure("commit (PutObject) of", key(), e);
            }
        }

        private void completeMultipart() throws IOException {
            if (len > 0) {
                uploadBufferAsPart();
            }
            List<CompletedPart> completed = new ArrayList<>(parts.size());
            for (Future<CompletedPart> part : parts) {
                completed.add(await(part));
            }
            try {
                s3.completeMultipartUpload(r -> r.bucket(bucket).key(objectKey).uploadId(uploadId)
                        .multipartUpload(m -> m.parts(completed)));
            } catch (SdkException e) {
                throw failure("commit (CompleteMultipartUpload) of", key(), e);
            }
        }

        private CompletedPart await(Future<CompletedPart> part) throws IOException {
            try {
                return part.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while uploading " + uri.resolve(key()));
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                throw failure("upload of a part of", key(), cause instanceof Exception ex ? ex : e);
            }
        }

        /** Without a commit, waits for parts in flight and aborts the multipart upload. */
        @Override
        protected void release(boolean committed) {
            buf = null;
            if (committed || uploadId == null) {
                return;
            }
            // parts still uploading would otherwise be stored after the abort
            for (Future<CompletedPart> part : parts) {
                try {
                    part.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                } catch (ExecutionException e) {
                    // the upload is being discarded anyway
                }
            }
            try {
                s3.abortMultipartUpload(r -> r.bucket(bucket).key(objectKey).uploadId(uploadId));
            } catch (SdkException e) {
                LOG.warn("could not abort multipart upload {} of {}; a bucket lifecycle rule has to remove it",
                        uploadId, uri.resolve(key()), e);
            }
        }
    }

    /**
     * Creates {@code key} only if no object exists there: a conditional PutObject (or, with
     * {@code conditionalWrites=false}, a check-then-put that is not race-free). See the class comment
     * for how lost responses and unknown outcomes are resolved.
     */
    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        String objectKey = objectKey(key);
        checkOpen();
        return options.conditionalWrites()
                ? createConditionally(key, objectKey, content)
                : createByCheckThenPut(key, objectKey, content);
    }

    private boolean createConditionally(String key, String objectKey, byte[] content) throws IOException {
        int conflicts = 0;
        while (true) {
            try {
                s3.putObject(r -> r.bucket(bucket).key(objectKey).ifNoneMatch("*").contentLength((long) content.length),
                        RequestBody.fromBytes(content));
                return true;
            } catch (S3Exception e) {
                if (e.statusCode() == 412) {
                    // someone else's object, or ours if a retry followed a lost success response
                    return holdsContent(key, objectKey, content).orElse(false);
                }
                if (e.statusCode() == 409 && ++conflicts < 5) {
                    // ConditionalRequestConflict: a concurrent conditional write to the key; retry
                    backoff(conflicts);
                    continue;
                }
                if (e.statusCode() >= 500 || e.statusCode() == 409) {
                    return resolveUnknown(key, objectKey, content, e);
                }
                throw failure("atomic create of", key, e);
            } catch (SdkClientException e) {
                return resolveUnknown(key, objectKey, content, e);
            } catch (SdkException e) {
                throw failure("atomic create of", key, e);
            }
        }
    }

    /** The request may have taken effect: read back; an absent object may still be a PUT in flight. */
    private boolean resolveUnknown(String key, String objectKey, byte[] content, SdkException e) throws IOException {
        Optional<Boolean> ours;
        try {
            ours = holdsContent(key, objectKey, content);
        } catch (IOException recheck) {
            e.addSuppressed(recheck);
            ours = Optional.empty();
        }
        if (ours.isPresent()) {
            return ours.get();
        }
        throw new CommitStateUnknownException("atomic create of " + uri.resolve(key)
                + " may or may not have taken effect: " + e.getMessage(), e);
    }

    private boolean createByCheckThenPut(String key, String objectKey, byte[] content) throws IOException {
        if (stat(key).isPresent()) {
            return false;
        }
        try {
            s3.putObject(r -> r.bucket(bucket).key(objectKey).contentLength((long) content.length), RequestBody.fromBytes(content));
        } catch (SdkException e) {
            throw failure("create (check-then-put) of", key, e);
        }
        return holdsContent(key, objectKey, content).orElse(false);
    }

    /**
     * Whether the object holds exactly {@code content}; empty when there is no object. Reads at most
     * {@code content.length} bytes, whatever the size of the object found.
     */
    private Optional<Boolean> holdsContent(String key, String objectKey, byte[] content) throws IOException {
        try {
            HeadObjectResponse head = s3.headObject(r -> r.bucket(bucket).key(objectKey));
            if (head.contentLength() != content.length) {
                return Optional.of(false);
            }
            if (content.length == 0) {
                return Optional.of(true);
            }
            byte[] stored = s3.getObjectAsBytes(r -> r.bucket(bucket).key(objectKey)
                    .range("bytes=0-" + (content.length - 1))).asByteArrayUnsafe();
            return Optional.of(Arrays.equals(stored, content));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw failure("read-back of", key, e);
        } catch (SdkException e) {
            throw failure("read-back of", key, e);
        }
    }

    private static void backoff(int attempt) throws InterruptedIOException {
        try {
            Thread.sleep(Math.min(1000, 50L << attempt) + java.util.concurrent.ThreadLocalRandom.current().nextInt(50));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        }
    }

    // ------------------------------------------------------------------ reads

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        String objectKey = objectKey(key);
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
        checkOpen();
        if (length == 0) {
            if (stat(key).isEmpty()) {
                throw new NoSuchObjectException(uri, key);
            }
            return InputStream.nullInputStream();
        }
        ResponseInputStream<GetObjectResponse> response;
        try {
            response = s3.getObject(r -> r.bucket(bucket).key(objectKey).range("bytes=" + offset + "-" + (offset + length - 1)));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                throw new NoSuchObjectException(uri, key);
            }
            if (e.statusCode() == 416) {
                return RangeInputStream.pastEnd(length, uri.resolve(key));
            }
            throw failure("ranged read of", key, e);
        } catch (SdkException e) {
            throw failure("ranged read of", key, e);
        }
        InputStream body = new AbortingInputStream(response);
        if (response.response().contentRange() == null && offset > 0) {
            // a server that ignored the Range header sent the whole object
            long skipped = body.skip(offset);
            if (skipped < offset) {
                body.close();
                return RangeInputStream.pastEnd(length, uri.resolve(key));
            }
        }
        return new RangeInputStream(body, length, uri.resolve(key));
    }

    /**
     * Closing before the whole response body was read aborts the connection instead of draining the
     * rest; a fully read body lets the connection go back to the pool.
     */
    private static final class AbortingInputStream extends FilterInputStream {
        private final ResponseInputStream<?> response;
        private long remaining;

        AbortingInputStream(ResponseInputStream<GetObjectResponse> response) {
            super(response);
            this.response = response;
            Long length = response.response().contentLength();
            this.remaining = length == null ? Long.MAX_VALUE : length;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            remaining = b < 0 ? 0 : remaining - 1;
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            remaining = n < 0 ? 0 : remaining - n;
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long skipped = super.skip(n);
            remaining -= skipped;
            return skipped;
        }

        @Override
        public void close() throws IOException {
            if (remaining > 0) {
                response.abort();
            }
            super.close();
        }
    }

    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        String objectKey = objectKey(key);
        checkOpen();
        try {
            HeadObjectResponse head = s3.headObject(r -> r.bucket(bucket).key(objectKey));
            return Optional.of(new ObjectInfo(key, head.contentLength(), head.lastModified()));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw failure("stat of", key, e);
        } catch (SdkException e) {
            throw failure("stat of", key, e);
        }
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        return listObjects(prefix, null);
    }

    /** Starts the listing at {@code startAfter} on the server (ListObjectsV2 StartAfter). */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        return listObjects(prefix, java.util.Objects.requireNonNull(startAfter, "startAfter is null"));
    }

    private List<ObjectInfo> listObjects(String prefix, String startAfter) throws IOException {
        Keys.checkPrefix(prefix);
        checkOpen();
        ListObjectsV2Request.Builder request = ListObjectsV2Request.builder().bucket(bucket).prefix(base + prefix);
        if (startAfter != null && !startAfter.isEmpty()) {
            request.startAfter(base + startAfter);
        }
        List<ObjectInfo> result = new ArrayList<>();
        try {
            for (S3Object object : s3.listObjectsV2Paginator(request.build()).contents()) {
                String key = object.key().substring(base.length());
                if (!isValidKey(key) || (startAfter != null && key.compareTo(startAfter) <= 0)) {
                    continue;
                }
                result.add(new ObjectInfo(key, object.size(), object.lastModified()));
            }
        } catch (SdkException e) {
            throw new StorageException("listing " + uri.resolve(prefix) + " failed: " + e.getMessage(), e);
        }
        // S3 sorts by UTF-8 bytes; sort by String order like every other backend (equal for ASCII)
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    private static boolean isValidKey(String key) {
        try {
            Keys.check(key);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ deletes

    @Override
    public void delete(String key) throws IOException {
        String objectKey = objectKey(key);
        checkOpen();
        try {
            s3.deleteObject(r -> r.bucket(bucket).key(objectKey));
        } catch (SdkException e) {
            throw failure("delete of", key, e);
        }
    }

    /** DeleteObjects in batches of 1000; every key is validated before anything is deleted. */
    @Override
    public void deleteAll(Collection<String> keys) throws IOException {
        List<String> objectKeys = new ArrayList<>(new LinkedHashSet<>(keys.stream().map(this::objectKey).toList()));
        checkOpen();
        for (int from = 0; from < objectKeys.size(); from += DELETE_BATCH) {
            List<ObjectIdentifier> batch = objectKeys.subList(from, Math.min(objectKeys.size(), from + DELETE_BATCH))
                    .stream().map(k -> ObjectIdentifier.builder().key(k).build()).toList();
            DeleteObjectsResponse response;
            try {
                response = s3.deleteObjects(r -> r.bucket(bucket).delete(d -> d.objects(batch).quiet(true)));
            } catch (SdkException e) {
                throw new StorageException("deleting " + batch.size() + " objects below " + uri + " (first "
                        + uri.resolve(batch.get(0).key().substring(base.length())) + ") failed: " + e.getMessage(), e);
            }
            List<String> errors = response.errors().stream()
                    .filter(err -> !"NoSuchKey".equals(err.code()))
                    .map(err -> uri.resolve(err.key().substring(Math.min(base.length(), err.key().length()))) + ": " + err.code() + " " + err.message())
                    .toList();
            if (!errors.isEmpty()) {
                throw new StorageException("deleting objects below " + uri + " failed for " + errors.size() + ": "
                        + errors.subList(0, Math.min(5, errors.size())));
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        uploads.shutdownNow();
        s3.close();
    }

    @Override
    public String toString() {
        return "S3CheckpointStore[" + uri + "]";
    }
}
