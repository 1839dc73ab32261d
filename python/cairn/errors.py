"""Exceptions raised by the cairn package. Every one subclasses :class:`CairnError`."""

from __future__ import annotations

from typing import Optional


class CairnError(Exception):
    """Base class of every error the cairn package raises."""


class SidecarError(CairnError):
    """The sidecar (``cairn agent``) could not be started, reached, or answered with an error.

    ``type`` is the sidecar's error type (``BadRequest``, ``Internal``, ...) when it answered one,
    else ``None`` (it died, the socket closed, the start timed out).
    """

    def __init__(self, message: str, type: Optional[str] = None) -> None:  # noqa: A002
        super().__init__(message)
        self.type = type

    def __reduce__(self) -> tuple:  # keeps the type when pickled
        return type(self), (str(self), self.type)


class SaveAborted(CairnError):
    """A save did not commit. ``reason`` is the coordinator's abort reason (``WORKER_LOST``,
    ``BARRIER_TIMEOUT``, ``UPLOAD_FAILED``, ``COORDINATOR_LOST``, ...) or ``LOCAL`` when this
    trainer failed the save itself."""

    def __init__(self, message: str, reason: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple:  # keeps the reason when pickled (DCP gathers ranks' errors so)
        return type(self), (str(self), self.reason)


class StagingBusy(CairnError):
    """The sidecar's shared staging memory stayed full (earlier saves still uploading) too long."""


class RestoreError(CairnError):
    """A checkpoint could not be restored into the given state: an entry is missing, or its dtype
    or shape differs from the state's leaf. The message names the entry."""


class CorruptCheckpoint(RestoreError):
    """A checkpoint object failed its checksum or its manifest did not validate."""


class UnsupportedLeaf(CairnError, TypeError):
    """A leaf of the state cannot be stored (an object array, a set, an arbitrary object, ...).
    The message names the leaf's key path."""


def from_response(error: dict, what: str) -> CairnError:
    """The exception for a sidecar error object ``{"type", "message", "reason"?}``."""
    kind = str(error.get("type", "Internal"))
    message = f"{what}: {error.get('message', 'no message')}"
    if kind == "SaveAborted":
        return SaveAborted(message, str(error.get("reason") or "UNKNOWN"))
    if kind == "Busy":
        return StagingBusy(message)
    if kind == "Corrupt":
        return CorruptCheckpoint(message)
    if kind == "NotFound":
        return RestoreError(message)
    return SidecarError(message, kind)
