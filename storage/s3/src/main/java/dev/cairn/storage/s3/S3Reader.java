package dev.cairn.storage.s3;

import dev.cairn.storage.NoSuchObjectException;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.RangeInputStream;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUri;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Optional;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;

/** Ranged GETs and HEADs of one store. */
final class S3Reader {
    private final StorageUri uri;
    private final S3Client s3;
    private final String bucket;
    private final S3Bucket b;

    S3Reader(S3Bucket b) {
        this.b = b;
        this.uri = b.uri();
        this.s3 = b.s3();
        this.bucket = b.bucket();
    }

    InputStream read(String key, long offset, long length) throws IOException {
        String objectKey = b.objectKey(key);
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range [" + offset + ", +" + length + ") of " + uri.resolve(key));
        }
        b.checkOpen();
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
            throw b.failure("ranged read of", key, e);
        } catch (SdkException e) {
            throw b.failure("ranged read of", key, e);
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

    Optional<ObjectInfo> stat(String key) throws IOException {
        String objectKey = b.objectKey(key);
        b.checkOpen();
        try {
            HeadObjectResponse head = s3.headObject(r -> r.bucket(bucket).key(objectKey));
            return Optional.of(new ObjectInfo(key, head.contentLength(), head.lastModified()));
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                return Optional.empty();
            }
            throw b.failure("stat of", key, e);
        } catch (SdkException e) {
            throw b.failure("stat of", key, e);
        }
    }
}
