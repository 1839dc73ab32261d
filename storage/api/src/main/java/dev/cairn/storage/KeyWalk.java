package dev.cairn.storage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The listing of a store whose keys are paths in a directory tree (the local and the HDFS store): a
 * walk of the directories that can hold keys starting with a prefix, optionally only the keys after
 * a cursor, fed by the backend's own directory-listing primitive ({@link Directories}).
 *
 * <p>A write in progress is a hidden temp file beside its key ({@link #tempName}); the walk lists
 * either the objects or those temp files. Not a snapshot: entries created or deleted during the walk
 * may or may not be seen; entries that vanish between listing and stat are skipped.
 */
public final class KeyWalk {
    private static final String TMP_SUFFIX = ".tmp";

    private KeyWalk() {}

    /** What a directory entry is, as far as listing is concerned. */
    public enum Kind { FILE, DIRECTORY, OTHER }

    /** An entry's kind, size and modification time. */
    public record Attributes(Kind kind, long length, Instant modified) {
        public Attributes {
            Objects.requireNonNull(kind, "kind is null");
            Objects.requireNonNull(modified, "modified is null");
        }
    }

    /** One child of a listed directory; its attributes may be fetched lazily (a stat per entry). */
    public interface Entry {
        String name();

        /** The entry's attributes, or empty if it vanished since it was listed. */
        Optional<Attributes> attributes() throws IOException;
    }

    /** A backend's directory listing. */
    @FunctionalInterface
    public interface Directories {
        /**
         * The children of the directory holding the keys that start with {@code dirKey} ("" for the
         * root, else ending in '/'), in any order. Empty when the directory does not exist or is not a
         * directory. A backend that can start a listing in the middle (HDFS) may omit the names that
         * sort (as UTF-8 bytes) at or before {@code fromName}; others may ignore it.
         */
        List<? extends Entry> children(String dirKey, byte[] fromName) throws IOException;
    }

    /** The hidden name of a temp file beside the object named {@code name}. */
    public static String tempName(String name, long random) {
        return "." + name + "." + Long.toHexString(random) + TMP_SUFFIX;
    }

    /** Whether {@code name} (one path segment) is the temp file of a write in progress. */
    public static boolean isTempName(String name) {
        return name.startsWith(".") && name.endsWith(TMP_SUFFIX);
    }

    /** The key of the directory holding every key that starts with {@code prefix}: "" or "a/b/". */
    public static String dirKeyOf(String prefix) {
        int slash = prefix.lastIndexOf('/');
        return slash < 0 ? "" : prefix.substring(0, slash + 1);
    }

    /** Objects (or, with {@code temps}, temp files of writes) below {@code prefix}, sorted by key. */
    public static List<ObjectInfo> list(Directories dirs, String prefix, boolean temps) throws IOException {
        Keys.checkPrefix(prefix);
        return walk(dirs, prefix, null, temps);
    }

    /**
     * The objects below {@code prefix} whose key sorts after {@code startAfter}, sorted. Directories
     * and entries that cannot hold such keys are skipped by name, before any per-entry attributes.
     */
    public static List<ObjectInfo> listAfter(Directories dirs, String prefix, String startAfter) throws IOException {
        Keys.checkPrefix(prefix);
        Objects.requireNonNull(startAfter, "startAfter is null");
        return walk(dirs, prefix, startAfter, false);
    }

    private static List<ObjectInfo> walk(Directories dirs, String prefix, String startAfter, boolean temps) throws IOException {
        List<ObjectInfo> result = new ArrayList<>();
        collect(dirs, dirKeyOf(prefix), prefix, startAfter, temps, result);
        result.sort(Comparator.comparing(ObjectInfo::key));
        return result;
    }

    private static void collect(Directories dirs, String dirKey, String prefix, String startAfter, boolean temps,
            List<ObjectInfo> into) throws IOException {
        if (startAfter != null && !dirKey.isEmpty() && !Keys.mayHoldKeysAfter(dirKey, startAfter)) {
            return;
        }
        List<String> subdirs = new ArrayList<>();
        for (Entry entry : dirs.children(dirKey, cursorIn(dirKey, startAfter))) {
            String key = dirKey + entry.name();
            boolean inPrefix = key.startsWith(prefix) || prefix.startsWith(key + "/");
            if (!inPrefix || (startAfter != null && !Keys.mayHoldKeysAfter(key, startAfter))) {
                continue; // by name alone
            }
            Optional<Attributes> attrs = entry.attributes();
            if (attrs.isEmpty()) {
                continue; // committed or deleted while listing
            }
            if (attrs.get().kind() == Kind.DIRECTORY) {
                subdirs.add(key + "/");
            } else if (attrs.get().kind() == Kind.FILE && isTempName(entry.name()) == temps && key.startsWith(prefix)
                    && (startAfter == null || key.compareTo(startAfter) > 0)) {
                into.add(new ObjectInfo(key, attrs.get().length(), attrs.get().modified()));
            }
        }
        for (String sub : subdirs) {
            collect(dirs, sub, prefix, startAfter, temps, into);
        }
    }

    /**
     * Where a directory's listing may start: just before the name {@code startAfter} has in it (its
     * bytes but the last, as listings compare names as bytes), so that a directory of that name, which
     * may hold keys after the cursor, is still listed; the key filter drops the rest.
     */
    private static byte[] cursorIn(String dirKey, String startAfter) {
        if (startAfter == null || !startAfter.startsWith(dirKey) || startAfter.length() <= dirKey.length()) {
            return new byte[0];
        }
        String rest = startAfter.substring(dirKey.length());
        int s = rest.indexOf('/');
        byte[] name = (s < 0 ? rest : rest.substring(0, s)).getBytes(StandardCharsets.UTF_8);
        return Arrays.copyOf(name, name.length - 1);
    }
}
