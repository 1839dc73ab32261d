package dev.cairn.storage.s3;

import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageUri;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import software.amazon.awssdk.services.s3.S3Client;

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
    private final S3Bucket bucket;
    private final S3Committer committer;
    private final S3Reader reader;
    private final S3Namespace namespace;

    private S3CheckpointStore(S3Bucket bucket) {
        this.bucket = bucket;
        this.reader = new S3Reader(bucket);
        this.committer = new S3Committer(bucket, reader);
        this.namespace = new S3Namespace(bucket);
    }

    static S3CheckpointStore open(StorageUri uri) throws IOException {
        return new S3CheckpointStore(S3Bucket.open(uri));
    }

    @Override
    public StorageUri uri() {
        return bucket.uri();
    }

    @Override
    public ObjectWriter create(String key) throws IOException {
        String objectKey = bucket.objectKey(key);
        bucket.checkOpen();
        return new S3ObjectWriter(bucket, key, objectKey);
    }

    /**
     * Creates {@code key} only if no object exists there: a conditional PutObject (or, with
     * {@code conditionalWrites=false}, a check-then-put that is not race-free). See the class comment
     * for how lost responses and unknown outcomes are resolved.
     */
    @Override
    public boolean createIfAbsent(String key, byte[] content) throws IOException {
        return committer.createIfAbsent(key, content);
    }

    @Override
    public InputStream read(String key, long offset, long length) throws IOException {
        return reader.read(key, offset, length);
    }

    @Override
    public Optional<ObjectInfo> stat(String key) throws IOException {
        return reader.stat(key);
    }

    @Override
    public List<ObjectInfo> list(String prefix) throws IOException {
        return namespace.list(prefix);
    }

    /** Starts the listing at {@code startAfter} on the server (ListObjectsV2 StartAfter). */
    @Override
    public List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        return namespace.listAfter(prefix, startAfter);
    }

    @Override
    public void delete(String key) throws IOException {
        namespace.delete(key);
    }

    /** DeleteObjects in batches of 1000; every key is validated before anything is deleted. */
    @Override
    public void deleteAll(Collection<String> keys) throws IOException {
        namespace.deleteAll(keys);
    }

    @Override
    public void close() {
        bucket.close();
    }

    @Override
    public String toString() {
        return "S3CheckpointStore[" + bucket.uri() + "]";
    }
}
