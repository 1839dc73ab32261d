package dev.cairn.storage.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cairn.storage.CheckpointCatalog;
import dev.cairn.storage.EntryNames;
import dev.cairn.storage.Manifest;
import dev.cairn.storage.ManifestCodec;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * Restores a checkpoint to a directory of plain files, one per entry: {@code worker-<i>/<name>}
 * for a worker's own entries, {@code replicated/<name>} for replicated ones, plus
 * {@code manifest.json} (the manifest) and {@code index.json} (every file written, with its entry's
 * name, dtype, shape and, for a piece or region of a larger tensor, the global shape and offsets).
 * Every byte read is checksum-checked. Files go to a hidden directory beside the target,
 * {@code .<name>.cairn-restore-<random>}, renamed onto the target at the end: an interrupted
 * restore leaves nothing at the target, and the next restore to it removes the leftover.
 */
public final class DirectoryRestore {
    /** Marks a restore's temporary directory: {@code .<target name>.cairn-restore-<random>} beside the target. */
    public static final String TEMP_MARK = ".cairn-restore-";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Manifest manifest;
    private final RestoreSelection selection;
    private final List<RestoreFile> files;

    private DirectoryRestore(Manifest manifest, RestoreSelection selection, List<RestoreFile> files) {
        this.manifest = manifest;
        this.selection = selection;
        this.files = files;
    }

    /**
     * What restoring {@code selection} of {@code manifest} writes.
     *
     * @throws IllegalArgumentException when the selection does not fit the checkpoint (a worker
     *     outside its world size)
     * @throws dev.cairn.storage.ManifestException when pieces of a sharded tensor disagree or overlap
     */
    public static DirectoryRestore plan(CheckpointCatalog catalog, Manifest manifest, RestoreSelection selection) throws IOException {
        return new DirectoryRestore(manifest, selection, selection.files(catalog, manifest));
    }

    /** How many files of entries this writes (manifest.json and index.json not counted). */
    public int entryFiles() {
        return files.size();
    }

    /** How many entry bytes this writes. */
    public long bytes() {
        return files.stream().mapToLong(f -> f.tensor().byteLength()).sum();
    }

    /**
     * Writes the files to {@code target} (which must be absent or an empty directory).
     *
     * @param progress told every time more entry bytes were written
     * @param onLeftoverRemoved told of each leftover of an interrupted restore to the same target
     *     before it is removed
     * @return the target directory, absolute
     * @throws IllegalArgumentException when the target is the root, exists and is not an empty
     *     directory, or an entry would be written outside it
     * @throws IOException when reading or writing fails (nothing is left at the target)
     */
    public Path writeTo(Path target, LongConsumer progress, Consumer<Path> onLeftoverRemoved) throws IOException {
        Path dir = target.toAbsolutePath().normalize();
        if (dir.getParent() == null) {
            throw new IllegalArgumentException("restore target must not be the root directory");
        }
        if (Files.exists(dir) && (!Files.isDirectory(dir) || !isEmpty(dir))) {
            throw new IllegalArgumentException("restore target " + dir + " exists and is not an empty directory");
        }
        Files.createDirectories(dir.getParent());
        TargetFile.removeLeftovers(dir, TEMP_MARK, onLeftoverRemoved);
        Path temp = Files.createDirectory(TargetFile.tempSibling(dir, TEMP_MARK));
        try {
            TensorPump pump = new TensorPump(files.stream().map(RestoreFile::tensor).toList(), progress);
            for (RestoreFile f : files) {
                Path file = temp.resolve(f.path()).normalize();
                if (!file.startsWith(temp)) {
                    throw new IllegalArgumentException("entry '" + f.name() + "' would be written outside " + dir);
                }
                Files.createDirectories(file.getParent());
                try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                    pump.copy(f.tensor(), bytes -> {
                        while (bytes.hasRemaining()) {
                            out.write(bytes);
                        }
                    });
                }
            }
            Files.write(temp.resolve("manifest.json"), ManifestCodec.encode(manifest), StandardOpenOption.CREATE_NEW);
            JSON.writeValue(temp.resolve("index.json").toFile(), index());
            // rename(2) replaces an empty directory and is atomic on one file system
            TargetFile.moveIntoPlace(temp, dir, false);
            return dir;
        } catch (IOException | RuntimeException e) {
            TargetFile.discard(temp, e);
            throw e;
        }
    }

    private ObjectNode index() {
        ObjectNode n = JSON.createObjectNode().put("step", manifest.step()).put("saveId", manifest.saveId())
                .put("savedWorldSize", manifest.worldSize());
        n.set("selection", selection.toJson(JSON));
        ArrayNode list = n.putArray("files");
        for (RestoreFile f : files) {
            ObjectNode o = list.addObject().put("path", f.path()).put("name", f.name()).put("kind", f.kind().json())
                    .put("dtype", f.tensor().dtype().numpyName());
            if (f.worker() != null) {
                o.put("worker", f.worker().intValue());
            }
            f.tensor().shape().forEach(o.putArray("shape")::add);
            if (f.globalShape() != null) {
                f.globalShape().forEach(o.putArray("globalShape")::add);
                f.globalOffsets().forEach(o.putArray("globalOffsets")::add);
            }
        }
        return n;
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (var entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    /** A whole entry as one file at {@code worker-<i>/<name>} or {@code replicated/<name>}. */
    static RestoreFile wholeEntry(CheckpointCatalog catalog, Manifest m, Manifest.EntryRef e) {
        Manifest.Tensor t = e.tensor();
        ExportTensor tensor = new ExportTensor(e.name(), t.dtype(), t.shape(), () -> new StreamChannel(catalog.openEntry(m, e)));
        return new RestoreFile(EntryNames.restorePath(e), e.name(),
                e.replicated() ? RestoreFile.Kind.REPLICATED : RestoreFile.Kind.OWN, e.replicated() ? null : e.worker(),
                tensor, t.globalShape(), t.globalOffsets());
    }

    static List<RestoreFile> wholeEntries(CheckpointCatalog catalog, Manifest m, List<Manifest.EntryRef> entries) {
        List<RestoreFile> out = new ArrayList<>();
        for (Manifest.EntryRef e : entries) {
            out.add(wholeEntry(catalog, m, e));
        }
        return out;
    }
}
