package dev.cairn.storage;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.List;
import java.util.Optional;

/**
 * The storage a checkpoint lives in: a flat namespace of immutable objects under one root URI.
 * Keys are relative, '/'-separated paths ({@link Keys#check}).
 *
 * <p>The interface is deliberately small. Everything Cairn needs from a backend is a streaming
 * write, a ranged read, a sorted prefix listing, a delete, and one atomic create-if-absent which is
 * the commit point of every checkpoint. Implementations are thread-safe.
 */
public interface CheckpointStore extends Closeable {

    /** The root this store reads and writes below. */
    StorageUri uri();

    /**
     * Opens a streaming write of {@code key}. The object becomes visible only when
     * {@link ObjectWriter#commit()} returns (then it replaces any object at the key); closing the
     * writer without a commit leaves nothing behind at the key.
     *
     * <p>Missing parents: none needed (local and HDFS create directories; S3 has none).
     * Atomicity of {@code commit()}: local, a rename over the key (atomic replace; a file system that
     * cannot rename atomically fails the commit); HDFS, {@code rename(OVERWRITE)}, one NameNode
     * operation; S3, CompleteMultipartUpload or one PutObject (the object appears whole). A crashed
     * writer leaves at most a temp file (local, HDFS: see {@link SupportsAbandonedWrites}) or an
     * unfinished multipart upload (S3), never a partial object at the key.
     */
    ObjectWriter create(String key) throws IOException;

    /**
     * Atomically creates {@code key} with {@code content} if no object exists at the key.
     * Of any number of concurrent callers, from any number of processes, at most one gets
     * {@code true}. The object is durable when this returns.
     *
     * <p>Local: {@code link(2)} of a fsynced temp file (fails if the key exists); a file system
     * without hard links is an error, never a check-then-move. HDFS: {@code rename(NONE)} of an
     * hsynced temp file. S3: PutObject with {@code If-None-Match: *} (with
     * {@code conditionalWrites=false} a check-then-put that is not race-free).
     *
     * @return true if this call created the object, false if one already existed
     * @throws CommitStateUnknownException if the outcome cannot be known (e.g. a timed-out request);
     *     the caller must re-check with {@link #stat} and must not delete what the object references
     */
    boolean createIfAbsent(String key, byte[] content) throws IOException;

    /**
     * Reads {@code length} bytes of {@code key} starting at {@code offset}. A key that names a
     * directory (local, HDFS) is missing. Reads see one version of the object on every backend
     * (objects are immutable; a replaced object is a new file or object).
     *
     * @throws NoSuchObjectException if the object does not exist
     * @throws java.io.EOFException (when read) if the range extends past the end of the object
     */
    InputStream read(String key, long offset, long length) throws IOException;

    /**
     * The object's size and time, or empty when it does not exist (also when the key names a
     * directory on local and HDFS). One stat (local), NameNode call (HDFS) or HEAD (S3).
     */
    Optional<ObjectInfo> stat(String key) throws IOException;

    /**
     * Every object whose key starts with {@code prefix} (recursively), sorted by key. Temporary
     * objects of writes in progress are not listed. A prefix with no objects (or a missing
     * directory) is an empty list. Not a snapshot on any backend: objects created or deleted
     * during the listing may or may not be listed (S3's listing is strongly consistent per page).
     */
    List<ObjectInfo> list(String prefix) throws IOException;

    /**
     * The objects of {@link #list(String)} whose key sorts after {@code startAfter}, with the same
     * missing-prefix and consistency rules. Backends that can start a listing in the middle (S3's
     * StartAfter, HDFS's listing from a name) override this so the cost does not grow with the keys
     * before; local reads directories by name and stats only the entries after.
     */
    default List<ObjectInfo> listAfter(String prefix, String startAfter) throws IOException {
        return list(prefix).stream().filter(o -> o.key().compareTo(startAfter) > 0).toList();
    }

    /**
     * Deletes {@code key}; deleting a missing key is not an error. Atomic on every backend (an
     * unlink, one NameNode operation, one DeleteObject). Local also removes directories left empty;
     * a key that names a directory holding other keys is left alone (local, HDFS).
     */
    void delete(String key) throws IOException;

    /**
     * Deletes every key; missing keys are not an error. Every key is validated before any is
     * deleted; each delete is atomic on its own, the batch is not (S3 sends DeleteObjects in
     * batches of 1000). Backends with bulk deletes override this.
     */
    default void deleteAll(Collection<String> keys) throws IOException {
        for (String key : keys) {
            delete(key);
        }
    }

    /**
     * Reads a whole object. Meant for small objects (manifests, hints).
     *
     * @throws NoSuchObjectException if the object does not exist
     */
    default byte[] readAll(String key) throws IOException {
        ObjectInfo info = stat(key).orElseThrow(() -> new NoSuchObjectException(uri(), key));
        if (info.length() > Integer.MAX_VALUE - 16) {
            throw new StorageException("object too large to read whole: " + uri().resolve(key));
        }
        try (InputStream in = read(key, 0, info.length())) {
            ByteArrayOutputStream out = new ByteArrayOutputStream((int) info.length());
            in.transferTo(out);
            return out.toByteArray();
        }
    }

    /** Writes a whole object, replacing any existing one. Meant for small objects. */
    default void write(String key, byte[] content) throws IOException {
        try (ObjectWriter writer = create(key)) {
            writer.write(content);
            writer.commit();
        }
    }

    /** Releases clients and threads. Idempotent. */
    @Override
    void close() throws IOException;
}
