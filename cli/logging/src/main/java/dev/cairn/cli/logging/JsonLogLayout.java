package dev.cairn.cli.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.LayoutBase;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;

/**
 * {@code CAIRN_LOG=json}: one JSON object per line with {@code time} (ISO-8601, UTC), {@code level},
 * {@code run}, {@code thread}, {@code logger}, {@code message} and, when there is one, {@code error}
 * (the exception with its stack trace).
 */
public final class JsonLogLayout extends LayoutBase<ILoggingEvent> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public String doLayout(ILoggingEvent event) {
        ObjectNode n = JSON.createObjectNode();
        n.put("time", Instant.ofEpochMilli(event.getTimeStamp()).toString());
        n.put("level", event.getLevel().toString());
        n.put("run", System.getProperty(Logging.RUN_PROPERTY, "-"));
        n.put("thread", event.getThreadName());
        n.put("logger", event.getLoggerName());
        n.put("message", event.getFormattedMessage());
        if (event.getThrowableProxy() != null) {
            n.put("error", ThrowableProxyUtil.asString(event.getThrowableProxy()));
        }
        try {
            return JSON.writeValueAsString(n) + System.lineSeparator();
        } catch (JsonProcessingException e) {
            return "{\"level\":\"ERROR\",\"message\":\"log event not serializable\"}" + System.lineSeparator();
        }
    }
}
