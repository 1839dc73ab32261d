package dev.cairn.storage;

import java.util.Locale;

/**
 * The element type of an entry, by its NumPy name. Bytes are little-endian, C order. {@link #BYTES}
 * is opaque, {@link #JSON} a UTF-8 JSON value; both have one-byte items and shape {@code [length]}.
 */
public enum DType {
    BOOL(1), INT8(1), INT16(2), INT32(4), INT64(8), UINT8(1), UINT16(2), UINT32(4), UINT64(8),
    FLOAT16(2), BFLOAT16(2), FLOAT32(4), FLOAT64(8), COMPLEX64(8), COMPLEX128(16), BYTES(1), JSON(1);

    private final int itemSize;

    DType(int itemSize) {
        this.itemSize = itemSize;
    }

    /** Bytes per element. */
    public int itemSize() {
        return itemSize;
    }

    /** The NumPy name ({@code float32}, {@code bfloat16}, ...; {@code bytes}, {@code json}). */
    public String numpyName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The type of a NumPy name.
     *
     * @throws IllegalArgumentException naming the unknown type
     */
    public static DType fromNumpyName(String name) {
        for (DType t : values()) {
            if (t.numpyName().equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }

    /**
     * The byte length of an entry of this type and {@code shape} (every dimension ≥ 0).
     *
     * @throws IllegalArgumentException for a negative dimension or a length beyond {@code Long.MAX_VALUE}
     */
    public long byteLength(long... shape) {
        long n = itemSize;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension " + d + " in shape");
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
