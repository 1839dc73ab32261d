package dev.cairn.agent.sidecar;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shared staging file's lifetime: locked while its sidecar runs, swept once it is gone. */
class SharedStagingTest {
    @TempDir
    Path dir;

    @Test
    void aFileNoSidecarHoldsIsSweptAndALiveOneIsKept() throws Exception {
        Path stale = Files.write(dir.resolve("cairn-run-7-0-4242"), new byte[4096]); // a SIGKILLed sidecar's
        Path other = Files.write(dir.resolve("cairn-notes.txt"), new byte[10]);       // not a name a sidecar gives
        Path link = Files.createSymbolicLink(dir.resolve("cairn-run-7-1-4243"), stale);
        try (SharedStaging live = SharedStaging.create(dir.resolve("cairn-run-7-2-" + ProcessHandle.current().pid()), 1 << 16)) {
            assertThat(SharedStaging.sweepStale(dir)).isEqualTo(4096);
            assertThat(stale).doesNotExist();
            assertThat(live.path()).exists();
            assertThat(other).exists();
            assertThat(Files.isSymbolicLink(link)).isTrue();
            try (Stream<Path> files = Files.list(dir)) {
                assertThat(files.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".new"));
            }
        }
        assertThat(SharedStaging.sweepStale(dir)).isZero(); // close deleted its own file
        assertThat(Files.list(dir).map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("cairn-notes.txt", "cairn-run-7-1-4243");
    }

    @Test
    void createRefusesAnExistingName() throws Exception {
        Path taken = Files.write(dir.resolve("cairn-run-1-0-1"), new byte[1]);
        assertThatThrownBy(() -> SharedStaging.create(taken, 1 << 16)).isInstanceOf(FileAlreadyExistsException.class);
        assertThat(Files.size(taken)).isEqualTo(1);
        assertThat(Files.list(dir).count()).isEqualTo(1);
    }

    @Test
    void aMissingDirectoryIsNotAnError() {
        assertThat(SharedStaging.sweepStale(dir.resolve("absent"))).isZero();
    }
}
