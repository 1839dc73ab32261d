package dev.cairn.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class StagedShardTest {

    @Test
    void drainAfterTheEndMarkerWasTakenReturnsAtOnce() {
        StagingPool pool = new StagingPool(64 * 1024, 4096);
        StagedShard shard = new StagedShard(pool, 7);
        shard.put("a", new byte[10_000]);
        shard.seal();
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            StagedShard.Chunk c;
            int chunks = 0;
            while ((c = shard.take()) != StagedShard.END) {
                shard.release(c);
                chunks++;
            }
            assertThat(chunks).isEqualTo(3);
            // an upload that fails after the last chunk (a failed commit) drains: it must not wait
            // for a second end marker, which would wedge the upload thread for every later save
            shard.drainToEnd();
        });
    }

    @Test
    void drainBeforeTheEndFreesEveryChunkForTheNextSave() {
        StagingPool pool = new StagingPool(8 * 4096, 4096);
        StagedShard aborted = new StagedShard(pool, 1);
        aborted.put("a", new byte[5 * 4096]);
        aborted.seal();
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            aborted.drainToEnd();
            // all eight chunks are free again: a save of the whole budget stages without blocking
            StagedShard next = new StagedShard(pool, 2);
            next.put("b", new byte[8 * 4096]);
            next.seal();
        });
    }
}
