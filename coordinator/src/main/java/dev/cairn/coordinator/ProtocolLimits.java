package dev.cairn.coordinator;

import dev.cairn.proto.v1.AgentMessage;
import dev.cairn.proto.v1.Join;
import dev.cairn.proto.v1.ShardReport;
import java.util.regex.Pattern;

/**
 * The bounds of protocol v1 that the coordinator enforces on every message before anything in it
 * is logged, stored or acted on (docs/protocol.md, "Limits"). A message outside them is a protocol
 * violation: the session ends with INVALID_ARGUMENT and its worker is lost at once.
 */
final class ProtocolLimits {
    /** Steps are in {@code [0, 2^62)}: far beyond any run, and a target a little ahead never overflows. */
    static final long MAX_STEP_EXCLUSIVE = 1L << 62;
    static final int MAX_RUN_ID_CHARS = 128;
    static final Pattern RUN_ID = Pattern.compile("[A-Za-z0-9._-]{1," + MAX_RUN_ID_CHARS + "}");
    static final int MAX_AGENT_VERSION_CHARS = 64;
    static final int MAX_TOKEN_BYTES = 1024;
    static final int MAX_MESSAGE_CHARS = 4096;
    static final int MAX_SAVE_ID_CHARS = 64;
    static final int MAX_OBJECT_KEY_CHARS = 1024;
    static final int MAX_ENTRIES_PER_REPORT = 1_000_000;
    static final int MAX_METADATA_JSON_BYTES = 64 << 10;
    /**
     * Largest message a session accepts: a report at the limits above with names averaging up to
     * ~90 bytes (1,000,000 entries × ~120 bytes on the wire, plus 64 KiB of metadata). A larger
     * message is refused by gRPC with RESOURCE_EXHAUSTED before it is parsed.
     */
    static final int MAX_INBOUND_MESSAGE_BYTES = 128 << 20;

    private ProtocolLimits() {}

    static boolean isStep(long step) {
        return step >= 0 && step < MAX_STEP_EXCLUSIVE;
    }

    /** What is out of bounds in {@code msg}, or null when it is within them. */
    static String violation(AgentMessage msg) {
        return switch (msg.getKindCase()) {
            case JOIN -> join(msg.getJoin());
            // -1: no step yet (an agent before its first training step)
            case HEARTBEAT -> stepOrNone("heartbeat.step", msg.getHeartbeat().getStep());
            case PREEMPTION -> stepOrNone("preemption.step", msg.getPreemption().getStep());
            case PREPARE -> isStep(msg.getPrepare().getStep()) ? null
                    : "prepare.step " + msg.getPrepare().getStep() + " is outside [0, 2^62)";
            case SHARD_REPORT -> report(msg.getShardReport());
            case UPLOAD_FAILED -> msg.getUploadFailed().getSaveId().length() > MAX_SAVE_ID_CHARS
                    ? "upload_failed.save_id is longer than " + MAX_SAVE_ID_CHARS + " characters"
                    : msg.getUploadFailed().getMessage().length() > MAX_MESSAGE_CHARS
                    ? "upload_failed.message is longer than " + MAX_MESSAGE_CHARS + " characters" : null;
            default -> null;
        };
    }

    private static String stepOrNone(String field, long step) {
        return step == -1 || isStep(step) ? null : field + " " + step + " is outside [0, 2^62) (or -1 for none)";
    }

    private static String join(Join j) {
        if (!RUN_ID.matcher(j.getRunId()).matches()) {
            return "join.run_id must be 1.." + MAX_RUN_ID_CHARS + " characters of [A-Za-z0-9._-], was "
                    + LogSafe.quote(j.getRunId()) + " (" + j.getRunId().length() + " chars)";
        }
        if (j.getAgentVersion().length() > MAX_AGENT_VERSION_CHARS) {
            return "join.agent_version is longer than " + MAX_AGENT_VERSION_CHARS + " characters";
        }
        if (j.getTokenBytes().size() > MAX_TOKEN_BYTES) {
            return "join.token is longer than " + MAX_TOKEN_BYTES + " bytes";
        }
        return null;
    }

    private static String report(ShardReport r) {
        if (r.getSaveId().length() > MAX_SAVE_ID_CHARS) {
            return "shard_report.save_id is longer than " + MAX_SAVE_ID_CHARS + " characters";
        }
        if (!isStep(r.getStep())) {
            return "shard_report.step " + r.getStep() + " is outside [0, 2^62)";
        }
        if (r.getObjectKey().length() > MAX_OBJECT_KEY_CHARS) {
            return "shard_report.object_key is longer than " + MAX_OBJECT_KEY_CHARS + " characters";
        }
        if (r.getEntriesCount() > MAX_ENTRIES_PER_REPORT) {
            return "shard_report.entries has " + r.getEntriesCount() + " entries, more than " + MAX_ENTRIES_PER_REPORT;
        }
        if (r.getMetadataJsonBytes().size() > MAX_METADATA_JSON_BYTES) {
            return "shard_report.metadata_json is longer than " + MAX_METADATA_JSON_BYTES + " bytes";
        }
        return null;
    }
}
