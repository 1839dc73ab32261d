package dev.cairn.storage;

import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where things live below a storage root:
 *
 * <pre>
 *   manifests/00000000000000000100.json   the commit point of step 100 (create-if-absent)
 *   data/100-3f9a0c1e/shard-00000.bin      worker 0's shard of save attempt 100-3f9a0c1e
 *   LATEST                                 hint: the newest committed step (best effort)
 * </pre>
 *
 * A save id is {@code <step>-<8 hex>}: one per attempt, so a retried save never writes over an
 * aborted attempt's objects, and every attempt's objects share one prefix that can be swept.
 */
public final class Layout {
    public static final String MANIFESTS = "manifests/";
    public static final String DATA = "data/";
    public static final String LATEST = "LATEST";

    private static final Pattern MANIFEST_KEY = Pattern.compile("manifests/(\\d{20})\\.json");
    private static final Pattern SAVE_ID = Pattern.compile("(\\d{1,19})-([0-9a-f]{8})");

    private Layout() {}

    public static String manifestKey(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("negative step " + step);
        }
        return MANIFESTS + zeroPadded(step, 20) + ".json";
    }

    /** The step a manifest key names, or empty for any other key. */
    public static Optional<Long> stepOfManifestKey(String key) {
        Matcher m = MANIFEST_KEY.matcher(key);
        return m.matches() ? parseStep(m.group(1)) : Optional.empty();
    }

    /** Digits beyond the long range are not a step: a stray name must not break listings. */
    private static Optional<Long> parseStep(String digits) {
        try {
            return Optional.of(Long.parseLong(digits));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    public static String newSaveId(long step) {
        return step + "-" + hex8(ThreadLocalRandom.current().nextInt());
    }

    public static boolean isSaveId(String saveId) {
        Matcher m = SAVE_ID.matcher(saveId);
        return m.matches() && parseStep(m.group(1)).isPresent();
    }

    public static long stepOfSaveId(String saveId) {
        Matcher m = SAVE_ID.matcher(saveId);
        Optional<Long> step = m.matches() ? parseStep(m.group(1)) : Optional.empty();
        return step.orElseThrow(() -> new IllegalArgumentException("not a save id: '" + saveId + "'"));
    }

    public static String dataPrefix(String saveId) {
        if (!isSaveId(saveId)) {
            throw new IllegalArgumentException("not a save id: '" + saveId + "'");
        }
        return DATA + saveId + "/";
    }

    public static String shardKey(String saveId, int worker) {
        if (worker < 0) {
            throw new IllegalArgumentException("negative worker index " + worker);
        }
        return dataPrefix(saveId) + "shard-" + zeroPadded(worker, 5) + ".bin";
    }

    /*
     * Keys are built on every save's hot path (agent upload, coordinator report check, manifest):
     * plain concatenation instead of String.format, whose locale lookup costs more than the rest.
     */

    /** {@code value} (not negative) in decimal, left-padded with zeros to {@code width} digits. */
    static String zeroPadded(long value, int width) {
        String digits = Long.toString(value);
        return digits.length() >= width ? digits : "0".repeat(width - digits.length()) + digits;
    }

    /** The 8 lowercase hex digits of {@code value}, as {@code %08x}. */
    public static String hex8(int value) {
        String digits = Integer.toHexString(value);
        return digits.length() == 8 ? digits : "0".repeat(8 - digits.length()) + digits;
    }

    /** The save id of a key below {@code data/}, or empty. */
    public static Optional<String> saveIdOfDataKey(String key) {
        if (!key.startsWith(DATA)) {
            return Optional.empty();
        }
        int slash = key.indexOf('/', DATA.length());
        if (slash < 0) {
            return Optional.empty();
        }
        String id = key.substring(DATA.length(), slash);
        return isSaveId(id) ? Optional.of(id) : Optional.empty();
    }
}
