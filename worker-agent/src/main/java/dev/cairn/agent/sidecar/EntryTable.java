package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cairn.storage.DType;
import dev.cairn.storage.EntryNames;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The entry table of a {@code commit_save}, every field checked before anything is staged: names
 * valid and distinct, dtypes known, shapes non-negative with {@code length = itemsize × product},
 * offsets and lengths inside the save's region, no two entries overlapping.
 */
final class EntryTable {
    /** One entry; {@code offset} is relative to the save's region. */
    record Entry(String name, long offset, long length, DType dtype, long[] shape, boolean replicated,
            long[] globalShape, long[] globalOffsets) {}

    private EntryTable() {}

    static List<Entry> parse(JsonNode entries, long regionBytes) throws RequestException {
        if (entries == null || !entries.isArray()) {
            throw RequestException.badRequest("'entries' must be a list");
        }
        List<Entry> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < entries.size(); i++) {
            JsonNode e = entries.get(i);
            if (!e.isObject()) {
                throw RequestException.badRequest("entry " + i + " is not an object");
            }
            String name = text(e, "name", i);
            try {
                EntryNames.check(name);
            } catch (IllegalArgumentException ex) {
                throw RequestException.badRequest("entry " + i + ": " + ex.getMessage());
            }
            if (!names.add(name)) {
                throw RequestException.badRequest("entry '" + name + "' appears twice");
            }
            long offset = nonNegative(e, "offset", name);
            long length = nonNegative(e, "length", name);
            DType dtype;
            try {
                dtype = DType.fromNumpyName(text(e, "dtype", i));
            } catch (IllegalArgumentException ex) {
                throw RequestException.badRequest("entry '" + name + "': " + ex.getMessage());
            }
            long[] shape = longs(e.get("shape"), "shape", name);
            long expected;
            try {
                expected = dtype.byteLength(shape);
            } catch (ArithmeticException | IllegalArgumentException ex) {
                throw RequestException.badRequest("entry '" + name + "': shape " + Arrays.toString(shape) + " is invalid");
            }
            if (expected != length) {
                throw RequestException.badRequest("entry '" + name + "': length " + length + " is not " + dtype.numpyName()
                        + Arrays.toString(shape) + " = " + expected + " bytes");
            }
            if (offset > regionBytes || length > regionBytes - offset) {
                throw RequestException.badRequest("entry '" + name + "': bytes " + offset + ".." + (offset + length)
                        + " lie outside the save's region of " + regionBytes + " bytes");
            }
            JsonNode replicated = e.get("replicated");
            if (replicated != null && !replicated.isBoolean() && !replicated.isNull()) {
                throw RequestException.badRequest("entry '" + name + "': 'replicated' must be true or false");
            }
            long[] globalShape = e.hasNonNull("global_shape") ? longs(e.get("global_shape"), "global_shape", name) : null;
            long[] globalOffsets = e.hasNonNull("global_offsets") ? longs(e.get("global_offsets"), "global_offsets", name) : null;
            if ((globalShape == null) != (globalOffsets == null)
                    || globalShape != null && (globalShape.length != shape.length || globalOffsets.length != shape.length)) {
                throw RequestException.badRequest("entry '" + name + "': global_shape and global_offsets go together, one per dimension");
            }
            if (globalShape != null) {
                for (int d = 0; d < shape.length; d++) {
                    if (globalOffsets[d] + shape[d] > globalShape[d]) {
                        throw RequestException.badRequest("entry '" + name + "': the piece at " + Arrays.toString(globalOffsets)
                                + " of shape " + Arrays.toString(shape) + " lies outside " + Arrays.toString(globalShape));
                    }
                }
            }
            out.add(new Entry(name, offset, length, dtype, shape, replicated != null && replicated.asBoolean(), globalShape, globalOffsets));
        }
        List<Entry> byOffset = new ArrayList<>(out);
        byOffset.sort(Comparator.comparingLong(Entry::offset));
        for (int i = 1; i < byOffset.size(); i++) {
            Entry prev = byOffset.get(i - 1);
            Entry cur = byOffset.get(i);
            if (prev.length() > 0 && cur.length() > 0 && prev.offset() + prev.length() > cur.offset()) {
                throw RequestException.badRequest("entries '" + prev.name() + "' and '" + cur.name() + "' overlap");
            }
        }
        return out;
    }

    private static String text(JsonNode e, String field, int i) throws RequestException {
        JsonNode v = e.get(field);
        if (v == null || !v.isTextual()) {
            throw RequestException.badRequest("entry " + i + ": '" + field + "' must be a string");
        }
        return v.asText();
    }

    private static long nonNegative(JsonNode e, String field, String name) throws RequestException {
        JsonNode v = e.get(field);
        if (v == null || !v.canConvertToLong() || !v.isIntegralNumber() || v.asLong() < 0) {
            throw RequestException.badRequest("entry '" + name + "': '" + field + "' must be an integer ≥ 0");
        }
        return v.asLong();
    }

    private static long[] longs(JsonNode v, String field, String name) throws RequestException {
        if (v == null || !v.isArray() || v.size() > 64) {
            throw RequestException.badRequest("entry '" + name + "': '" + field + "' must be a list of at most 64 integers");
        }
        long[] out = new long[v.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode d = v.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw RequestException.badRequest("entry '" + name + "': '" + field + "' must hold integers ≥ 0");
            }
            out[i] = d.asLong();
        }
        return out;
    }
}
