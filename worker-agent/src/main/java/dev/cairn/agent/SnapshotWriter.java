package dev.cairn.agent;

import java.io.IOException;

/** Puts a trainer's state into a {@link Snapshot}. */
@FunctionalInterface
public interface SnapshotWriter {
    void write(Snapshot snapshot) throws IOException;
}
