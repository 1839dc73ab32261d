package dev.cairn.storage;

import static java.util.Objects.requireNonNull;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A parsed storage location: {@code file:///abs/path}, {@code hdfs://host:port/path} or
 * {@code s3://bucket/prefix}, with optional {@code ?key=value} options (S3: {@code endpoint},
 * {@code region}, {@code pathStyle}). A plain absolute or relative path is taken as a {@code file:}
 * URI.
 *
 * @param scheme {@code file}, {@code hdfs} or {@code s3}
 * @param authority host:port for HDFS, bucket for S3, empty for files
 * @param path the root path: absolute for file/hdfs, the key prefix (no leading or trailing '/') for S3
 * @param options query options, in order
 */
public record StorageUri(String scheme, String authority, String path, Map<String, String> options) {

    public StorageUri {
        requireNonNull(scheme, "scheme is null");
        requireNonNull(authority, "authority is null");
        requireNonNull(path, "path is null");
        options = Collections.unmodifiableMap(new LinkedHashMap<>(requireNonNull(options, "options is null")));
    }

    /** Parses a storage URI, throwing {@link InvalidStorageUriException} with the reason when it is malformed. */
    public static StorageUri parse(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidStorageUriException("storage URI is empty");
        }
        String trimmed = text.trim();
        if (!trimmed.contains("://") && !trimmed.startsWith("file:")) {
            if (trimmed.matches("^[A-Za-z][A-Za-z0-9+.-]*:.*")) {
                throw new InvalidStorageUriException("malformed storage URI '" + text + "': expected file:///path, hdfs://host:port/path or s3://bucket/prefix");
            }
            Path p = Path.of(trimmed).toAbsolutePath().normalize();
            return new StorageUri("file", "", p.toString(), Map.of());
        }
        URI uri;
        try {
            uri = new URI(trimmed);
        } catch (URISyntaxException e) {
            throw new InvalidStorageUriException("malformed storage URI '" + text + "': " + e.getReason());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(java.util.Locale.ROOT);
        Map<String, String> options = parseQuery(text, uri.getRawQuery());
        String rawPath = uri.getPath() == null ? "" : uri.getPath();
        switch (scheme) {
            case "file": {
                if (uri.getAuthority() != null && !uri.getAuthority().isEmpty() && !uri.getAuthority().equals("localhost")) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': file URIs take no host; use file:///absolute/path");
                }
                if (!rawPath.startsWith("/")) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': file URIs need an absolute path, like file:///data/ckpt");
                }
                return new StorageUri("file", "", normalizePath(text, rawPath), options);
            }
            case "hdfs": {
                if (uri.getHost() == null) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': expected hdfs://namenode:port/path");
                }
                String authority = uri.getPort() > 0 ? uri.getHost() + ":" + uri.getPort() : uri.getHost();
                if (!rawPath.startsWith("/")) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': expected hdfs://namenode:port/path with a path");
                }
                return new StorageUri("hdfs", authority, normalizePath(text, rawPath), options);
            }
            case "s3": {
                String bucket = uri.getHost() != null ? uri.getHost() : uri.getAuthority();
                if (bucket == null || bucket.isEmpty()) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': expected s3://bucket/prefix");
                }
                if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
                    throw new InvalidStorageUriException("malformed storage URI '" + text + "': '" + bucket + "' is not a valid S3 bucket name");
                }
                String prefix = rawPath.replaceAll("^/+", "").replaceAll("/+$", "");
                if (!prefix.isEmpty()) {
                    try {
                        Keys.check(prefix);
                    } catch (IllegalArgumentException e) {
                        throw new InvalidStorageUriException("malformed storage URI '" + text + "': " + e.getMessage());
                    }
                }
                return new StorageUri("s3", bucket, prefix, options);
            }
            default:
                throw new InvalidStorageUriException("unsupported storage scheme '" + scheme + "' in '" + text + "': use file://, hdfs:// or s3://");
        }
    }

    private static String normalizePath(String text, String rawPath) {
        for (String segment : rawPath.split("/")) {
            if (segment.equals("..")) {
                throw new InvalidStorageUriException("malformed storage URI '" + text + "': '..' is not allowed in the path");
            }
        }
        String p = rawPath.replaceAll("/+", "/");
        if (p.length() > 1 && p.endsWith("/")) {
            p = p.substring(0, p.length() - 1);
        }
        return p;
    }

    private static Map<String, String> parseQuery(String text, String rawQuery) {
        Map<String, String> options = new LinkedHashMap<>();
        if (rawQuery == null || rawQuery.isEmpty()) {
            return options;
        }
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw new InvalidStorageUriException("malformed storage URI '" + text + "': option '" + pair + "' is not key=value");
            }
            options.put(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                    URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return options;
    }

    /** The option's value, or {@code fallback}. */
    public String option(String key, String fallback) {
        return options.getOrDefault(key, fallback);
    }

    /** The URI of an object below this root, for messages. */
    public String resolve(String key) {
        return base() + "/" + key;
    }

    /** The root without options, e.g. {@code s3://bucket/prefix}. */
    public String base() {
        return switch (scheme) {
            case "file" -> "file://" + path;
            case "hdfs" -> "hdfs://" + authority + path;
            default -> "s3://" + authority + (path.isEmpty() ? "" : "/" + path);
        };
    }

    /**
     * The full URI, options included, such that {@code parse(u.toUriString()).equals(u)}. This is
     * what the coordinator hands to agents; {@link #toString()} leaves the options out because they
     * may hold credentials, and is what logs and messages show.
     */
    public String toUriString() {
        if (options.isEmpty()) {
            return base();
        }
        StringBuilder b = new StringBuilder(base()).append('?');
        options.forEach((k, v) -> b.append(b.charAt(b.length() - 1) == '?' ? "" : "&")
                .append(java.net.URLEncoder.encode(k, StandardCharsets.UTF_8)).append('=')
                .append(java.net.URLEncoder.encode(v, StandardCharsets.UTF_8)));
        return b.toString();
    }

    @Override
    public String toString() {
        return base();
    }
}
