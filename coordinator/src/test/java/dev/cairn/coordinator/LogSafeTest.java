package dev.cairn.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class LogSafeTest {
    @Test
    void controlCharactersCannotForgeALogLine() {
        assertThat(LogSafe.quote("run\n[main] INFO forged\r\u0000")).isEqualTo("'run\\n[main] INFO forged\\r\\u0000'");
        assertThat(LogSafe.quote("it's a\\b")).isEqualTo("'it\\'s a\\\\b'");
    }

    @Test
    void longStringsAreTruncatedAndSayHowLongTheyWere() {
        String s = LogSafe.truncate("x".repeat(60 << 20));
        assertThat(s).startsWith("x".repeat(LogSafe.MAX_CHARS)).endsWith("…(" + (60 << 20) + " chars)");
        assertThat(s.length()).isLessThan(LogSafe.MAX_CHARS + 30);
    }
}
