package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class Crc32cCombineTest {

    private static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    @Test
    void combiningPartsEqualsTheChecksumOfTheWhole() {
        Random random = new Random(42);
        byte[] data = new byte[1 << 20];
        random.nextBytes(data);
        for (int trial = 0; trial < 200; trial++) {
            int total = random.nextInt(data.length + 1);
            int cut = random.nextInt(total + 1);
            int combined = Crc32cCombine.combine(crc(data, 0, cut), crc(data, cut, total - cut), total - cut);
            assertThat(combined).as("total %d cut %d", total, cut).isEqualTo(crc(data, 0, total));
        }
    }

    @Test
    void foldingManyEntriesEqualsTheObjectChecksum() {
        Random random = new Random(7);
        byte[] data = new byte[3 << 20];
        random.nextBytes(data);
        int object = crc(data, 0, 0);
        int pos = 0;
        while (pos < data.length) {
            int len = Math.min(data.length - pos, random.nextInt(300_000));
            object = Crc32cCombine.combine(object, crc(data, pos, len), len);
            pos += len;
        }
        assertThat(object).isEqualTo(crc(data, 0, data.length));
    }

    @Test
    void emptySecondPartLeavesTheFirst() {
        assertThat(Crc32cCombine.combine(0x12345678, 0, 0)).isEqualTo(0x12345678);
    }

    @Test
    void lengthsBeyondFourGibibytesAgreeWithTheMatrixMethod() {
        Random random = new Random(11);
        for (int trial = 0; trial < 500; trial++) {
            long length = random.nextLong() & ((1L << (1 + random.nextInt(45))) - 1);
            int a = random.nextInt();
            int b = random.nextInt();
            assertThat(Crc32cCombine.combine(a, b, length)).as("length %d", length).isEqualTo(matrixCombine(a, b, length));
        }
    }

    /** zlib's original crc32_combine (GF(2) operator matrices, squared per length bit): an independent oracle. */
    private static int matrixCombine(int crcA, int crcB, long lengthB) {
        if (lengthB <= 0) {
            return crcA;
        }
        int[] even = new int[32];
        int[] odd = new int[32];
        odd[0] = 0x82F63B78;
        for (int n = 1, row = 1; n < 32; n++, row <<= 1) {
            odd[n] = row;
        }
        square(even, odd);
        square(odd, even);
        int crc = crcA;
        long len = lengthB;
        do {
            square(even, odd);
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
