package dev.cairn.coordinator;

import dev.cairn.proto.v1.CoordinatorMessage;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the state machine remembers of ended saves: the records for status, the ids of recently
 * aborted attempts (late reports for them are discarded, and retention sweeps them again), and the
 * abort message of recently aborted steps, repeated to a worker that prepares such a step late if
 * its session was already a member when the step aborted. Event-loop thread only.
 */
final class SaveHistory {
    private static final int HISTORY = 200;
    private static final int RECENT_ABORTS = 64;

    private record LateAbort(long seq, CoordinatorMessage message) {}

    private final Deque<SaveRecord> records = new ArrayDeque<>();
    private final Map<String, Long> recentAborts = new LinkedHashMap<>();
    private final Map<Long, LateAbort> abortedSteps = new LinkedHashMap<>();
    private long abortSeq;

    void record(SaveRecord r) {
        records.addLast(r);
        if (records.size() > HISTORY) {
            records.removeFirst();
        }
    }

    /** Remembers an aborted save: its id (if released) and the message announcing it. */
    void aborted(long step, String saveId, CoordinatorMessage message) {
        if (!saveId.isEmpty()) {
            recentAborts.put(saveId, step);
            trim(recentAborts);
        }
        abortedSteps.put(step, new LateAbort(++abortSeq, message));
        trim(abortedSteps);
    }

    private static void trim(Map<?, ?> m) {
        if (m.size() > RECENT_ABORTS) {
            m.remove(m.keySet().iterator().next());
        }
    }

    /** The sequence number of the newest abort: a member joining now saw every abort before it. */
    long abortSeq() {
        return abortSeq;
    }

    boolean wasAborted(String saveId) {
        return recentAborts.containsKey(saveId);
    }

    /**
     * The abort message to repeat to a worker preparing {@code step} whose session joined at
     * {@code joinedAtSeq}, or null if the step did not abort since then.
     */
    CoordinatorMessage lateAbort(long step, long joinedAtSeq) {
        LateAbort late = abortedSteps.get(step);
        return late != null && joinedAtSeq < late.seq() ? late.message() : null;
    }

    Set<String> recentlyAborted() {
        return Set.copyOf(recentAborts.keySet());
    }

    List<SaveRecord> records() {
        return List.copyOf(records);
    }
}
