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
        String seg = "é".repeat(127) + "x"; // 255 bytes
        String longest = seg + "/" + seg + "/" + seg + "/" + "x".repeat(254) + "/z"; // 1024 bytes
        assertThat(EntryNames.check(longest)).isEqualTo(longest);
        assertThatThrownBy(() -> EntryNames.check(longest + "x"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("longer than 1024 bytes");
        assertThatThrownBy(() -> EntryNames.check("x/".repeat(512) + "x")).hasMessageContaining("longer than 1024 bytes");
    }

    @Test
    void limitsEachSegmentTo255Bytes() {
        assertThat(EntryNames.check("a/" + "é".repeat(127) + "x")).isNotNull();
        assertThatThrownBy(() -> EntryNames.check("a/" + "é".repeat(128)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("segment longer than 255 bytes");
        assertThatThrownBy(() -> EntryNames.check("x".repeat(1024))).hasMessageContaining("segment longer than 255 bytes");
    }

    @Test
    void everyNameWithinTheLimitsCanBeWrittenAsAFile(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        String seg = "é".repeat(127) + "x";
        String name = seg + "/" + seg + "/" + seg + "/" + "y".repeat(254);
        java.nio.file.Path file = dir.resolve(EntryNames.restorePath(new Manifest.EntryRef(EntryNames.check(name), 3, 0, 0, 0, false)));
        java.nio.file.Files.createDirectories(file.getParent());
        java.nio.file.Files.write(file, new byte[] {1});
        assertThat(file).hasBinaryContent(new byte[] {1});
    }
}
