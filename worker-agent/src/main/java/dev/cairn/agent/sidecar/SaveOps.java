package dev.cairn.agent.sidecar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.agent.CairnAgent;
import dev.cairn.agent.SaveAbortedException;
import dev.cairn.agent.SaveHandle;
import dev.cairn.agent.SaveInProgress;
import dev.cairn.agent.SavedCheckpoint;
import dev.cairn.agent.Snapshot;
import dev.cairn.storage.Manifest;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The save operations: {@code begin_save} reserves a region of the shared file and sends the
 * prepare; {@code commit_save} validates the entry table and answers at once, then the copier
 * thread hands the region's entries to the agent to upload in place (no copy) and the region is
 * freed when the save ends;
 * {@code wait_save} answers when the save commits or aborts.
 */
final class SaveOps {
    /** A save the trainer began. {@code handle} completes once its bytes are staged (or failed). */
    private static final class OpenSave {
        final SaveInProgress save;
        final long offset;
        final long bytes;
        final CompletableFuture<SaveHandle> handle = new CompletableFuture<>();
        volatile boolean committing;
        /** dtype, shape and shard layout of each entry, kept for the typed manifest of format v2. */
        volatile List<EntryTable.Entry> entries;

        OpenSave(SaveInProgress save, long offset, long bytes) {
            this.save = save;
            this.offset = offset;
            this.bytes = bytes;
        }
    }

    private static final int KEEP_ENDED = 16;

    private final CairnAgent agent;
    private final SharedStaging staging;
    private final ExecutorService copier;
    private final Duration busyTimeout;
    private final Map<Long, OpenSave> saves = new ConcurrentHashMap<>();

    SaveOps(CairnAgent agent, SharedStaging staging, ExecutorService copier, Duration busyTimeout) {
        this.agent = agent;
        this.staging = staging;
        this.copier = copier;
        this.busyTimeout = busyTimeout;
    }

    /** Blocking thread: may wait for space. */
    ObjectNode begin(JsonNode request) throws Exception {
        long step = Json.step(request);
        long bytes = Json.nonNegative(request, "bytes");
        OpenSave existing = saves.get(step);
        if (existing != null) {
            throw RequestException.badRequest("a save of step " + step + " was already begun");
        }
        long offset = staging.allocate(bytes, busyTimeout.toMillis());
        if (offset < 0) {
            throw new RequestException("Busy", "no " + bytes + " bytes of shared staging free within " + busyTimeout.toMillis()
                    + " ms (uploads of earlier saves still hold it)");
        }
        SaveInProgress save;
        try {
            save = agent.beginSave(step);
        } catch (RuntimeException e) {
            staging.free(offset);
            throw e;
        }
        saves.put(step, new OpenSave(save, offset, bytes));
        forgetEnded();
        return Json.object().put("offset", offset);
    }

    /** Network (reader) thread: validates, then hands the copy to the copier thread. */
    ObjectNode commit(JsonNode request) throws RequestException {
        long step = Json.step(request);
        OpenSave s = saves.get(step);
        if (s == null || s.committing) {
            throw RequestException.badRequest("no begun save of step " + step + " to commit");
        }
        List<EntryTable.Entry> entries = EntryTable.parse(request.get("entries"), s.bytes);
        JsonNode metadata = request.get("metadata");
        if (metadata != null && !metadata.isNull()) {
            if (!metadata.isObject()) {
                throw RequestException.badRequest("'metadata' must be an object");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = metadata.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> m = it.next();
                JsonNode v = m.getValue();
                if (m.getKey().isEmpty() || !(v.isTextual() || v.isNumber() || v.isBoolean())) {
                    throw RequestException.badRequest("metadata '" + m.getKey() + "' must be a string, number or bool");
                }
            }
        }
        s.committing = true;
        s.entries = entries;
        copier.execute(() -> copy(s, entries, metadata));
        return Json.object();
    }

    private void copy(OpenSave s, List<EntryTable.Entry> entries, JsonNode metadata) {
        try {
            Snapshot snap = s.save.snapshot();
            for (EntryTable.Entry e : entries) {
                ByteBuffer bytes = staging.slice(s.offset + e.offset(), e.length());
                Manifest.Tensor tensor = Manifest.Tensor.of(e.dtype(), e.shape()).withGlobal(e.globalShape(), e.globalOffsets());
                // uploaded straight from the shared file: no second copy competing with the trainers' copies
                snap.putInPlace(e.name(), bytes, tensor, e.replicated());
            }
            if (metadata != null && metadata.isObject()) {
                for (Iterator<Map.Entry<String, JsonNode>> it = metadata.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> m = it.next();
                    JsonNode v = m.getValue();
                    snap.metadata(m.getKey(), v.isTextual() ? v.asText() : v.isBoolean() ? (Object) v.asBoolean() : v.numberValue());
                }
            }
            SaveHandle handle = s.save.finish();
            // the region belongs to the upload until the save ends, committed or aborted
            handle.committed().whenComplete((ok, err) -> staging.free(s.offset));
            s.handle.complete(handle);
        } catch (RuntimeException e) {
            staging.free(s.offset);
            s.save.abort(e.getMessage() == null ? e.toString() : e.getMessage());
            s.handle.completeExceptionally(e);
        }
    }

    ObjectNode abort(JsonNode request) throws RequestException {
        long step = Json.step(request);
        OpenSave s = saves.get(step);
        if (s == null || s.committing) {
            throw RequestException.badRequest("no begun save of step " + step + " to abort");
        }
        s.committing = true;
        staging.free(s.offset);
        s.save.abort("the trainer aborted the save");
        s.handle.completeExceptionally(new RequestException("SaveAborted", "the trainer aborted the save of step " + step, "UPLOAD_FAILED"));
        return Json.object();
    }

    CompletableFuture<ObjectNode> await(JsonNode request) throws RequestException {
        long step = Json.step(request);
        JsonNode t = request.get("timeout_ms");
        long timeout = t == null || t.isNull() ? -1 : Json.nonNegative(request, "timeout_ms");
        OpenSave s = saves.get(step);
        if (s == null) {
            throw new RequestException("NotFound", "no save of step " + step + " was begun on this sidecar");
        }
        CompletableFuture<SavedCheckpoint> committed = s.handle.thenCompose(SaveHandle::committed);
        if (timeout >= 0) {
            committed = committed.orTimeout(timeout, TimeUnit.MILLISECONDS);
        }
        return committed.handle((ok, err) -> {
            if (err == null) {
                return Json.object().put("step", ok.step()).put("save_id", ok.saveId());
            }
            Throwable e = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
            if (e instanceof SaveAbortedException a) {
                throw new CompletionException(new RequestException("SaveAborted", a.getMessage(), a.reason().name()));
            }
            if (e instanceof TimeoutException) {
                throw new CompletionException(new RequestException("Timeout", "the save of step " + step + " did not end within " + timeout + " ms"));
            }
            throw new CompletionException(e);
        });
    }

    /** Waits until every commit handed to the copier is staged. */
    void drainCopies() throws InterruptedException {
        for (OpenSave s : saves.values()) {
            if (s.committing) {
                try {
                    s.handle.get(60, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException | TimeoutException e) {
                    // reported through wait_save
                }
            }
        }
    }

    /** Keeps the last few ended saves for wait_save; forgets older ones. */
    private void forgetEnded() {
        if (saves.size() <= KEEP_ENDED) {
            return;
        }
        saves.keySet().stream().sorted().limit(saves.size() - KEEP_ENDED)
                .filter(step -> saves.get(step).handle.isDone())
                .forEach(saves::remove);
    }
}
