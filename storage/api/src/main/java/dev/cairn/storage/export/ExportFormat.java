package dev.cairn.storage.export;

import java.util.Arrays;
import java.util.Locale;

/** The file formats a checkpoint can be exported to. See docs/resharding.md, "Export". */
public enum ExportFormat {
    /**
     * <a href="https://github.com/huggingface/safetensors">safetensors</a>: an 8-byte little-endian
     * header length, a JSON header padded with spaces to 8 bytes, then every tensor's raw bytes.
     */
    SAFETENSORS,
    /** NumPy's {@code .npz}: a zip of one {@code <name>.npy} per tensor plus {@code __metadata__.json}. */
    NPZ;

    /** The name used on command lines ({@code safetensors}, {@code npz}). */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The format named {@code name} (case-insensitive).
     *
     * @throws IllegalArgumentException naming the formats there are
     */
    public static ExportFormat parse(String name) {
        for (ExportFormat f : values()) {
            if (f.cliName().equalsIgnoreCase(name)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unknown export format '" + name + "'; formats are "
                + String.join(", ", Arrays.stream(values()).map(ExportFormat::cliName).toList()));
    }
}
