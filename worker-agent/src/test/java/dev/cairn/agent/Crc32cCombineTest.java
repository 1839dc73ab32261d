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
}
