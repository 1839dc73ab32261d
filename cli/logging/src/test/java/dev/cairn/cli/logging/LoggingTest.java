package dev.cairn.cli.logging;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.PatternLayout;
import ch.qos.logback.classic.spi.LoggingEvent;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import org.junit.jupiter.api.Test;

class LoggingTest {
    @Test
    void cairnLogTakesALevelJsonOrBoth() {
        assertThat(Logging.parse(null, "warn")).isEqualTo(new Logging.Settings("warn", false));
        assertThat(Logging.parse("", "info")).isEqualTo(new Logging.Settings("info", false));
        assertThat(Logging.parse("DEBUG", "warn")).isEqualTo(new Logging.Settings("debug", false));
        assertThat(Logging.parse("json", "info")).isEqualTo(new Logging.Settings("info", true));
        assertThat(Logging.parse("json, trace", "info")).isEqualTo(new Logging.Settings("trace", true));
    }

    @Test
    void anInvalidCairnLogIsAnError() {
        for (String bad : List.of("verbose", "json,json", "info,debug", "info,")) {
            assertThatThrownBy(() -> Logging.parse(bad, "warn")).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("CAIRN_LOG").hasMessageContaining("'" + bad + "'");
        }
    }

    @Test
    void theRunIdComesFromTheRunIdOption() {
        assertThat(Logging.runIdOption(new String[] {"toy-worker", "--run-id", "run-3", "--index", "0"})).hasValue("run-3");
        assertThat(Logging.runIdOption(new String[] {"agent", "--run-id=run-4"})).hasValue("run-4");
        assertThat(Logging.runIdOption(new String[] {"list", "--storage", "/x"})).isEmpty();
    }

    private static LoggingEvent event(String message, Throwable error) {
        LoggerContext context = new LoggerContext();
        return new LoggingEvent("fqcn", context.getLogger("dev.cairn.coordinator.SaveCoordinator"), Level.WARN, message, error, null);
    }

    @Test
    void linesCarryAnIsoTimestampWithTheDateAndTheRunId() {
        System.setProperty(Logging.RUN_PROPERTY, "run-7");
        PatternLayout layout = new PatternLayout();
        layout.setContext(new LoggerContext());
        layout.setPattern(Logging.PATTERN);
        layout.start();

        String line = layout.doLayout(event("worker 2 lost", null));

        assertThat(line).contains(" WARN  [run=run-7] ").contains("SaveCoordinator - worker 2 lost");
        assertThat(OffsetDateTime.parse(line.substring(0, line.indexOf(' ')))).isNotNull();
    }

    @Test
    void jsonLinesAreOneObjectEach() throws Exception {
        System.setProperty(Logging.RUN_PROPERTY, "run-8");
        JsonLogLayout layout = new JsonLogLayout();
        layout.start();

        String line = layout.doLayout(event("upload \"failed\"\nretrying", new IllegalStateException("boom")));

        assertThat(line).endsWith(System.lineSeparator());
        assertThat(line.strip().lines()).hasSize(1);
        JsonNode n = new ObjectMapper().readTree(line);
        assertThat(Instant.parse(n.get("time").asText())).isNotNull();
        assertThat(n.get("level").asText()).isEqualTo("WARN");
        assertThat(n.get("run").asText()).isEqualTo("run-8");
        assertThat(n.get("logger").asText()).isEqualTo("dev.cairn.coordinator.SaveCoordinator");
        assertThat(n.get("message").asText()).isEqualTo("upload \"failed\"\nretrying");
        assertThat(n.get("error").asText()).contains("IllegalStateException: boom");
    }
}
