package dev.cairn.agent;

/**
 * Combines CRC32C values: given crc(A), crc(B) and the length of B, computes crc(A‖B) in
 * O(log length) without reading the bytes again (zlib's {@code crc32_combine}, with the Castagnoli
 * polynomial). The uploader checksums every byte once, per entry, and derives the object's CRC32C
 * from the entries' CRCs.
 */
final class Crc32cCombine {
    private static final int POLY_REFLECTED = 0x82F63B78;

    private Crc32cCombine() {}

    /** crc32c(A‖B) from {@code crcA} = crc32c(A), {@code crcB} = crc32c(B) and {@code lengthB} = |B|. */
    static int combine(int crcA, int crcB, long lengthB) {
        if (lengthB <= 0) {
            return crcA;
        }
        int[] even = new int[32];
        int[] odd = new int[32];
        odd[0] = POLY_REFLECTED; // operator for one zero bit
        int row = 1;
        for (int n = 1; n < 32; n++) {
            odd[n] = row;
            row <<= 1;
        }
        square(even, odd); // two zero bits
        square(odd, even); // four zero bits
        int crc = crcA;
        long len = lengthB;
        do {
            square(even, odd); // apply len's next bit: 8, 32, ... zero bits (one byte and up)
            if ((len & 1) != 0) {
                crc = times(even, crc);
            }
            len >>>= 1;
            if (len == 0) {
                break;
            }
            square(odd, even);
            if ((len & 1) != 0) {
                crc = times(odd, crc);
            }
            len >>>= 1;
        } while (len != 0);
        return crc ^ crcB;
    }

    private static int times(int[] matrix, int vector) {
        int sum = 0;
        for (int i = 0; vector != 0; i++, vector >>>= 1) {
            if ((vector & 1) != 0) {
                sum ^= matrix[i];
            }
        }
        return sum;
    }

    private static void square(int[] square, int[] matrix) {
        for (int n = 0; n < 32; n++) {
            square[n] = times(matrix, matrix[n]);
        }
    }
}
