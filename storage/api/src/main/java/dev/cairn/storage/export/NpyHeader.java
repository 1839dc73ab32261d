package dev.cairn.storage.export;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The header of a {@code .npy} file (NumPy format version 1.0, or 2.0 when the header text exceeds
 * 65,535 bytes): magic, version, header length, then a Python dict literal padded with spaces and
 * ended by a newline so the data starts at a multiple of 64 bytes.
 */
final class NpyHeader {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int ALIGN = 64;

    private NpyHeader() {}

    static byte[] of(StoredType type) {
        long[] shape = type.shape();
        String dims = shape.length == 1 ? "(" + shape[0] + ",)"
                : Arrays.stream(shape).mapToObj(Long::toString).collect(Collectors.joining(", ", "(", ")"));
        String dict = "{'descr': '" + type.name() + "', 'fortran_order': False, 'shape': " + dims + ", }";
        int version = 1;
        int prefix = MAGIC.length + 2 + 2;
        int textLength = padded(prefix, dict.length() + 1);
        if (textLength > 0xFFFF) {
            version = 2;
            prefix = MAGIC.length + 2 + 4;
            textLength = padded(prefix, dict.length() + 1);
        }
        ByteBuffer b = ByteBuffer.allocate(prefix + textLength).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) version).put((byte) 0);
        if (version == 1) {
            b.putShort((short) textLength);
        } else {
            b.putInt(textLength);
        }
        b.put(dict.getBytes(StandardCharsets.US_ASCII));
        while (b.remaining() > 1) {
            b.put((byte) ' ');
        }
        b.put((byte) '\n');
        return b.array();
    }

    private static int padded(int prefix, int text) {
        return text + (ALIGN - (prefix + text) % ALIGN) % ALIGN;
    }
}
