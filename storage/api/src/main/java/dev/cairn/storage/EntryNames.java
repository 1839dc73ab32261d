package dev.cairn.storage;

import java.nio.charset.StandardCharsets;

/**
 * Rules for checkpoint entry names ({@code model/dense_1/kernel}): non-empty, relative,
 * '/'-separated, no empty, '.' or '..' segments, no NUL, backslash or control characters,
 * at most {@value #MAX_BYTES} bytes of UTF-8 in all and {@value #MAX_SEGMENT_BYTES} in each
 * segment (the longest file name Linux, macOS and Windows file systems take). Restores write entries
 * as files ({@link #restorePath}), so these rules are what keeps a crafted manifest from writing
 * outside the restore directory, and what makes every allowed name restorable.
 */
public final class EntryNames {
    public static final int MAX_BYTES = 1024;
    public static final int MAX_SEGMENT_BYTES = 255;

    private EntryNames() {}

    /** Returns {@code name} when valid, otherwise throws with a one-line reason. */
    public static String check(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("entry name is empty");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > MAX_BYTES) {
            throw new IllegalArgumentException("entry name is longer than " + MAX_BYTES + " bytes: '" + excerpt(name) + "'");
        }
        if (name.startsWith("/")) {
            throw new IllegalArgumentException("entry name is absolute: '" + name + "'");
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c == 0) {
                throw new IllegalArgumentException("entry name contains NUL: '" + name.replace("\0", "\\0") + "'");
            }
            if (c == '\\' || Character.isISOControl(c)) {
                throw new IllegalArgumentException("entry name contains a forbidden character (backslash or control): '" + name + "'");
            }
        }
        for (String segment : name.split("/", -1)) {
            if (segment.equals("..")) {
                throw new IllegalArgumentException("entry name contains '..': '" + name + "'");
            }
            if (segment.isEmpty() || segment.equals(".")) {
                throw new IllegalArgumentException("entry name has an empty or '.' segment: '" + name + "'");
            }
            if (segment.getBytes(StandardCharsets.UTF_8).length > MAX_SEGMENT_BYTES) {
                throw new IllegalArgumentException("entry name has a segment longer than " + MAX_SEGMENT_BYTES
                        + " bytes (a file name no file system takes): '" + excerpt(segment) + "'");
            }
        }
        return name;
    }

    /**
     * Where {@code cairn restore} writes an entry, relative to its target directory:
     * {@code replicated/<name>} or {@code worker-<i>/<name>}.
     */
    public static String restorePath(Manifest.EntryRef entry) {
        return (entry.replicated() ? "replicated" : "worker-" + entry.worker()) + "/" + check(entry.name());
    }

    /** The start of a long string, for error messages. */
    static String excerpt(String s) {
        return s.length() <= 60 ? s : s.substring(0, 60) + "...";
    }
}
