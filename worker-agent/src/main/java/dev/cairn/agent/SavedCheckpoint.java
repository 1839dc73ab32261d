package dev.cairn.agent;

/** A committed checkpoint, as a save handle completes with it. */
public record SavedCheckpoint(long step, String saveId, String manifestKey) {}
