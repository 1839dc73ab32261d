package dev.cairn.storage.export;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.DType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Checks an export file with an independent reader: {@code check_export.py} run by Debian's
 * {@code /usr/bin/python3} with NumPy, which parses the safetensors header itself and reads npz
 * members with {@code numpy.load}, comparing every element with bytes the test wrote from the
 * original arrays. Skipped (visibly, as a failed assumption) where that Python or NumPy is missing.
 * Used by the integration tests too (storage-api's test jar).
 */
public final class ExportCheck {
    public static final String PYTHON = "/usr/bin/python3";

    /** One tensor as the trainers held it: real dtype, shape, little-endian C-order bytes. */
    public record Expected(String name, DType dtype, long[] shape, byte[] bytes) {}

    private ExportCheck() {}

    public static boolean pythonWithNumpy() {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Runs the reader on {@code file}; fails the test naming the first difference. */
    public static void verify(Path file, ExportFormat format, List<Expected> tensors, Map<String, String> metadata, Path workDir)
            throws IOException, InterruptedException {
        Assumptions.assumeTrue(pythonWithNumpy(), PYTHON + " with NumPy is not installed: the independent reader is skipped");
        Path dir = Files.createDirectories(workDir.resolve("expected-" + System.nanoTime()));
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        ArrayNode list = root.putArray("tensors");
        int i = 0;
        for (Expected t : tensors) {
            String name = "t" + i++ + ".bin";
            Files.write(dir.resolve(name), t.bytes());
            ObjectNode n = list.addObject().put("name", t.name()).put("dtype", t.dtype().numpyName()).put("file", name);
            ArrayNode shape = n.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
        }
        root.set("metadata", json.valueToTree(metadata));
        json.writeValue(dir.resolve("expected.json").toFile(), root);
        Path script = dir.resolve("check_export.py");
        try (InputStream in = ExportCheck.class.getResourceAsStream("/export/check_export.py")) {
            Files.copy(in, script);
        }
        Process p = new ProcessBuilder(PYTHON, script.toString(), file.toString(), format.cliName(), dir.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("independent reader of %s said: %s", file, out).isZero();
        assertThat(out).startsWith("ok: " + tensors.size() + " tensors");
    }
}
