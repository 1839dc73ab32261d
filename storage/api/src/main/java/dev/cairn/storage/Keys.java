package dev.cairn.storage;

/** Validation of object keys: relative, '/'-separated, no empty, '.' or '..' segments. */
public final class Keys {
    private Keys() {}

    /** Returns {@code key} if it is a valid object key, otherwise throws. */
    public static String check(String key) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("object key is empty");
        }
        if (key.startsWith("/")) {
            throw new IllegalArgumentException("object key is absolute: '" + key + "'");
        }
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (c == 0 || c == '\\' || Character.isISOControl(c)) {
                throw new IllegalArgumentException("object key has a forbidden character: '" + printable(key) + "'");
            }
        }
        for (String segment : key.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
                throw new IllegalArgumentException("object key has an empty, '.' or '..' segment: '" + key + "'");
            }
        }
        return key;
    }

    /** Returns {@code prefix} if it is a valid listing prefix (empty, or a key prefix). */
    public static String checkPrefix(String prefix) {
        if (prefix == null) {
            throw new IllegalArgumentException("prefix is null");
        }
        if (prefix.isEmpty()) {
            return prefix;
        }
        check(prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix);
        return prefix;
    }

    static String printable(String s) {
        return s.replace("\0", "\\0");
    }

    /**
     * Whether {@code key} (an object, or a directory-like prefix ending in '/') or a key below it can
     * sort after {@code startAfter}: not when it sorts before it and is not its prefix. Lets a store
     * skip whole directories when listing after a cursor.
     */
    public static boolean mayHoldKeysAfter(String key, String startAfter) {
        return key.compareTo(startAfter) > 0 || startAfter.startsWith(key);
    }
}
