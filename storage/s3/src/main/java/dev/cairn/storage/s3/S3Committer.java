package dev.cairn.storage.s3;

import dev.cairn.storage.CommitStateUnknownException;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.Arrays;
import java.util.Optional;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** {@link S3CheckpointStore#createIfAbsent}: the conditional PutObject that commits a checkpoint, and how an unknown outcome is resolved. */
final class S3Committer {
    private final StorageUri uri;
    private final S3Options options;
    private final S3Client s3;
    private final String bucket;
    private final S3Bucket b;

    private final S3Reader reader;

    S3Committer(S3Bucket b, S3Reader reader) {
        this.reader = reader;
        this.b = b;
        this.uri = b.uri();
        this.options = b.options();
        this.s3 = b.s3();
        this.bucket = b.bucket();
    }

    /**
     * Creates {@code key} only if no object exists there: a conditional PutObject (or, with
     * {@code conditionalWrites=false}, a check-then-put that is not race-free). See the class comment
     * for how lost responses and unknown outcomes are resolved.
     */
    boolean createIfAbsent(String key, byte[] content) throws IOException {
        String objectKey = b.objectKey(key);
        b.checkOpen();
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
                throw b.failure("atomic create of", key, e);
            } catch (SdkClientException e) {
                return resolveUnknown(key, objectKey, content, e);
            } catch (SdkException e) {
                throw b.failure("atomic create of", key, e);
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
        if (reader.stat(key).isPresent()) {
            return false;
        }
        try {
            s3.putObject(r -> r.bucket(bucket).key(objectKey).contentLength((long) content.length), RequestBody.fromBytes(content));
        } catch (SdkException e) {
            throw b.failure("create (check-then-put) of", key, e);
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
            throw b.failure("read-back of", key, e);
        } catch (SdkException e) {
            throw b.failure("read-back of", key, e);
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
}
