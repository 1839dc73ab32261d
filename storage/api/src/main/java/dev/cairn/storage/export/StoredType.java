package dev.cairn.storage.export;

import dev.cairn.storage.DType;
import java.util.Arrays;

/**
 * How a format stores an element type: its own type name and the stored shape. A type the format
 * has no name for is stored as a same-bits view ({@code view} true), and the export records the
 * real type in the metadata under {@link #DTYPE_KEY}{@code <name>}:
 *
 * <ul>
 *   <li>safetensors: {@code complex64}/{@code complex128} as {@code F32}/{@code F64} with one more
 *       dimension of 2 (real, imaginary: what {@code torch.view_as_real} gives); {@code bytes} as {@code U8};
 *   <li>npz: {@code bfloat16} as {@code <u2} (the raw bits), {@code bytes} as {@code |u1}.
 * </ul>
 *
 * {@code json} is no tensor in either format: it goes to the metadata.
 */
record StoredType(String name, long[] shape, boolean view) {
    /** Metadata key prefix naming the real dtype of a tensor stored as a view. */
    static final String DTYPE_KEY = "cairn.dtype.";

    static StoredType safetensors(DType dtype, long[] shape) {
        return switch (dtype) {
            case BOOL -> exact("BOOL", shape);
            case UINT8 -> exact("U8", shape);
            case INT8 -> exact("I8", shape);
            case UINT16 -> exact("U16", shape);
            case INT16 -> exact("I16", shape);
            case UINT32 -> exact("U32", shape);
            case INT32 -> exact("I32", shape);
            case UINT64 -> exact("U64", shape);
            case INT64 -> exact("I64", shape);
            case FLOAT16 -> exact("F16", shape);
            case BFLOAT16 -> exact("BF16", shape);
            case FLOAT32 -> exact("F32", shape);
            case FLOAT64 -> exact("F64", shape);
            case COMPLEX64 -> new StoredType("F32", withPairs(shape), true);
            case COMPLEX128 -> new StoredType("F64", withPairs(shape), true);
            case BYTES -> new StoredType("U8", shape, true);
            case JSON -> throw notATensor();
        };
    }

    static StoredType npy(DType dtype, long[] shape) {
        return switch (dtype) {
            case BOOL -> exact("|b1", shape);
            case UINT8 -> exact("|u1", shape);
            case INT8 -> exact("|i1", shape);
            case UINT16 -> exact("<u2", shape);
            case INT16 -> exact("<i2", shape);
            case UINT32 -> exact("<u4", shape);
            case INT32 -> exact("<i4", shape);
            case UINT64 -> exact("<u8", shape);
            case INT64 -> exact("<i8", shape);
            case FLOAT16 -> exact("<f2", shape);
            case FLOAT32 -> exact("<f4", shape);
            case FLOAT64 -> exact("<f8", shape);
            case COMPLEX64 -> exact("<c8", shape);
            case COMPLEX128 -> exact("<c16", shape);
            case BFLOAT16 -> new StoredType("<u2", shape, true);
            case BYTES -> new StoredType("|u1", shape, true);
            case JSON -> throw notATensor();
        };
    }

    private static StoredType exact(String name, long[] shape) {
        return new StoredType(name, shape, false);
    }

    private static long[] withPairs(long[] shape) {
        long[] s = Arrays.copyOf(shape, shape.length + 1);
        s[shape.length] = 2;
        return s;
    }

    private static IllegalArgumentException notATensor() {
        return new IllegalArgumentException("a json entry is not a tensor; it belongs in the metadata");
    }
}
