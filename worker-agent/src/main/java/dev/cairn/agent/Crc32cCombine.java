package dev.cairn.agent;

/**
 * Combines CRC32C values: given crc(A), crc(B) and the length of B, computes crc(A‖B) without
 * reading the bytes again (zlib's {@code crc32_combine} as of zlib 1.2.12, with the Castagnoli
 * polynomial): crc(A) is multiplied by x^(8·|B|) modulo the polynomial, using a table of
 * x^(2^k), so a combine costs at most 64 carry-less 32-bit multiplications whatever |B| is. The
 * uploader checksums every byte once, per entry, and derives the object's CRC32C from the entries'
 * CRCs, one combine per entry.
 */
final class Crc32cCombine {
    /** The Castagnoli polynomial, bit-reflected. */
    private static final int POLY = 0x82F63B78;
    /** x^0 = 1 in the reflected representation. */
    private static final int ONE = 1 << 31;
    /** X2N[k] = x^(2^k) mod p(x). */
    private static final int[] X2N = new int[64];

    static {
        int p = ONE >>> 1; // x^1
        X2N[0] = p;
        for (int k = 1; k < X2N.length; k++) {
            X2N[k] = p = multiplyModP(p, p);
        }
    }

    private Crc32cCombine() {}

    /** crc32c(A‖B) from {@code crcA} = crc32c(A), {@code crcB} = crc32c(B) and {@code lengthB} = |B|. */
    static int combine(int crcA, int crcB, long lengthB) {
        if (lengthB <= 0) {
            return crcA;
        }
        return multiplyModP(xPow8n(lengthB), crcA) ^ crcB;
    }

    /** x^(8n) mod p(x): appending n zero bytes multiplies a CRC by it. */
    private static int xPow8n(long n) {
        int p = ONE;
        int k = 3; // 8n = n·2^3
        while (n != 0) {
            if ((n & 1) != 0) {
                p = multiplyModP(X2N[k & 63], p);
            }
            n >>>= 1;
            k++;
        }
        return p;
    }

    /** a·b mod p(x), reflected bit order. */
    private static int multiplyModP(int a, int b) {
        int m = ONE;
        int p = 0;
        while (true) {
            if ((a & m) != 0) {
                p ^= b;
                if ((a & (m - 1)) == 0) {
                    break;
                }
            }
            m >>>= 1;
            b = (b & 1) != 0 ? (b >>> 1) ^ POLY : b >>> 1;
        }
        return p;
    }
}
