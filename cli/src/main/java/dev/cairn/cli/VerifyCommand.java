package dev.cairn.cli;

import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.CheckpointStore;
import dev.cairn.storage.Manifest;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify", description = "Read every object of a checkpoint and check every checksum. "
        + "Exit 0 when all match, 1 naming each bad or missing object, 2 for bad usage or input (also a corrupt manifest).")
final class VerifyCommand implements Callable<Integer> {
    @Mixin
    StorageOption storage;

    @Option(names = "--step", paramLabel = "N", description = "The checkpoint's step (default: the newest).")
    Long step;

    @Override
    public Integer call() throws Exception {
        try (CheckpointStore store = storage.open()) {
            CheckpointCatalog catalog = new CheckpointCatalog(store);
            Manifest m = StorageOption.select(catalog, step);
            List<String> problems = catalog.verify(m);
            if (problems.isEmpty()) {
                System.out.printf("ok: step %d (save %s): %d objects, %d entries, %d bytes verified in %s%n", m.step(), m.saveId(),
                        m.shards().stream().filter(s -> s.objectKey() != null).count(), m.entries().size(), m.totalBytes(), store.uri());
                return 0;
            }
            for (String p : problems) {
                System.out.println("bad: " + p);
            }
            System.out.printf("step %d (save %s) in %s: %d problem(s)%n", m.step(), m.saveId(), store.uri(), problems.size());
            return Main.EXIT_CHECK_FAILED;
        }
    }
}
