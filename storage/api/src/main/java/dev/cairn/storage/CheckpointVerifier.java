package dev.cairn.storage;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;

/**
 * {@link CheckpointCatalog#verify}: reads each shard object once, front to back, checking its
 * length, its CRC32C and every entry's CRC32C.
 */
final class CheckpointVerifier {
    private static final int BUFFER = 1 << 20;

    private final CheckpointStore store;
    private final LongConsumer bytesRead;

    CheckpointVerifier(CheckpointStore store, LongConsumer bytesRead) {
        this.store = store;
        this.bytesRead = bytesRead;
    }

    List<String> verify(Manifest manifest) throws IOException {
        List<String> problems = new ArrayList<>();
        for (Manifest.ShardRef shard : manifest.shards()) {
            if (shard.objectKey() == null) {
                continue;
            }
            String uri = store.uri().resolve(shard.objectKey());
            Optional<ObjectInfo> info = store.stat(shard.objectKey());
            if (info.isEmpty()) {
                problems.add("missing object " + uri + " (shard of worker " + shard.worker() + ")");
                continue;
            }
            if (info.get().length() != shard.length()) {
                problems.add("object " + uri + " has " + info.get().length() + " bytes, manifest says " + shard.length());
                continue;
            }
            List<Manifest.EntryRef> entries = manifest.entries().stream()
                    .filter(e -> e.worker() == shard.worker())
                    .sorted(Comparator.comparingLong(Manifest.EntryRef::offset))
                    .toList();
            verifyObject(shard, entries, uri, problems);
        }
        return problems;
    }

    private void verifyObject(Manifest.ShardRef shard, List<Manifest.EntryRef> entries, String uri, List<String> problems) throws IOException {
        CRC32C whole = new CRC32C();
        CRC32C[] perEntry = new CRC32C[entries.size()];
        for (int i = 0; i < perEntry.length; i++) {
            perEntry[i] = new CRC32C();
        }
        byte[] buf = new byte[BUFFER];
        long pos = 0;
        int first = 0;
        try (InputStream in = store.read(shard.objectKey(), 0, shard.length())) {
            int n;
            while ((n = in.read(buf)) > 0) {
                whole.update(buf, 0, n);
                bytesRead.accept(n);
                long end = pos + n;
                for (int i = first; i < entries.size() && entries.get(i).offset() < end; i++) {
                    Manifest.EntryRef e = entries.get(i);
                    long from = Math.max(pos, e.offset());
                    long to = Math.min(end, e.offset() + e.length());
                    if (to > from) {
                        perEntry[i].update(buf, (int) (from - pos), (int) (to - from));
                    }
                }
                while (first < entries.size() && entries.get(first).offset() + entries.get(first).length() <= end) {
                    first++;
                }
                pos = end;
            }
        } catch (java.io.EOFException e) {
            problems.add("object " + uri + " is truncated at byte " + pos);
            return;
        }
        if ((int) whole.getValue() != shard.crc32c()) {
            problems.add("object " + uri + " fails its checksum (expected crc32c " + ManifestCodec.hex(shard.crc32c())
                    + ", read " + ManifestCodec.hex((int) whole.getValue()) + ")");
        }
        for (int i = 0; i < entries.size(); i++) {
            Manifest.EntryRef e = entries.get(i);
            if ((int) perEntry[i].getValue() != e.crc32c()) {
                problems.add("entry '" + e.name() + "' in " + uri + " fails its checksum");
            }
        }
    }
}
