"""The resharding scenario of test_reshard_real.py, shared by the test and its trainer processes.

Every global tensor is a deterministic function of its name (seeded). A world size has a layout:
for each tensor, the box each rank holds (row blocks, column blocks, 2-D blocks, uneven splits,
empty pieces), or ``replicated`` (a mirrored leaf). A trainer process (``python3 reshard_case.py
'<json>'``) runs a list of actions — restore a step into its layout and compare every element,
or save its layout — and prints one JSON line with what it read."""

from __future__ import annotations

import json
import os
import sys
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

# name -> (dtype, global shape)
TENSORS: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    "model/emb": ("float32", (37, 24)),
    "model/proj": ("float64", (12, 30)),
    "model/bias": ("float32", (101,)),
    "model/tiny": ("int64", (3, 5)),        # smaller than the world: some ranks hold an empty piece
    "model/half": ("bfloat16", (16, 10)),
    "model/big": ("float32", (640, 1000)),  # 2.4 MiB: a whole restore goes through 1 MiB of shared memory in parts
    "opt/shared": ("float32", (50, 4)),     # a mirrored leaf when saved
}
STAGING_MIB = 1
ALIGN = 64


SMALL = [n for n in TENSORS if n not in ("model/half", "model/big")]  # NumPy only (no torch import), KiBs


def even(n: int, parts: int) -> List[int]:
    """Boundaries of NumPy's array_split rule: the first n % parts parts get one more."""
    sizes = [len(a) for a in np.array_split(np.arange(n), parts)]
    return [0] + list(np.cumsum(sizes).tolist())


def along(shape: Sequence[int], dim: int, bounds: Sequence[int], i: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    offsets, size = [0] * len(shape), list(shape)
    offsets[dim], size[dim] = bounds[i], bounds[i + 1] - bounds[i]
    return tuple(offsets), tuple(size)


def grid(shape: Sequence[int], rows: Sequence[int], cols: Sequence[int], i: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    r, c = divmod(i, len(cols) - 1)
    return (rows[r], cols[c]), (rows[r + 1] - rows[r], cols[c + 1] - cols[c])


def _rows(n):
    return lambda shape, i: along(shape, 0, even(shape[0], n), i)


def _cols(n):
    return lambda shape, i: along(shape, 1, even(shape[1], n), i)


def _cut(dim, bounds):
    return lambda shape, i: along(shape, dim, bounds, i)


REPLICATED = "replicated"

# world -> tensor -> box of rank i (or REPLICATED)
LAYOUTS: Dict[int, Dict[str, Any]] = {
    4: {"model/emb": _rows(4), "model/proj": _cut(1, [0, 3, 11, 12, 30]), "model/bias": _cut(0, [0, 50, 51, 90, 101]),
        "model/tiny": _rows(4), "model/half": _cols(4), "model/big": _rows(4), "opt/shared": REPLICATED},
    3: {"model/emb": _cols(3), "model/proj": _cut(0, [0, 5, 6, 12]), "model/bias": _rows(3),
        "model/tiny": _cut(0, [0, 2, 3, 3]), "model/half": _cut(1, [0, 3, 6, 10]), "model/big": _cols(3),
        "opt/shared": REPLICATED},
    6: {"model/emb": lambda shape, i: grid(shape, even(37, 3), even(24, 2), i), "model/proj": _cols(6),
        "model/bias": _rows(6), "model/tiny": _cols(6), "model/half": _rows(6), "model/big": _rows(6),
        "opt/shared": _rows(6)},
}
# (world, rank, tensor) restored as one plain leaf holding the whole tensor
WHOLE = {(3, 0, "model/bias"), (6, 5, "model/proj"), (6, 0, "model/big")}


def full(name: str) -> np.ndarray:
    """The global tensor ``name`` (bfloat16 as its int16 bit patterns)."""
    dtype, shape = TENSORS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if dtype == "int64":
        return rng.integers(-10 ** 12, 10 ** 12, size=shape, dtype=np.int64)
    values = rng.standard_normal(shape).astype(np.float32 if dtype == "bfloat16" else dtype)
    if dtype == "bfloat16":
        return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.int16)  # truncated to bfloat16 bits
    return values


def box(world: int, rank: int, name: str) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """The box rank ``rank`` of ``world`` holds of ``name``; None for a replicated leaf."""
    spec = LAYOUTS[world][name]
    return None if spec == REPLICATED else spec(TENSORS[name][1], rank)


def overlapping_pieces(saved_world: int, name: str, offsets: Sequence[int], shape: Sequence[int]) -> int:
    """How many pieces saved by ``saved_world`` overlap the box (the saved world count for a
    replicated entry, stored as byte ranges across its workers)."""
    if LAYOUTS[saved_world][name] == REPLICATED:
        return saved_world
    count = 0
    for r in range(saved_world):
        o, s = box(saved_world, r, name)
        if all(max(a, b) < min(a + n, b + m) for a, n, b, m in zip(offsets, shape, o, s)):
            count += 1
    return count


def _wrap(dtype: str, array: np.ndarray):
    if dtype != "bfloat16":
        return array
    import torch

    return torch.from_numpy(array).view(torch.bfloat16)


def _leaf(world: int, rank: int, name: str, value_of):
    """The state leaf of ``name`` for this rank, holding ``value_of(offsets, shape)``."""
    import cairn

    dtype, shape = TENSORS[name]

    def wrap(array):
        return _wrap(dtype, array)

    if (world, rank, name) in WHOLE:
        return wrap(value_of((0,) * len(shape), shape))
    b = box(world, rank, name)
    if b is None:
        return cairn.replicated(wrap(value_of((0,) * len(shape), shape)))
    return cairn.Shard(wrap(value_of(*b)), shape, b[0])


def _original(offsets, shape, name):
    if offsets is None:
        return 7  # the mirrored epoch
    region = full(name)[tuple(slice(o, o + n) for o, n in zip(offsets, shape))]
    return np.ascontiguousarray(region)


def _zeros(offsets, shape, name):
    if offsets is None:
        return 0
    return np.zeros(shape, dtype=np.int16 if TENSORS[name][0] == "bfloat16" else TENSORS[name][0])


def _bits(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    import torch

    value = value.view(torch.int16) if value.dtype == torch.bfloat16 else value
    return value.numpy()


def check_restored(world: int, rank: int, state: Dict[str, Any], saved_world: int, stats, shm_bytes: int,
                   names: Sequence[str]) -> Dict[str, Any]:
    """Compares every element of every restored leaf with the original; checks the bytes read per
    entry against what the leaf needs (+ one alignment unit per overlapping piece per part). The
    figures, for the report."""
    import cairn
    from cairn._reshard import split_region

    assert state["meta"].value["epoch"] == 7, state["meta"].value
    figures = {}
    for name in names:
        dtype, shape = TENSORS[name]
        group, key = name.split("/")
        leaf = state[group][key]
        value = leaf.tensor if isinstance(leaf, cairn.Shard) else leaf.value if isinstance(leaf, cairn.Replicated) else leaf
        b = box(world, rank, name) if (world, rank, name) not in WHOLE else None
        offsets, size = b if b is not None else ((0,) * len(shape), shape)
        got, want = _bits(value), _original(offsets, size, name)
        assert got.shape == want.shape and np.array_equal(got, want), \
            f"rank {rank} of {world}: {name} differs from the original at {np.argwhere(got != want)[:3].tolist()}"
        item = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        needed = int(np.prod(size)) * item
        allowance = 0
        for rel, part in split_region(size, item, shm_bytes):
            allowance += ALIGN * overlapping_pieces(saved_world, name, [o + r for o, r in zip(offsets, rel)], part)
        read = stats.by_entry.get(name, 0)
        assert read <= 1.05 * needed + allowance, \
            f"rank {rank} of {world}: {name} read {read} bytes for {needed} needed (allowance {allowance})"
        assert needed == 0 or read >= needed, f"rank {rank} of {world}: {name} read {read} < {needed} bytes"
        figures[name] = [read, needed]
    return figures


def check_errors(mgr) -> List[str]:
    """The one-line errors of a resharded restore, from the client and from the real sidecar; the
    messages, for the report."""
    import cairn
    from cairn._reshard import Region, RestoreStats, fill

    def failure(state=None, region=None) -> str:
        try:
            if region is None:
                mgr.restore_latest(state)
            else:  # what the package never asks (a Shard cannot be built outside its global shape)
                conn, shm = mgr._conn, mgr._shm
                step = conn.call("restore_open")["step"]
                try:
                    fill(conn, shm, step, region, RestoreStats())
                finally:
                    conn.call("restore_close", step=step)
        except cairn.RestoreError as e:
            assert "\n" not in str(e), str(e)
            return str(e)
        raise AssertionError(f"no RestoreError for {state or region.name}")

    messages = [
        failure({"model": {"emb": cairn.Shard(np.zeros((2, 24), np.float32), (38, 24), (0, 0))}}),
        failure({"model": {"emb": cairn.Shard(np.zeros((2, 24), np.float64), (37, 24), (0, 0))}}),
        failure({"model": {"emb": np.zeros((10, 24), np.float32)}}),
        failure({"model": {"nope": cairn.Shard(np.zeros(2), (4,), (0,))}}),
        failure(region=Region("model/emb", "float32", (36, 0), (2, 24), np.zeros((2, 24), np.float32))),
        failure(region=Region("model/emb", "int64", (0, 0), (2, 24), np.zeros((2, 24), np.int64))),
    ]
    expected = ["global shape [38, 24]", "state has float64[2, 24] at [0, 0] of [37, 24]", "saved in pieces",
                "is not in checkpoint", "outside", "int64"]
    for message, part in zip(messages, expected):
        assert message.startswith("entry 'model/") and part in message, (message, part)
    return messages


def run(spec: Dict[str, Any]) -> Dict[str, Any]:
    import cairn

    world, rank = spec["world"], spec["rank"]
    names = spec["names"]
    out: Dict[str, Any] = {"rank": rank, "restores": [], "saved": None}
    with cairn.CheckpointManager(spec["address"], run_id=spec["run_id"], rank=rank, world_size=world,
                                 staging_mib=STAGING_MIB, handle_sigterm=False) as mgr:
        shm_bytes = STAGING_MIB << 20
        for action in spec["actions"]:
            if action["op"] == "restore":
                state = _build(world, rank, _zeros, names)
                step = mgr.restore_latest(state) if action.get("step") is None else mgr.restore(action["step"], state)
                assert step == action["expect"], f"rank {rank}: restored step {step}, expected {action['expect']}"
                stats = mgr.last_restore_stats
                figures = check_restored(world, rank, state, action["saved_world"], stats, shm_bytes, names)
                out["restores"].append({"step": step, "bytes_read": stats.bytes_read, "regions": stats.regions,
                                        "whole_entries": stats.whole_entries, "by_entry": figures})
            elif action["op"] == "errors":
                out["errors"] = check_errors(mgr)
            else:
                state = _build(world, rank, _original, names, whole=False)
                out["saved"] = mgr.save(action["step"], state).result(120)
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_s"] = [round(me.ru_utime + me.ru_stime, 2), round(children.ru_utime + children.ru_stime, 2)]
    return out


def _build(world: int, rank: int, make, names: Sequence[str], whole: bool = True) -> Dict[str, Any]:
    """This rank's state: every tensor as its leaf holding ``make(offsets, shape, name)``, plus a
    mirrored scalar. ``whole=False`` (a save) holds the rank's box where a restore takes the whole
    tensor."""
    import cairn

    state: Dict[str, Any] = {"model": {}, "opt": {}, "meta": cairn.replicated({"epoch": make(None, None, None)})}
    for name in names:
        group, key = name.split("/")
        state[group][key] = _leaf(world, rank, name, lambda o, s, name=name: make(o, s, name))
        if not whole and (world, rank, name) in WHOLE:
            b = box(world, rank, name)
            state[group][key] = _leaf_box(name, b, make(*b, name))
    return state


def _leaf_box(name: str, b, array):
    import cairn

    dtype, shape = TENSORS[name]
    return cairn.Shard(_wrap(dtype, array), shape, b[0])


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))), flush=True)
