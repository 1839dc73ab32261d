"""DTensor leaves (torch >= 2.4, ``torch.distributed.tensor``): where this rank's local piece lies
in the global tensor, from the DTensor's mesh coordinate and placements.

Only imported by the core once ``torch.distributed.tensor`` is in ``sys.modules`` (so a DTensor can
exist); never on torch 1.13 or without torch.

The naming convention (shared with ``cairn.torch.dcp``): a DTensor at entry name P is ONE entry P
per rank holding its local piece, with ``global_shape``/``global_offsets`` like a ``cairn.Shard``;
a DTensor whose placements are all ``Replicate()`` is a replicated (mirrored) entry P of its full
shape. Ranks holding duplicate copies of a piece (a ``Replicate()`` mesh dimension next to a
``Shard``, as HSDP has) do not store it twice: only the rank at coordinate 0 of every replicate
mesh dimension writes it; the others read it back like any other box on restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from torch.distributed.tensor import DTensor, Replicate, Shard as TorchShard

from .._tree import Shard
from ..errors import CairnError

try:  # private, present in the torch 2.x releases that have DTensor
    from torch.distributed.tensor.placement_types import _StridedShard, _StridedShardOffsetMode
    _ALL_OFFSETS: Any = _StridedShardOffsetMode.ALL
except ImportError:  # pragma: no cover - older layouts
    _StridedShard, _ALL_OFFSETS = (), None  # type: ignore[assignment,misc]


@dataclass
class Piece:
    """This rank's part of a DTensor: ``local`` (the local tensor, filled in place on restore),
    ``shard`` (its box; ``None`` for an all-``Replicate()`` DTensor), and whether this rank
    ``writes`` it on save (False for a duplicate copy along a replicate mesh dimension)."""

    local: Any
    shard: Optional[Shard]
    writes: bool


def _runs(indices: Sequence[int]) -> List[Tuple[int, int]]:
    """(start, length) of the runs of consecutive integers in ``indices``."""
    runs: List[Tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def _dim_indices(global_shape: Sequence[int], mesh_shape: Sequence[int], coordinate: Sequence[int],
                 placements: Sequence[Any]) -> List[List[int]]:
    """The global indices, per tensor dimension, this coordinate's local piece holds (placements
    applied left to right, as ``compute_local_shape_and_global_offset`` does)."""
    indices = [list(range(int(n))) for n in global_shape]
    for mesh_dim, p in enumerate(placements):
        if isinstance(p, _StridedShard):
            _, chosen = p._local_shard_size_and_offset(len(indices[p.dim]), int(mesh_shape[mesh_dim]),
                                                       int(coordinate[mesh_dim]), offset_mode=_ALL_OFFSETS)
            picked = [int(c) for c in ([chosen] if isinstance(chosen, int) else (chosen or []))]
        elif isinstance(p, TorchShard):
            size, start = TorchShard.local_shard_size_and_offset(len(indices[p.dim]), int(mesh_shape[mesh_dim]),
                                                                 int(coordinate[mesh_dim]))
            picked = list(range(int(start), int(start) + int(size)))
        else:
            continue
        indices[p.dim] = [indices[p.dim][i] for i in picked]
    return indices


def layout(name: str, t: Any) -> Tuple[Tuple[int, ...], Optional[Tuple[int, ...]], bool]:
    """(global shape, offsets of the local piece or None when every placement is Replicate(),
    whether this rank is at coordinate 0 of every replicate mesh dimension). CairnError naming the
    entry for a Partial() placement, a rank outside the mesh, a piece that is not one box, or a
    local tensor whose shape disagrees with the placements."""
    mesh, placements = t.device_mesh, tuple(t.placements)
    global_shape = tuple(int(d) for d in t.shape)
    local_shape = tuple(int(d) for d in t._local_tensor.shape)
    coordinate = mesh.get_coordinate()
    if coordinate is None:
        raise CairnError(f"entry '{name}': this rank is not part of the DTensor's device mesh")
    first = all(int(c) == 0 for c, p in zip(coordinate, placements) if isinstance(p, Replicate))
    for p in placements:
        if not isinstance(p, (Replicate, TorchShard)) and not (_StridedShard and isinstance(p, _StridedShard)):
            raise CairnError(f"entry '{name}': a DTensor with placement {p} cannot be stored "
                             "(redistribute it to Shard/Replicate first, e.g. a pending Partial() reduction)")
    if all(isinstance(p, Replicate) for p in placements):
        if local_shape != global_shape:
            raise CairnError(f"entry '{name}': the DTensor's local shape {list(local_shape)} disagrees with its "
                             f"placements {list(placements)} (global shape {list(global_shape)})")
        return global_shape, None, first
    indices = _dim_indices(global_shape, tuple(mesh.shape), tuple(coordinate), placements)
    expected = tuple(len(ix) for ix in indices)
    if expected != local_shape:
        raise CairnError(f"entry '{name}': the DTensor's local shape {list(local_shape)} disagrees with its "
                         f"placements {list(placements)} on mesh {list(mesh.shape)} at {list(coordinate)} "
                         f"(expected {list(expected)} of global shape {list(global_shape)})")
    offsets = []
    for dim, ix in enumerate(indices):
        runs = _runs(ix)
        if len(runs) > 1:
            raise CairnError(f"entry '{name}': the local piece of this strided DTensor layout {list(placements)} is "
                             f"not one box (dimension {dim} holds {len(runs)} separate runs); redistribute it first")
        offsets.append(runs[0][0] if runs else global_shape[dim])
    return global_shape, tuple(offsets), first


def piece(name: str, t: Any) -> Piece:
    """This rank's piece of DTensor ``t`` at entry ``name`` (see :func:`layout`)."""
    global_shape, offsets, first = layout(name, t)
    local = t._local_tensor
    if offsets is None:  # a replicated entry: every rank describes it, the sidecars split the writing
        return Piece(local, None, True)
    return Piece(local, Shard(local, global_shape, offsets), first)


def is_dtensor(x: Any) -> bool:
    return isinstance(x, DTensor)


__all__ = ["Piece", "piece", "layout", "is_dtensor"]
