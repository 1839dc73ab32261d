"""Restoring a checkpoint into a state in place: entries are checked against the state's leaves
(dtype, shape, shard layout), read through the shared file in batches, and copied into place."""

from __future__ import annotations

import random
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _codec as codec
from ._dtypes import numpy_name, torch_name
from ._framing import Connection
from ._shm import SharedFile
from ._tree import Leaf, flatten, join
from .errors import CorruptCheckpoint, RestoreError, UnsupportedLeaf

Consumer = Callable[[Dict[str, Any], int], None]


def _describe(dtype: Any, shape: Any) -> str:
    return f"{dtype}{list(shape)}"


def _target_type(value: Any) -> Optional[Tuple[str, Tuple[int, ...]]]:
    if codec.is_tensor(value):
        return torch_name(value.dtype) or str(value.dtype), tuple(value.shape)
    if codec.is_ndarray(value):
        return numpy_name(value.dtype) or str(value.dtype), tuple(value.shape)
    return None


def _check(name: str, meta: Dict[str, Any], value: Any, leaf: Optional[Leaf] = None) -> None:
    want = _target_type(value)
    if want is None:
        return
    have = (meta.get("dtype"), tuple(meta.get("shape") or ()))
    if have != want:
        raise RestoreError(f"entry '{name}': checkpoint has {_describe(*have)}, state has {_describe(*want)}")
    shard = leaf.shard if leaf is not None else None
    stored = (meta.get("global_shape"), meta.get("global_offsets"))
    if shard is not None and stored != (list(shard.global_shape), list(shard.offsets)):
        raise RestoreError(
            f"entry '{name}': checkpoint holds the piece at {stored[1]} of {stored[0]}, state asks for "
            f"{list(shard.offsets)} of {list(shard.global_shape)} (restoring onto another layout is not supported yet)")


def _copy_into(target: Any, view: Any, dtype: str) -> Any:
    """Copies ``view`` into ``target`` in place when it can; returns the value to put in the
    container instead (or None when copied in place)."""
    if codec.is_tensor(target):
        import torch

        src = torch.from_numpy(view)
        if dtype == "bfloat16":
            src = src.view(torch.bfloat16)
        with torch.no_grad():
            target.copy_(src)
        return None
    import numpy as np

    if isinstance(target, np.generic):
        return view.astype(target.dtype)[()]
    if target.flags.writeable:
        np.copyto(target, view, casting="equiv")
        return None
    return view.astype(target.dtype, copy=True)


def _decode_new(meta: Dict[str, Any], view: Any, as_tensor: bool) -> Any:
    """A fresh copy of an entry's elements, as a torch tensor or NumPy array."""
    if not as_tensor:
        return view.copy()
    import torch

    t = torch.from_numpy(view.copy())
    return t.view(torch.bfloat16) if meta["dtype"] == "bfloat16" else t


class _Restore:
    def __init__(self, conn: Connection, shm: SharedFile, step: int, entries: Dict[str, Dict[str, Any]],
                 partial: bool) -> None:
        self.conn, self.shm, self.step, self.entries, self.partial = conn, shm, step, entries, partial

    def need(self, name: str, wanted: Dict[str, Consumer], consume: Consumer) -> bool:
        if name not in self.entries:
            if self.partial:
                return False
            raise RestoreError(f"entry '{name}' is not in checkpoint step {self.step} (pass partial=True to skip it)")
        wanted[name] = consume
        return True

    def read(self, wanted: Dict[str, Consumer]) -> None:
        batch: List[str] = []
        size = 0
        for name in wanted:
            length = int(self.entries[name]["length"])
            if length > self.shm.size:
                raise RestoreError(f"entry '{name}' holds {length} bytes, more than the sidecar's shared memory "
                                   f"({self.shm.size} bytes); start the sidecar with a larger staging_mib")
            if batch and size + length > self.shm.size:
                self._read_batch(batch, wanted)
                batch, size = [], 0
            batch.append(name)
            size += length
        if batch:
            self._read_batch(batch, wanted)

    def _read_batch(self, names: List[str], wanted: Dict[str, Consumer]) -> None:
        response = self.conn.call("restore_read", step=self.step, names=names)
        placed = {e["name"]: e for e in response.get("entries", [])}
        for name in names:
            e = placed.get(name)
            meta = self.entries[name]
            if e is None or int(e["length"]) != int(meta["length"]):
                raise CorruptCheckpoint(f"entry '{name}': the sidecar returned {e!r} for an entry of {meta['length']} bytes")
            self.shm.check(int(e["offset"]), int(e["length"]), f"entry '{name}'")
            wanted[name](meta, int(e["offset"]))

    def view(self, meta: Dict[str, Any], offset: int) -> Any:
        return self.shm.array(offset, meta["dtype"], meta["shape"])

    def json(self, meta: Dict[str, Any], offset: int) -> Any:
        return codec.loads(self.shm.read(offset, int(meta["length"])))


def restore(conn: Connection, shm: SharedFile, state: Any, step: Optional[int], partial: bool) -> Optional[int]:
    """Fills ``state`` from checkpoint ``step`` (None: the latest); the step, or None when none."""
    leaves = flatten(state)
    opened = conn.call("restore_open", **({} if step is None else {"step": step}))
    if opened.get("step") is None:
        return None
    r = _Restore(conn, shm, int(opened["step"]), {e["name"]: e for e in opened.get("entries", [])}, partial)
    try:
        stateful: List[Tuple[Leaf, Dict[str, Any]]] = []
        wanted: Dict[str, Consumer] = {}
        for leaf in leaves:
            _plan_leaf(r, leaf, wanted, stateful)
        r.read(wanted)
        for leaf, holder in stateful:
            _restore_stateful(r, leaf, holder["structure"])
    finally:
        conn.call("restore_close", step=r.step)
    return r.step


def _plan_leaf(r: _Restore, leaf: Leaf, wanted: Dict[str, Consumer], stateful: List[Tuple[Leaf, Dict[str, Any]]]) -> None:
    v, name = leaf.value, leaf.name

    def replace(new: Any) -> None:
        leaf.replace(new)

    if codec.is_tensor(v) or codec.is_ndarray(v):
        if name in r.entries:
            _check(name, r.entries[name], v, leaf)

        def fill(meta: Dict[str, Any], off: int) -> None:
            new = _copy_into(v, r.view(meta, off), meta["dtype"])
            if new is not None:
                replace(new)

        r.need(name, wanted, fill)
    elif codec.is_torch_generator(v):
        r.need(name, wanted, lambda meta, off: v.set_state(_decode_new(meta, r.view(meta, off), True)))
    elif codec.is_numpy_generator(v):
        r.need(name, wanted, lambda meta, off: setattr(v.bit_generator, "state", r.json(meta, off)))
    elif isinstance(v, random.Random):
        r.need(name, wanted, lambda meta, off: v.setstate(codec.to_random_state(r.json(meta, off))))
    elif codec.is_stateful(v):
        holder: Dict[str, Any] = {}
        if r.need(join(name, codec.STATE_DICT), wanted, lambda meta, off: holder.__setitem__("structure", r.json(meta, off))):
            stateful.append((leaf, holder))
    elif isinstance(v, (bytes, bytearray)) or codec.is_scalar(v):
        def put(meta: Dict[str, Any], off: int) -> None:
            if meta["dtype"] == "bytes":
                replace(r.shm.read(off, int(meta["length"])))
            else:
                replace(r.json(meta, off))

        r.need(name, wanted, put)
    else:
        raise UnsupportedLeaf(f"entry '{name}': a {type(v).__name__} cannot be restored")


def _current_arrays(obj: Any, name: str) -> Dict[str, Any]:
    """The tensors/arrays the object holds now, by name relative to it (to check dtype and shape)."""
    out: Dict[str, Any] = {}

    def walk(node: Any, rel: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, join(rel, k))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, join(rel, i))
        elif codec.is_tensor(node) or codec.is_ndarray(node):
            out[rel] = node

    walk(obj.state_dict(), "")
    return out


def _restore_stateful(r: _Restore, leaf: Leaf, structure: Any) -> None:
    obj, name = leaf.value, leaf.name
    current = _current_arrays(obj, name)
    values: Dict[str, Any] = {}
    wanted: Dict[str, Consumer] = {}
    for rel, as_tensor in codec.referenced(structure):
        full = codec.under(name, rel)
        if full in r.entries and rel in current:
            _check(full, r.entries[full], current[rel])

        def take(meta: Dict[str, Any], off: int, rel: str = rel, as_tensor: bool = as_tensor) -> None:
            values[rel] = _decode_new(meta, r.view(meta, off), as_tensor)

        r.need(full, wanted, take)
    r.read(wanted)
    try:
        obj.load_state_dict(codec.rebuild(structure, values))
    except Exception as e:  # load_state_dict raises many types
        raise RestoreError(f"entry '{name}': load_state_dict failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e

