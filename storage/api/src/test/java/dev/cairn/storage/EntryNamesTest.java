package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class EntryNamesTest {

    @ParameterizedTest
    @ValueSource(strings = {"w", "model/dense_1/kernel", "a.b/..c/d..", "optimizer/step-1", "ünïcode/名前", "a b/c"})
    void acceptsRelativeNames(String name) {
        assertThat(EntryNames.check(name)).isEqualTo(name);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "../x|contains '..'",
        "a/../../x|contains '..'",
        "a/..|contains '..'",
        "/abs|absolute",
        "a//b|empty or '.' segment",
        "a/|empty or '.' segment",
        "./a|empty or '.' segment",
        "a\\b|forbidden character"
    })
    void rejectsUnsafeNames(String name, String reason) {
        assertThatThrownBy(() -> EntryNames.check(name))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(reason);
    }

    @Test
    void rejectsNulAndControlCharacters() {
        assertThatThrownBy(() -> EntryNames.check("a\0b")).hasMessageContaining("NUL").hasMessageContaining("a\\0b");
        assertThatThrownBy(() -> EntryNames.check("a\nb")).hasMessageContaining("forbidden character");
        assertThatThrownBy(() -> EntryNames.check("a\u007fb")).hasMessageContaining("forbidden character");
    }

    @Test
    void rejectsEmptyAndNull() {
        assertThatThrownBy(() -> EntryNames.check("")).hasMessageContaining("empty");
        assertThatThrownBy(() -> EntryNames.check(null)).hasMessageContaining("empty");
    }

    @Test
    void limitsTheUtf8LengthNotTheCharCount() {
        assertThat(EntryNames.check("é".repeat(512))).hasSize(512); // 1024 bytes
        assertThatThrownBy(() -> EntryNames.check("é".repeat(513)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("longer than 1024 bytes");
        assertThatThrownBy(() -> EntryNames.check("x".repeat(1025))).hasMessageContaining("longer than 1024 bytes");
    }
}
