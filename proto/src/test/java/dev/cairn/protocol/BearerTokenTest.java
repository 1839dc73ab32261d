package dev.cairn.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BearerTokenTest {
    @Test
    void matchesOnlyTheSameToken() {
        assertThat(BearerToken.matches("s3cret", "s3cret")).isTrue();
        assertThat(BearerToken.matches("s3cret", "s3cre")).isFalse();
        assertThat(BearerToken.matches("s3cret", "s3cretX")).isFalse();
        assertThat(BearerToken.matches("s3cret", "")).isFalse();
        assertThat(BearerToken.matches("s3cret", null)).isFalse();
    }

    @Test
    void headerValuesParse() {
        assertThat(BearerToken.fromHeader("Bearer abc")).isEqualTo("abc");
        assertThat(BearerToken.fromHeader("bearer abc")).isEqualTo("abc");
        assertThat(BearerToken.fromHeader("Basic abc")).isNull();
        assertThat(BearerToken.fromHeader("Bear")).isNull();
        assertThat(BearerToken.fromHeader(null)).isNull();
    }

    @Test
    void aTokenThatCannotTravelInAHeaderIsRefused() {
        assertThatThrownBy(() -> BearerToken.clientInterceptor("two words")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> BearerToken.clientInterceptor("line\nbreak")).isInstanceOf(IllegalArgumentException.class);
        assertThat(BearerToken.clientInterceptor("")).isNotNull();
    }
}
