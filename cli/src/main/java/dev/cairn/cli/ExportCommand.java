package dev.cairn.cli;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.export.CheckpointExport;
import dev.cairn.storage.export.ExportFormat;
import dev.cairn.storage.export.ExportResult;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "export", description = "Write one checkpoint, whatever world size saved it, as one file: every sharded tensor "
        + "reassembled whole, replicated entries once, per-worker entries as <name>@worker-<i> when several workers hold one, json "
        + "entries and metadata in the file's metadata (docs/resharding.md). Written to a hidden file beside FILE and renamed at the "
        + "end: a failed or interrupted export leaves nothing at FILE.")
final class ExportCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Option(names = "--to", required = true, paramLabel = "FILE", description = "The file to write; its directory must exist.")
    Path to;

    @Option(names = "--format", paramLabel = "F", defaultValue = "safetensors", description = "safetensors or npz (default ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--force", description = "Replace FILE if it exists.")
    boolean force;

    @Option(names = "--json", description = "Print one JSON object: {storage, step, saveId, file, format, tensors, bytes}.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.")
    boolean quiet;

    @Override
    public Integer call() throws Exception {
        ExportFormat exportFormat = ExportFormat.parse(format);
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            CheckpointExport export = CheckpointExport.plan(catalog, m);
            ExportResult r;
            try (Progress progress = Progress.start("export step " + m.step(), export.bytes(), quiet)) {
                r = export.writeTo(exportFormat, to, force, progress::add);
            }
            if (json) {
                JsonOutput.print(JsonOutput.object().put("storage", store.uri().toString()).put("step", m.step()).put("saveId", m.saveId())
                        .put("file", r.file().toString()).put("format", r.format().cliName()).put("tensors", r.tensors()).put("bytes", r.bytes()));
            } else {
                System.out.printf("exported step %d (save %s): %d tensors, %d bytes to %s (%s)%n", m.step(), m.saveId(), r.tensors(), r.bytes(),
                        r.file(), r.format().cliName());
            }
            return 0;
        }
    }
}
