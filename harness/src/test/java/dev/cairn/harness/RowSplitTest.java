package dev.cairn.harness;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The array_split rule of the resharded-restore figure. */
class RowSplitTest {
    @Test
    void theFirstPartsTakeTheRemainderAsNumpysArraySplitDoes() {
        // numpy.array_split(range(10), 3) -> [0..3], [4..6], [7..9]
        assertThat(RowSplit.of(10, 3, 0)).isEqualTo(new RowSplit(0, 4));
        assertThat(RowSplit.of(10, 3, 1)).isEqualTo(new RowSplit(4, 3));
        assertThat(RowSplit.of(10, 3, 2)).isEqualTo(new RowSplit(7, 3));
    }

    @Test
    void thePartsTileTheRowsForEveryWorld() {
        for (long total : new long[] {0, 1, 2, 7, 8, 8191, 8192}) {
            for (int parts = 1; parts <= 9; parts++) {
                long next = 0;
                for (int rank = 0; rank < parts; rank++) {
                    RowSplit s = RowSplit.of(total, parts, rank);
                    assertThat(s.start()).isEqualTo(next);
                    assertThat(s.rows()).isBetween(total / parts, total / parts + 1);
                    next = s.end();
                }
                assertThat(next).as("%d rows over %d parts", total, parts).isEqualTo(total);
            }
        }
    }

    @Test
    void fewerRowsThanPartsLeavesTheLastPartsEmpty() {
        assertThat(RowSplit.of(2, 4, 1)).isEqualTo(new RowSplit(1, 1));
        assertThat(RowSplit.of(2, 4, 3)).isEqualTo(new RowSplit(2, 0));
    }

    @Test
    void aRankOutsideTheWorldIsRefused() {
        assertThatThrownBy(() -> RowSplit.of(10, 3, 3)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("rank 3");
        assertThatThrownBy(() -> RowSplit.of(10, 0, 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
