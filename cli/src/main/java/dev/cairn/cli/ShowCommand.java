package dev.cairn.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "show", description = "Show one checkpoint's manifest: shards, entries, metadata (the newest by default).")
final class ShowCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--json", description = "Print JSON.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        try (CheckpointStore store = storage.open()) {
            Manifest m = StorageOption.select(new CheckpointCatalog(store), step);
            if (json) {
                ObjectNode n = ListCommand.summary(m);
                ArrayNode shards = n.putArray("shardObjects");
                for (Manifest.ShardRef s : m.shards()) {
                    shards.addObject().put("worker", s.worker()).put("object", s.objectKey()).put("length", s.length())
                            .put("crc32c", ManifestCodec.hex(s.crc32c()));
                }
                ArrayNode entries = n.putArray("entryIndex");
                for (Manifest.EntryRef e : m.entries()) {
                    ObjectNode entry = entries.addObject().put("name", e.name()).put("worker", e.worker()).put("offset", e.offset())
                            .put("length", e.length()).put("crc32c", ManifestCodec.hex(e.crc32c())).put("replicated", e.replicated())
                            .put("dtype", e.tensor().dtype().numpyName());
                    if (e.replicated()) {
                        entry.put("entryOffset", e.entryOffset());
                    }
                    e.tensor().shape().forEach(entry.putArray("shape")::add);
                    if (e.tensor().globalShape() != null) {
                        e.tensor().globalShape().forEach(entry.putArray("globalShape")::add);
                        e.tensor().globalOffsets().forEach(entry.putArray("globalOffsets")::add);
                    }
                }
                tensors(n.putArray("tensors"), store, m);
                System.out.println(ListCommand.JSON.writeValueAsString(n));
                return 0;
            }
            System.out.printf("checkpoint  step %d, save %s, run %s%n", m.step(), m.saveId(), m.runId());
            System.out.printf("created     %s%n", m.createdAt());
            System.out.printf("world size  %d, %d entries, %d bytes%n", m.worldSize(), m.entries().size(), m.totalBytes());
            if (!m.metadata().isEmpty()) {
                System.out.printf("metadata    %s%n", m.metadata());
            }
            System.out.println("shards:");
            for (Manifest.ShardRef s : m.shards()) {
                System.out.printf("  worker %-4d %12d bytes  crc32c %s  %s%n", s.worker(), s.length(), ManifestCodec.hex(s.crc32c()),
                        s.objectKey() == null ? "(empty)" : store.uri().resolve(s.objectKey()));
            }
            System.out.println("entries:");
            for (Manifest.EntryRef e : m.entries()) {
                System.out.printf("  %-40s worker %-4d %12d bytes%s%n", e.name(), e.worker(), e.length(), e.replicated() ? "  (replicated, bytes from " + e.entryOffset() + ")" : "");
            }
            return 0;
        }
    }

    /** Each logical tensor: name, dtype, globalShape, kind and its pieces (boxes of a sharded tensor, byte pieces otherwise). */
    private static void tensors(ArrayNode out, CheckpointStore store, Manifest m) throws java.io.IOException {
        // a manifest that validated has pieces that agree and do not overlap (validation includes the logical-tensor rules)
        for (LogicalTensor t : new CheckpointCatalog(store).tensors(m)) {
            ObjectNode n = out.addObject().put("name", t.name()).put("dtype", t.dtype().numpyName()).put("kind", t.kind().name().toLowerCase(java.util.Locale.ROOT));
            t.globalShape().forEach(n.putArray("globalShape")::add);
            ArrayNode pieces = n.putArray("pieces");
            for (LogicalTensor.Piece p : t.pieces()) {
                for (Manifest.EntryRef e : m.pieces(p.entry())) {
                    ObjectNode o = pieces.addObject().put("worker", e.worker());
                    if (e.replicated()) {
                        o.put("entryOffset", e.entryOffset());
                    } else {
                        p.offsets().forEach(o.putArray("offsets")::add);
                        p.shape().forEach(o.putArray("shape")::add);
                    }
                    o.put("object", m.shard(e.worker()).objectKey()).put("offset", e.offset()).put("length", e.length());
                }
            }
        }
    }
}
