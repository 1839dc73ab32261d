package dev.cairn.storage.export;

import java.nio.file.Path;

/**
 * What an export wrote.
 *
 * @param file the file, now in place
 * @param format its format
 * @param tensors how many tensors it holds
 * @param bytes its length in bytes
 */
public record ExportResult(Path file, ExportFormat format, int tensors, long bytes) {}
