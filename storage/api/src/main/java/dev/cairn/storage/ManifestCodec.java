package dev.cairn.storage;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * JSON form of a {@link Manifest}. The document carries its format version and a checksum:
 * {@code "checksum": "crc32c:xxxxxxxx"} over the compact JSON of the document without the checksum
 * field, in document order. Decoding checks the version first (an unknown version is refused
 * whatever its checksum), then the checksum, then every field and cross-reference.
 */
public final class ManifestCodec {
    /** The version this cairn writes: 2, typed entries. Version 1 (untyped entries) is still read. */
    public static final int FORMAT_VERSION = 2;
    /** The oldest version this cairn reads. */
    public static final int MIN_FORMAT_VERSION = 1;
    /** Most workers a checkpoint may have. */
    public static final int MAX_WORLD_SIZE = 65_536;
    /** Most entries a checkpoint may have. */
    public static final int MAX_ENTRIES = 1_000_000;
    /** Most user metadata fields a checkpoint may have. */
    public static final int MAX_METADATA = 1_000;
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final ObjectMapper PRETTY = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private ManifestCodec() {}

    public static byte[] encode(Manifest m) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("formatVersion", m.formatVersion());
        root.put("runId", m.runId());
        root.put("step", m.step());
        root.put("saveId", m.saveId());
        root.put("createdAt", m.createdAt().toString());
        root.put("worldSize", m.worldSize());
        ArrayNode shards = root.putArray("shards");
        for (Manifest.ShardRef s : m.shards()) {
            ObjectNode n = shards.addObject();
            n.put("worker", s.worker());
            if (s.objectKey() == null) {
                n.putNull("object");
            } else {
                n.put("object", s.objectKey());
            }
            n.put("length", s.length());
            n.put("crc32c", hex(s.crc32c()));
        }
        ArrayNode entries = root.putArray("entries");
        for (Manifest.EntryRef e : m.entries()) {
            ObjectNode n = entries.addObject();
            n.put("name", e.name());
            n.put("worker", e.worker());
            n.put("offset", e.offset());
            n.put("length", e.length());
            n.put("crc32c", hex(e.crc32c()));
            if (e.replicated()) {
                n.put("replicated", true);
            }
            if (m.formatVersion() >= 2) {
                if (e.replicated() || e.entryOffset() != 0) {
                    n.put("entryOffset", e.entryOffset());
                }
                putTensor(n, e.tensor());
            }
        }
        root.set("metadata", MAPPER.valueToTree(m.metadata()));
        try {
            root.put("checksum", "crc32c:" + hex(checksum(root)));
            return PRETTY.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode manifest of step " + m.step(), e);
        }
    }

    private static void putTensor(ObjectNode n, Manifest.Tensor t) {
        n.put("dtype", t.dtype().numpyName());
        t.shape().forEach(n.putArray("shape")::add);
        if (t.globalShape() != null) {
            t.globalShape().forEach(n.putArray("globalShape")::add);
        }
        if (t.globalOffsets() != null) {
            t.globalOffsets().forEach(n.putArray("globalOffsets")::add);
        }
    }

    private static Manifest.Tensor tensor(JsonNode n, int version) {
        if (version < 2) {
            return null;
        }
        DType dtype = DType.fromNumpyName(text(n, "dtype"));
        return new Manifest.Tensor(dtype, longs(n, "shape", true), longs(n, "globalShape", false), longs(n, "globalOffsets", false));
    }

    /** The integers of array {@code field}; null when it is absent and not {@code required}. */
    private static List<Long> longs(JsonNode n, String field, boolean required) {
        JsonNode a = n.get(field);
        if (a == null && !required) {
            return null;
        }
        if (a == null || !a.isArray()) {
            throw new IllegalArgumentException("missing array '" + field + "'");
        }
        if (a.size() > Manifest.Tensor.MAX_RANK) {
            throw new IllegalArgumentException("'" + field + "' has " + a.size() + " dimensions, more than " + Manifest.Tensor.MAX_RANK);
        }
        List<Long> out = new ArrayList<>(a.size());
        for (JsonNode v : a) {
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                throw new IllegalArgumentException("'" + field + "' holds a value that is not a 64-bit integer");
            }
            out.add(v.asLong());
        }
        return out;
    }

    private static int checksum(ObjectNode withoutChecksum) throws JsonProcessingException {
        CRC32C crc = new CRC32C();
        crc.update(MAPPER.writeValueAsBytes(withoutChecksum));
        return (int) crc.getValue();
    }

    public static String hex(int crc) {
        return Layout.hex8(crc);
    }

    /**
     * Decodes and validates a manifest.
     *
     * @param source names the manifest in error messages (its URI)
     * @throws ManifestException naming {@code source} when the manifest is corrupt, of an unknown
     *     version, or inconsistent
     */
    public static Manifest decode(byte[] bytes, String source) throws ManifestException {
        JsonNode parsed;
        try {
            parsed = MAPPER.readTree(bytes);
        } catch (IOException e) {
            throw new ManifestException("manifest " + source + " is not valid JSON (corrupt or truncated): " + firstLine(e.getMessage()));
        }
        if (parsed == null || !parsed.isObject()) {
            throw new ManifestException("manifest " + source + " is not a JSON object (corrupt)");
        }
        ObjectNode root = (ObjectNode) parsed;
        JsonNode version = root.get("formatVersion");
        if (version == null || !version.canConvertToInt()) {
            throw new ManifestException("manifest " + source + " has no formatVersion (corrupt)");
        }
        if (!version.isIntegralNumber() || version.asInt() < MIN_FORMAT_VERSION || version.asInt() > FORMAT_VERSION) {
            throw new ManifestException("manifest " + source + " has unsupported format version " + version.asText()
                    + "; this cairn reads versions " + MIN_FORMAT_VERSION + " to " + FORMAT_VERSION);
        }
        JsonNode checksum = root.remove("checksum");
        if (checksum == null || !checksum.isTextual()) {
            throw new ManifestException("manifest " + source + " has no checksum (corrupt)");
        }
        String actual;
        try {
            actual = "crc32c:" + hex(checksum(root));
        } catch (JsonProcessingException e) {
            throw new ManifestException("manifest " + source + " cannot be re-encoded: " + e.getMessage());
        }
        if (!actual.equals(checksum.asText())) {
            throw new ManifestException("manifest " + source + " fails its checksum (stored " + checksum.asText() + ", computed " + actual + "): corrupt");
        }
        try {
            return validate(toManifest(root), source);
        } catch (RuntimeException e) {
            throw new ManifestException("manifest " + source + " is inconsistent: " + e.getMessage());
        }
    }

    private static Manifest toManifest(ObjectNode root) {
        int version = integer(root, "formatVersion");
        List<Manifest.ShardRef> shards = new ArrayList<>();
        for (JsonNode n : array(root, "shards")) {
            JsonNode object = n.get("object");
            shards.add(new Manifest.ShardRef(
                    integer(n, "worker"),
                    object == null || object.isNull() ? null : object.asText(),
                    longValue(n, "length"),
                    crc(n)));
        }
        List<Manifest.EntryRef> entries = new ArrayList<>();
        for (JsonNode n : array(root, "entries")) {
            entries.add(new Manifest.EntryRef(
                    EntryNames.check(text(n, "name")),
                    integer(n, "worker"),
                    longValue(n, "offset"),
                    longValue(n, "length"),
                    crc(n),
                    n.path("replicated").asBoolean(false),
                    tensor(n, version),
                    n.has("entryOffset") ? longValue(n, "entryOffset") : 0));
        }
        Map<String, Object> metadata = new LinkedHashMap<>();
        JsonNode meta = root.path("metadata");
        for (Iterator<Map.Entry<String, JsonNode>> it = meta.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            JsonNode v = f.getValue();
            Object value;
            if (v.isIntegralNumber()) {
                value = v.asLong();
            } else if (v.isNumber()) {
                value = v.asDouble();
            } else if (v.isBoolean()) {
                value = v.asBoolean();
            } else {
                value = v.asText();
            }
            metadata.put(f.getKey(), value);
        }
        Instant createdAt;
        try {
            createdAt = Instant.parse(text(root, "createdAt"));
        } catch (DateTimeParseException e) {
            throw new IllegalArgumentException("createdAt is not an ISO-8601 instant");
        }
        return new Manifest(integer(root, "formatVersion"), text(root, "runId"), longValue(root, "step"),
                text(root, "saveId"), createdAt, integer(root, "worldSize"), shards, entries, metadata);
    }

    /**
     * Encodes {@code m} and runs on the bytes the very validation {@link #decode} runs: a
     * coordinator commits only bytes that its own reader accepts.
     *
     * @return the encoded manifest, to be written as it is
     * @throws ManifestException naming {@code source} and what is wrong
     */
    public static byte[] encodeForCommit(Manifest m, String source) throws ManifestException {
        byte[] bytes;
        try {
            bytes = encode(m);
        } catch (RuntimeException e) {
            throw new ManifestException("manifest " + source + " cannot be encoded: " + e.getMessage());
        }
        decode(bytes, source);
        return bytes;
    }

    /**
     * The rules every manifest obeys, run by {@link #decode} and {@link #encodeForCommit} (see
     * docs/storage-format.md): bounded counts; a shard per worker whose object is the layout's key
     * for (save id, worker), or none when it has no bytes; entries with non-negative offsets and
     * lengths lying inside their shard (no 64-bit overflow); entry names that restore as files
     * ({@link EntryNames#check}), none used twice and none both a file and a directory; a type and
     * shape that fit the entry's length ({@link Manifest.Tensor#check}); the pieces of every
     * replicated entry tiling it exactly once with one type ({@link ReplicatedPieces}); the pieces of
     * every sharded tensor agreeing on dtype and global shape and never overlapping
     * ({@link LogicalTensors}).
     */
    private static Manifest validate(Manifest m, String source) {
        if (m.step() < 0) {
            throw new IllegalArgumentException("negative step " + m.step());
        }
        if (!Layout.isSaveId(m.saveId()) || Layout.stepOfSaveId(m.saveId()) != m.step()) {
            throw new IllegalArgumentException("save id '" + m.saveId() + "' does not belong to step " + m.step());
        }
        if (m.worldSize() < 1 || m.worldSize() > MAX_WORLD_SIZE) {
            throw new IllegalArgumentException("world size " + m.worldSize() + " outside [1, " + MAX_WORLD_SIZE + "]");
        }
        if (m.entries().size() > MAX_ENTRIES) {
            throw new IllegalArgumentException(m.entries().size() + " entries, more than " + MAX_ENTRIES);
        }
        if (m.metadata().size() > MAX_METADATA) {
            throw new IllegalArgumentException(m.metadata().size() + " metadata fields, more than " + MAX_METADATA);
        }
        Map<Integer, Manifest.ShardRef> byWorker = new LinkedHashMap<>();
        for (Manifest.ShardRef s : m.shards()) {
            if (s.worker() < 0 || s.worker() >= m.worldSize()) {
                throw new IllegalArgumentException("shard of worker " + s.worker() + " outside world size " + m.worldSize());
            }
            if (byWorker.put(s.worker(), s) != null) {
                throw new IllegalArgumentException("two shards of worker " + s.worker());
            }
            if (s.length() < 0) {
                throw new IllegalArgumentException("shard of worker " + s.worker() + " has negative length " + s.length());
            }
            if (s.objectKey() == null ? s.length() != 0 : !s.objectKey().equals(Layout.shardKey(m.saveId(), s.worker()))) {
                throw new IllegalArgumentException("shard of worker " + s.worker() + " names object "
                        + (s.objectKey() == null ? "none" : "'" + EntryNames.excerpt(s.objectKey()) + "'") + " for " + s.length()
                        + " bytes; expected '" + Layout.shardKey(m.saveId(), s.worker()) + "'");
            }
        }
        if (byWorker.size() != m.worldSize()) {
            throw new IllegalArgumentException(byWorker.size() + " shards for world size " + m.worldSize());
        }
        Set<String> files = new HashSet<>();
        Map<String, String> dirs = new java.util.HashMap<>(); // directory -> a file below it
        for (Manifest.EntryRef e : m.entries()) {
            EntryNames.check(e.name());
            Manifest.ShardRef s = byWorker.get(e.worker());
            if (s == null) {
                throw new IllegalArgumentException("entry '" + e.name() + "' names worker " + e.worker() + " which has no shard");
            }
            // compared without adding: offset + length may overflow 64 bits
            if (e.offset() < 0 || e.length() < 0 || e.offset() > s.length() || e.length() > s.length() - e.offset()) {
                throw new IllegalArgumentException("entry '" + e.name() + "' [" + e.offset() + ", +" + e.length()
                        + ") lies outside the shard of worker " + e.worker() + " (" + s.length() + " bytes)");
            }
            if (e.replicated()) {
                continue; // its pieces are checked together below
            }
            if (e.entryOffset() != 0) {
                throw new IllegalArgumentException("entry '" + e.name() + "' of worker " + e.worker() + " is not replicated but has entryOffset "
                        + e.entryOffset());
            }
            try {
                e.tensor().check(e.length());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("entry '" + e.name() + "' of worker " + e.worker() + ": " + ex.getMessage());
            }
        }
        ReplicatedPieces.check(m);
        for (Manifest.EntryRef e : m.logicalEntries()) {
            String path = EntryNames.restorePath(e);
            if (!files.add(path)) {
                throw new IllegalArgumentException("entry '" + e.name() + "' appears twice for worker " + e.worker());
            }
            for (int slash = path.indexOf('/', path.indexOf('/') + 1); slash > 0; slash = path.indexOf('/', slash + 1)) {
                dirs.putIfAbsent(path.substring(0, slash), path);
            }
        }
        for (String path : files) {
            String below = dirs.get(path);
            if (below != null) {
                throw new IllegalArgumentException("entry '" + path.substring(path.indexOf('/') + 1) + "' would be both a file and the directory of entry '"
                        + below.substring(below.indexOf('/') + 1) + "' (" + path + ")");
            }
        }
        // the pieces of every sharded tensor agree on dtype and global shape and do not overlap, so
        // every checkpoint that validates also restores onto another world size (docs/resharding.md)
        try {
            LogicalTensors.of(m);
        } catch (ManifestException e) {
            throw new IllegalArgumentException(e.getMessage().replaceFirst("^manifest of step \\d+: ", ""));
        }
        return m;
    }

    private static Iterable<JsonNode> array(JsonNode n, String field) {
        JsonNode a = n.get(field);
        if (a == null || !a.isArray()) {
            throw new IllegalArgumentException("missing array '" + field + "'");
        }
        return a;
    }

    private static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException("missing text field '" + field + "'");
        }
        return v.asText();
    }

    private static long longValue(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isIntegralNumber()) {
            throw new IllegalArgumentException("missing integer field '" + field + "'");
        }
        return v.asLong();
    }

    private static int integer(JsonNode n, String field) {
        long v = longValue(n, field);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("field '" + field + "' out of range");
        }
        return (int) v;
    }

    private static int crc(JsonNode n) {
        String v = text(n, "crc32c");
        if (v.length() != 8) {
            throw new IllegalArgumentException("crc32c '" + v + "' is not 8 hex digits");
        }
        int crc = 0;
        for (int i = 0; i < 8; i++) {
            char c = v.charAt(i);
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) {
                throw new IllegalArgumentException("crc32c '" + v + "' is not 8 hex digits");
            }
            crc = crc << 4 | d;
        }
        return crc;
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
