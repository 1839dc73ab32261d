package dev.cairn.storage.s3;

import dev.cairn.storage.InvalidStorageUriException;
import dev.cairn.storage.StorageUri;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * The options of an {@code s3://bucket/prefix?key=value&...} URI, validated.
 *
 * <ul>
 *   <li>{@code endpoint}: URL of an S3-compatible server, e.g. {@code http://127.0.0.1:9000}
 *       (default: AWS S3 of the region).
 *   <li>{@code region}: signing region (default: the AWS settings' region, else {@code us-east-1}).
 *   <li>{@code pathStyle}: {@code true} for {@code endpoint/bucket/key} addressing, which most local
 *       servers need (default {@code false}).
 *   <li>{@code accessKey}, {@code secretKey}: static credentials, meant for local test servers;
 *       otherwise the standard AWS credential chain (environment, system properties, profile,
 *       container and instance roles). They never appear in messages ({@link StorageUri#toString}
 *       drops options).
 *   <li>{@code partSize}: multipart part size in bytes, at least 5 MiB (default 8 MiB); objects
 *       smaller than one part are one PutObject. Also accepts {@code k}, {@code m} suffixes.
 *   <li>{@code uploadParallelism}: parts of one writer in flight at once (default 4); a writer holds
 *       at most {@code uploadParallelism + 1} part buffers.
 *   <li>{@code conditionalWrites}: {@code true} (default) makes create-if-absent a PutObject with
 *       {@code If-None-Match: *}; {@code false} is for servers that ignore that header and uses a
 *       check-then-put with a read-back, which is <b>not</b> race-free.
 *   <li>{@code maxAttempts}: attempts per request, retries included (default 10).
 *   <li>{@code connectTimeout}, {@code socketTimeout}: milliseconds (default 5000 and 60000);
 *       {@code requestTimeout}: milliseconds for one attempt of a non-streaming call (default none).
 * </ul>
 */
record S3Options(
        Optional<URI> endpoint,
        Optional<String> region,
        boolean pathStyle,
        Optional<String> accessKey,
        Optional<String> secretKey,
        int partSize,
        int uploadParallelism,
        boolean conditionalWrites,
        int maxAttempts,
        Duration connectTimeout,
        Duration socketTimeout,
        Optional<Duration> requestTimeout) {

    static final int MIN_PART_SIZE = 5 << 20;
    static final int DEFAULT_PART_SIZE = 8 << 20;
    private static final Set<String> KNOWN = Set.of("endpoint", "region", "pathStyle", "accessKey", "secretKey",
            "partSize", "uploadParallelism", "conditionalWrites", "maxAttempts", "connectTimeout", "socketTimeout",
            "requestTimeout");

    static S3Options of(StorageUri uri) {
        for (String key : uri.options().keySet()) {
            if (!KNOWN.contains(key)) {
                throw new InvalidStorageUriException("unknown option '" + key + "' in " + uri + "; known: " + KNOWN);
            }
        }
        Optional<URI> endpoint = Optional.ofNullable(uri.options().get("endpoint")).map(e -> {
            try {
                URI parsed = URI.create(e);
                if (parsed.getScheme() == null || parsed.getHost() == null) {
                    throw new IllegalArgumentException("no scheme or host");
                }
                return parsed;
            } catch (IllegalArgumentException ex) {
                throw new InvalidStorageUriException("option endpoint='" + e + "' of " + uri + " is not a URL: " + ex.getMessage());
            }
        });
        Optional<String> accessKey = Optional.ofNullable(uri.options().get("accessKey"));
        Optional<String> secretKey = Optional.ofNullable(uri.options().get("secretKey"));
        if (accessKey.isPresent() != secretKey.isPresent()) {
            throw new InvalidStorageUriException("options accessKey and secretKey of " + uri + " go together");
        }
        long partSize = bytes(uri, "partSize", DEFAULT_PART_SIZE);
        if (partSize < MIN_PART_SIZE || partSize > (1L << 30)) {
            throw new InvalidStorageUriException("option partSize of " + uri + " must be between 5 MiB and 1 GiB, not " + partSize);
        }
        int parallelism = (int) number(uri, "uploadParallelism", 4);
        if (parallelism < 1 || parallelism > 64) {
            throw new InvalidStorageUriException("option uploadParallelism of " + uri + " must be between 1 and 64");
        }
        int maxAttempts = (int) number(uri, "maxAttempts", 10);
        if (maxAttempts < 1) {
            throw new InvalidStorageUriException("option maxAttempts of " + uri + " must be at least 1");
        }
        return new S3Options(
                endpoint,
                Optional.ofNullable(uri.options().get("region")),
                bool(uri, "pathStyle", false),
                accessKey,
                secretKey,
                (int) partSize,
                parallelism,
                bool(uri, "conditionalWrites", true),
                maxAttempts,
                Duration.ofMillis(number(uri, "connectTimeout", 5_000)),
                Duration.ofMillis(number(uri, "socketTimeout", 60_000)),
                uri.options().containsKey("requestTimeout")
                        ? Optional.of(Duration.ofMillis(number(uri, "requestTimeout", 0)))
                        : Optional.empty());
    }

    private static boolean bool(StorageUri uri, String key, boolean fallback) {
        String v = uri.options().get(key);
        if (v == null) {
            return fallback;
        }
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new InvalidStorageUriException("option " + key + " of " + uri + " must be true or false, not '" + v + "'");
        };
    }

    private static long number(StorageUri uri, String key, long fallback) {
        String v = uri.options().get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new InvalidStorageUriException("option " + key + " of " + uri + " must be a number, not '" + v + "'");
        }
    }

    private static long bytes(StorageUri uri, String key, long fallback) {
        String v = uri.options().get(key);
        if (v == null) {
            return fallback;
        }
        String t = v.trim().toLowerCase(Locale.ROOT).replaceAll("i?b$", "");
        long unit = 1;
        if (t.endsWith("k")) {
            unit = 1L << 10;
        } else if (t.endsWith("m")) {
            unit = 1L << 20;
        } else if (t.endsWith("g")) {
            unit = 1L << 30;
        }
        if (unit != 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Long.parseLong(t) * unit;
        } catch (NumberFormatException e) {
            throw new InvalidStorageUriException("option " + key + " of " + uri + " must be a size like 8388608 or 8m, not '" + v + "'");
        }
    }
}
