package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collection;

/** Small helpers for the sidecar's JSON messages. */
final class Json {
    /** Work that answers a request. */
    @FunctionalInterface
    interface Op {
        ObjectNode run() throws Exception;
    }

    private Json() {}

    static ObjectNode object() {
        return Frames.JSON.createObjectNode();
    }

    static ArrayNode array(Collection<? extends Number> values) {
        ArrayNode a = Frames.JSON.createArrayNode();
        values.forEach(v -> a.add(v.longValue()));
        return a;
    }

    static ArrayNode array(long[] values) {
        ArrayNode a = Frames.JSON.createArrayNode();
        for (long v : values) {
            a.add(v);
        }
        return a;
    }

    /** The request's {@code step}: an integer ≥ 0. */
    static long step(JsonNode request) throws RequestException {
        return nonNegative(request, "step");
    }

    static long nonNegative(JsonNode request, String field) throws RequestException {
        JsonNode v = request.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
            throw RequestException.badRequest("'" + field + "' must be an integer ≥ 0");
        }
        return v.asLong();
    }
}
