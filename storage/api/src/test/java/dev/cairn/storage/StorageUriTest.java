package dev.cairn.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class StorageUriTest {

    @Test
    void parsesFileUris() {
        StorageUri u = StorageUri.parse("file:///data//ckpt/run-1/");
        assertThat(u.scheme()).isEqualTo("file");
        assertThat(u.authority()).isEmpty();
        assertThat(u.path()).isEqualTo("/data/ckpt/run-1");
        assertThat(u.options()).isEmpty();
        assertThat(u.toString()).isEqualTo("file:///data/ckpt/run-1");
        assertThat(u.resolve("LATEST")).isEqualTo("file:///data/ckpt/run-1/LATEST");

        assertThat(StorageUri.parse("file:/data/x").path()).isEqualTo("/data/x");
        assertThat(StorageUri.parse("file://localhost/data/x").path()).isEqualTo("/data/x");
        assertThat(StorageUri.parse("FILE:///data/x").scheme()).isEqualTo("file");
    }

    @Test
    void parsesHdfsUris() {
        StorageUri u = StorageUri.parse("hdfs://namenode:8020/user/cairn/run-1");
        assertThat(u.scheme()).isEqualTo("hdfs");
        assertThat(u.authority()).isEqualTo("namenode:8020");
        assertThat(u.path()).isEqualTo("/user/cairn/run-1");
        assertThat(u.toString()).isEqualTo("hdfs://namenode:8020/user/cairn/run-1");

        assertThat(StorageUri.parse("hdfs://nn/ckpt").authority()).isEqualTo("nn");
    }

    @Test
    void parsesS3UrisWithOptions() {
        StorageUri u = StorageUri.parse("s3://my-bucket/runs/run-1/?endpoint=http%3A%2F%2Flocalhost%3A9000&region=eu-west-1&pathStyle=true");
        assertThat(u.scheme()).isEqualTo("s3");
        assertThat(u.authority()).isEqualTo("my-bucket");
        assertThat(u.path()).isEqualTo("runs/run-1");
        assertThat(u.options()).containsExactly(
                Map.entry("endpoint", "http://localhost:9000"), Map.entry("region", "eu-west-1"), Map.entry("pathStyle", "true"));
        assertThat(u.option("region", "us-east-1")).isEqualTo("eu-west-1");
        assertThat(u.option("missing", "fallback")).isEqualTo("fallback");
        assertThat(u.toString()).isEqualTo("s3://my-bucket/runs/run-1");

        StorageUri bare = StorageUri.parse("s3://my-bucket");
        assertThat(bare.path()).isEmpty();
        assertThat(bare.resolve("LATEST")).isEqualTo("s3://my-bucket/LATEST");
    }

    @Test
    void takesPlainPathsAsFiles(@org.junit.jupiter.api.io.TempDir Path dir) {
        StorageUri abs = StorageUri.parse(dir.resolve("ckpt").toString());
        assertThat(abs.scheme()).isEqualTo("file");
        assertThat(abs.path()).isEqualTo(dir.resolve("ckpt").toString());

        StorageUri rel = StorageUri.parse("some/dir/../ckpt");
        assertThat(rel.scheme()).isEqualTo("file");
        assertThat(Path.of(rel.path())).isAbsolute().isEqualTo(Path.of("some/ckpt").toAbsolutePath());
    }

    @Test
    void optionsAreUnmodifiable() {
        StorageUri u = StorageUri.parse("s3://my-bucket/p?region=x");
        assertThatThrownBy(() -> u.options().put("a", "b")).isInstanceOf(UnsupportedOperationException.class);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "gs://bucket/prefix",
        "ftp://host/path",
        "mailto:someone",
        "file://otherhost/data",
        "file:relative/path",
        "hdfs:///no-host",
        "hdfs://nn:8020",
        "s3:///no-bucket",
        "s3://Bad_Bucket/x",
        "s3://my-bucket/p?flag",
        "file:///data/../etc",
        "hdfs://nn:8020/a b"
    })
    void rejectsMalformedOrUnknownUrisNamingTheInput(String text) {
        assertThatThrownBy(() -> StorageUri.parse(text))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("'" + text + "'");
    }

    @Test
    void unknownSchemeNamesTheScheme() {
        assertThatThrownBy(() -> StorageUri.parse("gs://bucket/x"))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("unsupported storage scheme 'gs'");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   "})
    void rejectsEmpty(String text) {
        assertThatThrownBy(() -> StorageUri.parse(text))
                .isInstanceOf(InvalidStorageUriException.class)
                .hasMessageContaining("empty");
    }

    @org.junit.jupiter.api.Test
    void theFullUriKeepsOptionsAndParsesBackToTheSameValue() {
        StorageUri u = StorageUri.parse("s3://bucket/run?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1&pathStyle=true&secretKey=a%2Bb%26c");
        org.assertj.core.api.Assertions.assertThat(u.option("secretKey", null)).isEqualTo("a+b&c");
        org.assertj.core.api.Assertions.assertThat(StorageUri.parse(u.toUriString())).isEqualTo(u);
        org.assertj.core.api.Assertions.assertThat(u.toString()).isEqualTo("s3://bucket/run").doesNotContain("secret");
        StorageUri plain = StorageUri.parse("file:///data/ckpt");
        org.assertj.core.api.Assertions.assertThat(plain.toUriString()).isEqualTo("file:///data/ckpt");
    }
}
