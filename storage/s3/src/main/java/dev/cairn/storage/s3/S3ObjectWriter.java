package dev.cairn.storage.s3;

import dev.cairn.storage.ObjectWriter;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUri;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * A streaming write of one object. Buffers up to one part; full parts go to the store's upload executor, at most
 * {@code uploadParallelism} at a time, so memory stays at (parallelism + 1) part buffers. {@code commit()} completes
 * the multipart upload (or is one PutObject for an object smaller than a part); {@code close()} without commit aborts it.
 */
final class S3ObjectWriter extends ObjectWriter {
    private static final Logger LOG = LoggerFactory.getLogger(S3ObjectWriter.class);
    private static final int MAX_PARTS = 10_000;
    private final String objectKey;
    private final java.util.concurrent.ExecutorService uploads;
    private final StorageUri uri;
    private final S3Options options;
    private final S3Client s3;
    private final String bucket;
    private final S3Bucket b;

    S3ObjectWriter(S3Bucket b, String key, String objectKey) {
        super(key);
        this.b = b;
        this.uri = b.uri();
        this.options = b.options();
        this.s3 = b.s3();
        this.bucket = b.bucket();
        this.objectKey = objectKey;
        this.uploads = b.uploads();
        this.partSize = options.partSize();
        this.inFlight = new Semaphore(options.uploadParallelism());
    }

    private StorageException failure(String what, String key, Exception e) {
        return b.failure(what, key, e);
    }

    private final int partSize;
    private final Semaphore inFlight;
    private final List<Future<CompletedPart>> parts = new ArrayList<>();
    private final AtomicReference<Throwable> partFailure = new AtomicReference<>();
    private byte[] buf = new byte[64 * 1024];
    private int len;
    private String uploadId;

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
