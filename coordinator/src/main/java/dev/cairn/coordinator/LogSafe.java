package dev.cairn.coordinator;

/**
 * Client strings made safe for one log line or status message: control characters (and the
 * Unicode line separators) escaped so a string cannot forge log lines, at most {@link #MAX_CHARS}
 * characters kept (then an ellipsis and the original length).
 */
final class LogSafe {
    static final int MAX_CHARS = 120;

    private LogSafe() {}

    /** {@code s} in single quotes, with quotes and backslashes also escaped, and truncated. */
    static String quote(String s) {
        return "'" + escape(s, true) + "'";
    }

    /** {@code s} with control characters escaped, truncated, without quotes. */
    static String truncate(String s) {
        return escape(s, false);
    }

    private static String escape(String s, boolean quoted) {
        if (s == null) {
            return "null";
        }
        int n = Math.min(s.length(), MAX_CHARS);
        StringBuilder b = new StringBuilder(n + 24);
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\'', '\\' -> {
                    if (quoted) {
                        b.append('\\');
                    }
                    b.append(c);
                }
                default -> {
                    if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029') {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        if (s.length() > MAX_CHARS) {
            b.append("…(").append(s.length()).append(" chars)");
        }
        return b.toString();
    }
}
