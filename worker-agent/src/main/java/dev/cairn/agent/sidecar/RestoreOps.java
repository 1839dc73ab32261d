package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.RestoredCheckpoint;
import dev.cairn.storage.DType;
import dev.cairn.storage.LogicalTensor;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.RegionRead;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The restore operations (blocking thread): {@code restore_open} opens a committed checkpoint
 * through the agent, {@code restore_read} reads entries (CRC32C checked) into a region of the
 * shared file, freed by the next read or {@code restore_close}; {@code restore_region} reads a
 * region of a sharded tensor saved by any world size the same way. Manifests of format v1 carry no
 * element types: every entry is reported as {@code bytes} of shape {@code [length]}.
 */
final class RestoreOps {
    private final CairnAgent agent;
    private final SharedStaging staging;
    private final Duration busyTimeout;
    private final Map<Long, RestoredCheckpoint> open = new HashMap<>();
    private long region = -1;

    RestoreOps(CairnAgent agent, SharedStaging staging, Duration busyTimeout) {
        this.agent = agent;
        this.staging = staging;
        this.busyTimeout = busyTimeout;
    }

    ObjectNode open(JsonNode request) throws Exception {
        JsonNode s = request.get("step");
        // without a step: the newest checkpoint the coordinator announced, also one committed after the join
        long latest = agent.lastCommittedStep();
        Optional<RestoredCheckpoint> r = s != null && !s.isNull() ? agent.restore(Json.step(request))
                : latest >= 0 ? agent.restore(latest) : agent.restoreLatest();
        if (r.isEmpty()) {
            if (s != null && !s.isNull()) {
                throw new RequestException("NotFound", "no committed checkpoint of step " + s + " in this run's storage");
            }
            return Json.object().putNull("step");
        }
        RestoredCheckpoint c = r.get();
        open.put(c.step(), c);
        ObjectNode out = Json.object().put("step", c.step()).put("save_id", c.saveId()).put("world_size", c.worldSize());
        out.set("metadata", Frames.JSON.valueToTree(c.metadata()));
        ArrayNode entries = out.putArray("entries");
        for (Manifest.EntryRef e : c.manifest().entriesFor(agent.workerIndex())) {
            Manifest.Tensor t = e.tensor();
            ObjectNode entry = entries.addObject().put("name", e.name()).put("dtype", t.dtype().numpyName()).put("length", c.manifest().logicalLength(e))
                    .put("replicated", e.replicated());
            entry.set("shape", Json.array(t.shape()));
            if (t.globalShape() != null) {
                entry.set("global_shape", Json.array(t.globalShape()));
                entry.set("global_offsets", Json.array(t.globalOffsets()));
            }
        }
        // every sharded tensor, whichever worker saved its pieces: what a client of another world size can ask regions of
        ArrayNode tensors = out.putArray("tensors");
        for (LogicalTensor t : c.tensors()) {
            if (t.kind() == LogicalTensor.Kind.SHARDED) {
                tensors.addObject().put("name", t.name()).put("dtype", t.dtype().numpyName()).set("global_shape", Json.array(t.globalShape()));
            }
        }
        return out;
    }

    /**
     * {@code restore_region}: the region {@code [offsets, offsets + shape)} of the global tensor
     * {@code name}, read from the pieces that overlap it into a reserved region of the shared file.
     */
    ObjectNode region(JsonNode request) throws Exception {
        RestoredCheckpoint c = opened(request);
        JsonNode nameNode = request.get("name");
        if (nameNode == null || !nameNode.isTextual()) {
            throw RequestException.badRequest("'name' must be a string");
        }
        String name = nameNode.asText();
        JsonNode dtypeNode = request.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw RequestException.badRequest("'dtype' must be a dtype name");
        }
        DType dtype = DType.fromNumpyName(dtypeNode.asText());
        long[] offsets = longs(request, "offsets");
        long[] shape = longs(request, "shape");
        if (c.manifest().entries().stream().noneMatch(e -> e.name().equals(name))) {
            throw new RequestException("NotFound", "checkpoint of step " + c.step() + " has no entry '" + name + "'");
        }
        long length;
        try {
            length = dtype.byteLength(shape);
        } catch (ArithmeticException e) {
            throw RequestException.badRequest("region " + Arrays.toString(shape) + " of entry '" + name + "' exceeds 2^63 bytes");
        }
        if (length > staging.capacity()) {
            throw RequestException.badRequest("region " + Arrays.toString(shape) + " of entry '" + name + "' is " + length
                    + " bytes, more than the " + staging.capacity() + " bytes of shared staging; split it along dimension 0");
        }
        freeRegion();
        long base = staging.allocate(length, busyTimeout.toMillis());
        if (base < 0) {
            throw new RequestException("Busy", "no " + length + " bytes of shared staging free within " + busyTimeout.toMillis() + " ms");
        }
        region = base;
        RegionRead read;
        try {
            read = c.read(name, dtype, offsets, shape, staging.slice(base, length));
        } catch (Exception e) {
            freeRegion();
            throw e;
        }
        return Json.object().put("offset", base).put("length", length).put("bytes_read", read.bytesRead());
    }

    private static long[] longs(JsonNode request, String field) throws RequestException {
        JsonNode a = request.get(field);
        if (a == null || !a.isArray() || a.size() > Manifest.Tensor.MAX_RANK) {
            throw RequestException.badRequest("'" + field + "' must be a list of at most " + Manifest.Tensor.MAX_RANK + " integers");
        }
        long[] values = new long[a.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = a.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw RequestException.badRequest("'" + field + "' must be a list of integers ≥ 0, not " + a);
            }
            values[i] = v.asLong();
        }
        return values;
    }

    ObjectNode read(JsonNode request) throws Exception {
        RestoredCheckpoint c = opened(request);
        JsonNode names = request.get("names");
        if (names == null || !names.isArray()) {
            throw RequestException.badRequest("'names' must be a list");
        }
        List<Manifest.EntryRef> refs = new ArrayList<>();
        List<Long> lengths = new ArrayList<>(); // logical: a replicated entry is the sum of its pieces
        long total = 0;
        for (JsonNode n : names) {
            String name = n.asText();
            Manifest.EntryRef ref = c.manifest().entry(agent.workerIndex(), name).orElseThrow(() -> new RequestException(
                    "NotFound", "checkpoint of step " + c.step() + " has no entry '" + name + "' for worker " + agent.workerIndex()));
            refs.add(ref);
            lengths.add(c.manifest().logicalLength(ref));
            total += align(lengths.get(lengths.size() - 1));
        }
        freeRegion();
        long base = staging.allocate(total, busyTimeout.toMillis());
        if (base < 0) {
            throw new RequestException("Busy", "no " + total + " bytes of shared staging free within " + busyTimeout.toMillis() + " ms");
        }
        region = base;
        ObjectNode out = Json.object();
        ArrayNode placed = out.putArray("entries");
        long at = base;
        byte[] buffer = new byte[1 << 20];
        for (int i = 0; i < refs.size(); i++) {
            Manifest.EntryRef ref = refs.get(i);
            long length = lengths.get(i);
            ByteBuffer dst = staging.slice(at, length);
            try (InputStream in = c.open(ref.name())) {
                int n;
                while ((n = in.read(buffer)) > 0) {
                    if (n > dst.remaining()) {
                        throw new IOException("entry '" + ref.name() + "' is longer than its manifest says");
                    }
                    dst.put(buffer, 0, n);
                }
            }
            placed.addObject().put("name", ref.name()).put("offset", at).put("length", length);
            at += align(length);
        }
        return out;
    }

    ObjectNode close(JsonNode request) throws RequestException {
        open.remove(Json.step(request));
        freeRegion();
        return Json.object();
    }

    private RestoredCheckpoint opened(JsonNode request) throws RequestException {
        long step = Json.step(request);
        RestoredCheckpoint c = open.get(step);
        if (c == null) {
            throw RequestException.badRequest("checkpoint of step " + step + " is not open (restore_open first)");
        }
        return c;
    }

    private void freeRegion() {
        if (region >= 0) {
            staging.free(region);
            region = -1;
        }
    }

    private static long align(long n) {
        return (n + SharedStaging.ALIGN - 1) / SharedStaging.ALIGN * SharedStaging.ALIGN;
    }
}
