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

    @Test
    void anInPlaceEntryIsQueuedAsSlicesOfTheCallersBufferInOrderAndNeverEntersThePool() {
        StagingPool pool = new StagingPool(2 * 4096, 4096);
        StagedShard shard = new StagedShard(pool, 3);
        java.nio.ByteBuffer shared = java.nio.ByteBuffer.allocateDirect(3 * 4096);
        for (int i = 0; i < shared.capacity(); i++) {
            shared.put(i, (byte) i);
        }
        shared.position(100);
        shard.put("before", new byte[] {1, 2, 3});
        shard.putInPlace("big", shared, dev.cairn.storage.Manifest.Tensor.bytes(3 * 4096 - 100), false);
        shard.put("after", new byte[] {4, 5});
        shard.seal();
        assertThat(shared.position()).as("the caller's buffer is not moved").isEqualTo(100);
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            java.io.ByteArrayOutputStream stream = new java.io.ByteArrayOutputStream();
            StagedShard.Chunk c;
            int borrowed = 0;
            while ((c = shard.take()) != StagedShard.END) {
                byte[] bytes = new byte[c.length()];
                c.data().duplicate().position(0).get(bytes);
                stream.write(bytes);
                borrowed += c.borrowed() ? 1 : 0;
                shard.release(c);
            }
            byte[] all = stream.toByteArray();
            assertThat(borrowed).isEqualTo(1);
            assertThat(all).hasSize(3 + 3 * 4096 - 100 + 2);
            assertThat(java.util.Arrays.copyOfRange(all, 0, 3)).containsExactly(1, 2, 3);
            for (int i = 0; i < 3 * 4096 - 100; i++) {
                assertThat(all[3 + i]).isEqualTo((byte) (100 + i));
            }
            assertThat(java.util.Arrays.copyOfRange(all, all.length - 2, all.length)).containsExactly(4, 5);
            // only the pool's two chunks went back to it: a save of the whole budget stages without blocking
            StagedShard next = new StagedShard(pool, 4);
            next.put("b", new byte[2 * 4096]);
            next.seal();
        });
    }
}
