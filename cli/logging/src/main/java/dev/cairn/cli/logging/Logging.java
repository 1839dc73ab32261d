package dev.cairn.cli.logging;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import java.util.Locale;
import java.util.Set;
import org.slf4j.LoggerFactory;

/**
 * The cairn command's logs: one line per event on stderr, with an ISO-8601 timestamp (date, time,
 * offset) and the run id, or JSON lines. {@code CAIRN_LOG} is a comma-separated list of a level
 * ({@code error}, {@code warn}, {@code info}, {@code debug}, {@code trace}) and/or {@code json};
 * anything else is an error ({@link IllegalArgumentException}). Commands that know their run call {@link #setRunId}.
 */
public final class Logging {
    /** The system property the log lines take the run id from (read at every event). */
    public static final String RUN_PROPERTY = "cairn.run";
    private static final Set<String> LEVELS = Set.of("error", "warn", "info", "debug", "trace");
    public static final String PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [run=%property{" + RUN_PROPERTY + "}] [%thread] %logger{0} - %msg%n";

    /** What {@code CAIRN_LOG} asked for. */
    public record Settings(String level, boolean json) {}

    private Logging() {}

    /** Parses {@code CAIRN_LOG}; {@code null} or empty means the command's default level, plain lines. */
    public static Settings parse(String value, String defaultLevel) {
        String level = null;
        boolean json = false;
        if (value != null && !value.isBlank()) {
            for (String part : value.toLowerCase(Locale.ROOT).split(",", -1)) {
                String p = part.strip();
                if (p.equals("json") && !json) {
                    json = true;
                } else if (LEVELS.contains(p) && level == null) {
                    level = p;
                } else {
                    throw new IllegalArgumentException("CAIRN_LOG must be a level (error, warn, info, debug, trace), json, or both "
                            + "separated by a comma (e.g. 'json,debug'), was '" + value + "'");
                }
            }
        }
        return new Settings(level == null ? defaultLevel : level, json);
    }

    /** The level a command logs at unless {@code CAIRN_LOG} says otherwise. */
    public static String defaultLevel(String[] args) {
        String first = args.length > 0 ? args[0] : "";
        return switch (first) {
            case "coordinator", "toy-worker", "agent" -> "info";
            case "demo", "chaos", "bench" -> "error";
            default -> "warn";
        };
    }

    /** Commands that start embedded storage servers, whose own logs would drown their output. */
    private static final Set<String> EMBEDDING = Set.of("demo", "chaos", "bench");

    /** Installs the stderr appender; call before anything logs. */
    public static void configure(Settings settings, String[] args) {
        // the fat jar carries only logback; a test class path may also carry slf4j-simple: pick ours, without a warning
        System.setProperty("slf4j.provider", "ch.qos.logback.classic.spi.LogbackServiceProvider");
        System.setProperty("slf4j.internal.verbosity", "WARN"); // no "SLF4J(I): Attempting to load provider" line
        if (System.getProperty(RUN_PROPERTY) == null) {
            System.setProperty(RUN_PROPERTY, runIdOption(args).orElse("-"));
        }
        LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
        context.reset();
        Encoder<ILoggingEvent> encoder;
        if (settings.json()) {
            JsonLogLayout layout = new JsonLogLayout();
            layout.setContext(context);
            layout.start();
            LayoutWrappingEncoder<ILoggingEvent> wrapping = new LayoutWrappingEncoder<>();
            wrapping.setLayout(layout);
            encoder = wrapping;
        } else {
            PatternLayoutEncoder pattern = new PatternLayoutEncoder();
            pattern.setPattern(PATTERN);
            encoder = pattern;
        }
        encoder.setContext(context);
        encoder.start();
        ConsoleAppender<ILoggingEvent> appender = new ConsoleAppender<>();
        appender.setContext(context);
        appender.setName("stderr");
        appender.setTarget("System.err");
        appender.setEncoder(encoder);
        appender.start();
        Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
        root.setLevel(Level.toLevel(settings.level()));
        root.addAppender(appender);
        for (String noisy : new String[] {"io.grpc", "io.netty", "org.apache.hadoop", "software.amazon.awssdk", "org.eclipse.jetty"}) {
            if (Level.toLevel(settings.level()).isGreaterOrEqual(Level.WARN)) {
                continue;
            }
            context.getLogger(noisy).setLevel(Level.WARN);
        }
        if (args.length > 0 && EMBEDDING.contains(args[0])) {
            // a MiniDFSCluster logs WARN and even ERROR lines on every clean start and shutdown
            context.getLogger("org.apache.hadoop").setLevel(Level.OFF);
            context.getLogger("org.eclipse.jetty").setLevel(Level.ERROR);
            context.getLogger("org.gaul").setLevel(Level.ERROR);
        }
    }

    /** The value of {@code --run-id} (coordinator, toy-worker, agent), if given. */
    public static java.util.Optional<String> runIdOption(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].startsWith("--run-id=")) {
                return java.util.Optional.of(args[i].substring("--run-id=".length()));
            }
            if (args[i].equals("--run-id") && i + 1 < args.length) {
                return java.util.Optional.of(args[i + 1]);
            }
        }
        return java.util.Optional.empty();
    }

    /** Every later log line names this run. */
    public static void setRunId(String runId) {
        System.setProperty(RUN_PROPERTY, runId);
    }
}
