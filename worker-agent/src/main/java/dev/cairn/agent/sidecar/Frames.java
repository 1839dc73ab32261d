package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** The sidecar protocol's framing: a 4-byte big-endian length (1 ≤ L ≤ 16 MiB), then L bytes of UTF-8 JSON holding one object. */
final class Frames {
    static final int MAX_FRAME = 16 << 20;
    static final ObjectMapper JSON = new ObjectMapper();

    /** The frame broke the protocol; the connection is answered once and closed. */
    static final class ProtocolViolation extends Exception {
        private static final long serialVersionUID = 1L;

        ProtocolViolation(String message) {
            super(message);
        }
    }

    private Frames() {}

    /**
     * Reads one frame.
     *
     * @throws EOFException when the peer closed the connection (also in the middle of a frame)
     * @throws ProtocolViolation for a length out of range, invalid UTF-8 or JSON, or a non-object
     */
    static JsonNode read(ReadableByteChannel in) throws IOException, ProtocolViolation {
        ByteBuffer header = readFully(in, ByteBuffer.allocate(4));
        long length = Integer.toUnsignedLong(header.flip().getInt());
        if (length < 1 || length > MAX_FRAME) {
            throw new ProtocolViolation("frame length " + length + " is outside 1.." + MAX_FRAME);
        }
        ByteBuffer body = readFully(in, ByteBuffer.allocate((int) length)).flip();
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(body).toString();
        } catch (CharacterCodingException e) {
            throw new ProtocolViolation("frame is not valid UTF-8");
        }
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new ProtocolViolation("frame is not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new ProtocolViolation("frame does not hold a JSON object");
        }
        return node;
    }

    private static ByteBuffer readFully(ReadableByteChannel in, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (in.read(b) < 0) {
                throw new EOFException("connection closed");
            }
        }
        return b;
    }

    /** Writes one frame (callers serialize writers). */
    static void write(WritableByteChannel out, JsonNode message) throws IOException {
        byte[] body = JSON.writeValueAsBytes(message);
        ByteBuffer frame = ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).flip();
        while (frame.hasRemaining()) {
            out.write(frame);
        }
    }
}
