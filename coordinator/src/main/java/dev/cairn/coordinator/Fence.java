package dev.cairn.coordinator;

import java.io.IOException;

/**
 * Checked before every commit and every delete: throws when this coordinator may no longer act on
 * its storage root ({@link CoordinatorLease.DeposedException}).
 */
@FunctionalInterface
interface Fence {
    void check() throws IOException;
}
