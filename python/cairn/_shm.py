"""The sidecar's shared staging file, mapped once into this process."""

from __future__ import annotations

import mmap
import os
from typing import Any, Sequence

from ._dtypes import itemsize, numpy_storage_dtype
from .errors import SidecarError

ALIGN = 64


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class SharedFile:
    """A read-write shared mapping of the staging file (MAP_POPULATE where available, so the
    first save does not stall on page faults)."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as e:
            raise SidecarError(f"cannot open the sidecar's shared memory {path}: {e.strerror or e}") from None
        try:
            actual = os.fstat(fd).st_size
            if actual < size:
                raise SidecarError(f"sidecar's shared memory {path} holds {actual} bytes, hello announced {size}")
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            self.mm = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._view = memoryview(self.mm)

    def check(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise SidecarError(f"{what}: region [{offset}, {offset + length}) lies outside the shared memory of {self.size} bytes")

    def array(self, offset: int, dtype: str, shape: Sequence[int]) -> Any:
        """A NumPy view of the elements of an entry at ``offset`` (no copy)."""
        import numpy as np

        count = 1
        for d in shape:
            count *= int(d)
        self.check(offset, count * itemsize(dtype), "entry")
        return np.frombuffer(self.mm, dtype=numpy_storage_dtype(dtype), count=count, offset=offset).reshape(tuple(shape))

    def write(self, offset: int, data: bytes) -> None:
        self.check(offset, len(data), "entry")
        self._view[offset:offset + len(data)] = data

    def read(self, offset: int, length: int) -> bytes:
        self.check(offset, length, "entry")
        return bytes(self._view[offset:offset + length])

    def close(self) -> None:
        self._view.release()
        try:
            self.mm.close()
        except BufferError:
            pass  # a caller still holds a NumPy view; the mapping goes with the last reference
