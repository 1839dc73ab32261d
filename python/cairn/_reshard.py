"""Resharded restore: filling a leaf with a box of a global tensor (``restore_region``), whatever
pieces the checkpoint's workers saved. The box is asked for in parts that fit the shared file,
split along the outermost dimensions, and each part is copied straight from the shared file's
view into the matching slice of the target (any strides)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import _codec as codec
from ._dtypes import itemsize
from ._framing import Connection
from ._shm import SharedFile
from .errors import RestoreError, SidecarError

Box = Tuple[Tuple[int, ...], Tuple[int, ...]]  # (offsets relative to the region, shape)


@dataclass
class RestoreStats:
    """What one restore read (``CheckpointManager.last_restore_stats``): ``bytes_read`` is the
    sum over entries of the bytes the sidecar read from storage for them (``by_entry``, by entry
    name): a whole entry's length for one read through ``restore_read`` (``whole_entries`` of
    them), the sidecar's ``bytes_read`` for a box read through ``restore_region`` (``regions``
    requests)."""

    step: Optional[int] = None
    bytes_read: int = 0
    by_entry: Dict[str, int] = field(default_factory=dict)
    regions: int = 0
    whole_entries: int = 0

    def add(self, name: str, n: int) -> None:
        self.bytes_read += n
        self.by_entry[name] = self.by_entry.get(name, 0) + n


def _product(values: Sequence[int]) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


def split_region(shape: Sequence[int], item: int, cap: int) -> Iterator[Box]:
    """The boxes, in C order, that tile a region of ``shape`` with at most ``cap`` bytes each:
    whole rows of the outermost dimension while they fit, else one index of the outer dimensions
    at a time and a run of the first dimension whose inner block fits. Nothing for an empty
    region. ValueError when one element is larger than ``cap``."""
    shape = tuple(int(d) for d in shape)
    if _product(shape) == 0:
        return
    if item > cap:
        raise ValueError(f"an element of {item} bytes does not fit in {cap} bytes")
    if _product(shape) * item <= cap:
        yield (0,) * len(shape), shape
        return
    # the outermost dimension d whose inner block (one index of d) fits
    d = next(d for d in range(len(shape)) if _product(shape[d + 1:]) * item <= cap)
    run = max(1, cap // (_product(shape[d + 1:]) * item))
    for outer in itertools.product(*(range(n) for n in shape[:d])):
        for start in range(0, shape[d], run):
            size = min(run, shape[d] - start)
            yield outer + (start,) + (0,) * (len(shape) - d - 1), (1,) * d + (size,) + shape[d + 1:]


class Region:
    """One leaf filled from a box of a global tensor: ``offsets``/``shape`` in the global tensor
    of ``dtype``. ``dest`` is the tensor/array written to; ``done`` runs after the last part (to
    put a replacement for a read-only array in place)."""

    def __init__(self, name: str, dtype: str, offsets: Sequence[int], shape: Sequence[int], dest: Any,
                 done: Optional[Callable[[], None]] = None) -> None:
        self.name, self.dtype = name, dtype
        self.offsets = tuple(int(o) for o in offsets)
        self.shape = tuple(int(d) for d in shape)
        self.dest, self.done = dest, done

    @property
    def nbytes(self) -> int:
        return _product(self.shape) * itemsize(self.dtype)


def _copy_part(dest: Any, index: Tuple[slice, ...], view: Any, dtype: str) -> None:
    if codec.is_tensor(dest):
        import torch

        src = torch.from_numpy(view)
        if dtype == "bfloat16":
            src = src.view(torch.bfloat16)
        with torch.no_grad():
            dest[index].copy_(src)
    else:
        import numpy as np

        np.copyto(dest[index + (Ellipsis,)], view, casting="equiv")  # a view even for a 0-d array


def _sidecar_failure(name: str, error: SidecarError) -> RestoreError:
    """The sidecar's one-line BadRequest (region outside, dtype, not covered) as a RestoreError
    naming the entry."""
    text = str(error)
    prefix = "cairn sidecar restore_region: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return RestoreError(text if f"'{name}'" in text else f"entry '{name}': {text}")


def fill(conn: Connection, shm: SharedFile, step: int, region: Region, stats: RestoreStats) -> None:
    """Reads ``region`` part by part through ``restore_region`` and copies each part into place;
    adds the sidecar's ``bytes_read`` to ``stats``."""
    item = itemsize(region.dtype)
    for rel, shape in split_region(region.shape, item, shm.size):
        offsets = [o + r for o, r in zip(region.offsets, rel)]
        try:
            placed = conn.call("restore_region", step=step, name=region.name, offsets=offsets, shape=list(shape),
                               dtype=region.dtype)
        except SidecarError as e:
            if e.type == "BadRequest":
                raise _sidecar_failure(region.name, e) from None
            raise
        length = _product(shape) * item
        if int(placed.get("length", -1)) != length:
            raise RestoreError(f"entry '{region.name}': the sidecar returned {placed.get('length')} bytes for a region "
                               f"of {length} bytes")
        offset = int(placed["offset"])
        shm.check(offset, length, f"entry '{region.name}'")
        stats.regions += 1
        stats.add(region.name, int(placed.get("bytes_read", 0)))
        index = tuple(slice(r, r + n) for r, n in zip(rel, shape))
        _copy_part(region.dest, index, shm.array(offset, region.dtype, shape), region.dtype)
    if region.done is not None:
        region.done()


def fill_all(conn: Connection, shm: SharedFile, step: int, regions: List[Region], stats: RestoreStats) -> None:
    for region in regions:
        fill(conn, shm, step, region, stats)
