package dev.cairn.storage.s3;

import dev.cairn.storage.Keys;
import dev.cairn.storage.ObjectInfo;
import dev.cairn.storage.StorageException;
import dev.cairn.storage.StorageUri;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.S3Object;

/** Listings (ListObjectsV2) and deletes (DeleteObject, DeleteObjects) of one store. */
final class S3Namespace {
    private final StorageUri uri;
    private final S3Client s3;
    private final String bucket;
    private final String base;
    private final S3Bucket b;

    S3Namespace(S3Bucket b) {
        this.b = b;
        this.uri = b.uri();
        this.s3 = b.s3();
        this.bucket = b.bucket();
        this.base = b.base();
    }

    private static final int DELETE_BATCH = 1000;

    List<ObjectInfo> list(String prefix) throws IOException {
        return listObjects(prefix, null);
    }

    /** Starts the listing at {@code startAfter} on the server (ListObjectsV2 StartAfter). */
    List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        return listObjects(prefix, java.util.Objects.requireNonNull(startAfter, "startAfter is null"));
    }

    private List<ObjectInfo> listObjects(String prefix, String startAfter) throws IOException {
        Keys.checkPrefix(prefix);
        b.checkOpen();
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

    void delete(String key) throws IOException {
        String objectKey = b.objectKey(key);
        b.checkOpen();
        try {
            s3.deleteObject(r -> r.bucket(bucket).key(objectKey));
        } catch (SdkException e) {
            throw b.failure("delete of", key, e);
        }
    }

    /** DeleteObjects in batches of 1000; every key is validated before anything is deleted. */
    void deleteAll(Collection<String> keys) throws IOException {
        List<String> objectKeys = new ArrayList<>(new LinkedHashSet<>(keys.stream().map(b::objectKey).toList()));
        b.checkOpen();
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
}
