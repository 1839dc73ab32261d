"""Restoring a checkpoint into a state in place: entries are checked against the state's leaves
(dtype, shape, shard layout), read through the shared file in batches, and copied into place. A
leaf whose piece of a global tensor the checkpoint does not hold as one entry of this rank is
filled from a box of the global tensor instead (``_reshard``)."""

from __future__ import annotations

import random
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _codec as codec
from . import _frameworks
from ._dtypes import numpy_name, torch_name
from ._framing import Connection
from ._reshard import Region, RestoreStats, fill_all
from ._shm import SharedFile
from ._tree import Leaf, Shard, flatten, join
from .errors import CairnError, CorruptCheckpoint, RestoreError, UnsupportedLeaf

Consumer = Callable[[Dict[str, Any], int], None]


def _describe(dtype: Any, shape: Any) -> str:
    return f"{dtype}{list(shape)}"


def _target_type(value: Any) -> Optional[Tuple[str, Tuple[int, ...]]]:
    if codec.is_tensor(value):
        return torch_name(value.dtype) or str(value.dtype), tuple(value.shape)
    if codec.is_ndarray(value):
        return numpy_name(value.dtype) or str(value.dtype), tuple(value.shape)
    return None


def _check(name: str, meta: Dict[str, Any], value: Any) -> None:
    want = _target_type(value)
    if want is None:
        return
    have = (meta.get("dtype"), tuple(meta.get("shape") or ()))
    if have != want:
        raise RestoreError(f"entry '{name}': checkpoint has {_describe(*have)}, state has {_describe(*want)}")


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
                 tensors: Optional[Dict[str, Dict[str, Any]]], partial: bool, stats: RestoreStats) -> None:
        self.conn, self.shm, self.step, self.entries, self.partial = conn, shm, step, entries, partial
        self.tensors = tensors  # None: a sidecar without restore_region
        self.stats = stats
        self.regions: List[Region] = []

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
            self.stats.whole_entries += 1
            self.stats.add(name, int(e["length"]))
            wanted[name](meta, int(e["offset"]))

    def view(self, meta: Dict[str, Any], offset: int) -> Any:
        return self.shm.array(offset, meta["dtype"], meta["shape"])

    def json(self, meta: Dict[str, Any], offset: int) -> Any:
        return codec.loads(self.shm.read(offset, int(meta["length"])))


def restore(conn: Connection, shm: SharedFile, state: Any, step: Optional[int], partial: bool,
            stats: Optional[RestoreStats] = None) -> Optional[int]:
    """Fills ``state`` from checkpoint ``step`` (None: the latest); the step, or None when none.
    What was read is added to ``stats``."""
    stats = RestoreStats() if stats is None else stats
    leaves = flatten(state)
    opened = conn.call("restore_open", **({} if step is None else {"step": step}))
    if opened.get("step") is None:
        return None
    tensors = opened.get("tensors")
    r = _Restore(conn, shm, int(opened["step"]), {e["name"]: e for e in opened.get("entries", [])},
                 None if tensors is None else {t["name"]: t for t in tensors}, partial, stats)
    stats.step = r.step
    try:
        stateful: List[Tuple[Leaf, Dict[str, Any]]] = []
        wanted: Dict[str, Consumer] = {}
        for leaf in leaves:
            _plan_leaf(r, leaf, wanted, stateful)
        r.read(wanted)
        fill_all(conn, shm, r.step, r.regions, stats)
        for leaf, holder in stateful:
            _restore_stateful(r, leaf, holder["structure"])
    finally:
        conn.call("restore_close", step=r.step)
    return r.step


def _put(leaf: Leaf, new: Any) -> None:
    """Puts a new value where ``leaf`` sits (a Shard keeps its place and takes the new tensor)."""
    if leaf.shard is not None:
        leaf.shard.tensor = new
    else:
        leaf.replace(new)


def _stored_box(meta: Dict[str, Any]) -> Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]:
    """(offsets, shape, global shape) of the box of its global tensor an entry holds; an entry
    that is not a piece holds all of itself."""
    shape = tuple(int(d) for d in meta.get("shape") or ())
    if meta.get("global_shape") is None:
        return (0,) * len(shape), shape, shape
    return (tuple(int(o) for o in meta["global_offsets"]), shape, tuple(int(d) for d in meta["global_shape"]))


def _plan_array(r: _Restore, leaf: Leaf, wanted: Dict[str, Consumer]) -> None:
    """A tensor/array leaf: one entry of this rank read whole when it holds exactly the leaf's box
    (or no other layout is known), else a box of the global tensor."""
    v, name, shard = leaf.value, leaf.name, leaf.shard
    dtype, shape = _target_type(v)  # type: ignore[misc]
    wanted_box = (shard.offsets, shape, shard.global_shape) if shard is not None else ((0,) * len(shape), shape, shape)
    entry = r.entries.get(name)
    tensor = (r.tensors or {}).get(name)
    if (entry is not None and _stored_box(entry) == wanted_box) or (shard is None and tensor is None):
        if entry is not None:
            _check(name, entry, v)

        def fill(meta: Dict[str, Any], off: int) -> None:
            new = _copy_into(v, r.view(meta, off), meta["dtype"])
            if new is not None:
                _put(leaf, new)

        r.need(name, wanted, fill)
        return
    if tensor is not None:
        stored_dtype, global_shape = str(tensor["dtype"]), tuple(int(d) for d in tensor["global_shape"])
    elif entry is not None:
        stored_dtype, global_shape = str(entry["dtype"]), _stored_box(entry)[2]
    elif r.partial:
        return
    else:
        raise RestoreError(f"entry '{name}' is not in checkpoint step {r.step} (pass partial=True to skip it)")
    have = _describe(stored_dtype, global_shape)
    offsets, asked_global = wanted_box[0], wanted_box[2]
    if shard is None and shape != global_shape:
        raise RestoreError(f"entry '{name}': checkpoint has {have} saved in pieces, state has {_describe(dtype, shape)}; "
                           "restore a piece of it with cairn.Shard(tensor, global_shape, offsets)")
    if asked_global != global_shape:
        raise RestoreError(f"entry '{name}': checkpoint has {have}, state's cairn.Shard has global shape "
                           f"{list(asked_global)}")
    if stored_dtype != dtype:
        where = f" at {list(offsets)} of {list(asked_global)}" if shard is not None else ""
        raise RestoreError(f"entry '{name}': checkpoint has {have}, state has {_describe(dtype, shape)}{where}")
    if r.tensors is None:
        raise RestoreError(f"entry '{name}': the checkpoint holds another layout of it and this sidecar cannot read "
                           "regions (restore_region); use a newer cairn.jar")
    dest, done = _region_dest(leaf, v)
    r.regions.append(Region(name, stored_dtype, offsets, shape, dest, done))


def _region_dest(leaf: Leaf, v: Any) -> Tuple[Any, Any]:
    """Where the parts of a box are copied: the leaf itself when it is writable, else a copy put
    in its place once filled."""
    if codec.is_tensor(v):
        return v, None
    import numpy as np

    if isinstance(v, np.generic) or not v.flags.writeable:
        new = np.array(v, copy=True)
        return new, lambda: _put(leaf, new[()] if isinstance(v, np.generic) else new)
    return v, None


def _dtensor_leaf(name: str, v: Any) -> Leaf:
    """A DTensor as a cairn.Shard leaf of its local tensor, filled in place (cairn.torch._dtensor);
    RestoreError naming the entry when its local shape disagrees with its placements."""
    from .torch._dtensor import layout

    try:
        global_shape, offsets, _ = layout(name, v)
    except CairnError as e:
        raise RestoreError(str(e)) from None
    local = v._local_tensor
    return Leaf(name, local, False, Shard(local, global_shape, offsets or (0,) * len(global_shape)), None, None)


def _plan_leaf(r: _Restore, leaf: Leaf, wanted: Dict[str, Consumer], stateful: List[Tuple[Leaf, Dict[str, Any]]]) -> None:
    v, name = leaf.value, leaf.name

    def replace(new: Any) -> None:
        _put(leaf, new)

    if codec.is_dtensor(v) and leaf.shard is None:
        _plan_array(r, _dtensor_leaf(name, v), wanted)
    elif codec.is_tensor(v) or codec.is_ndarray(v):
        _plan_array(r, leaf, wanted)
    elif _frameworks.plan(name, v, r.entries, lambda n, consume: r.need(n, wanted, consume), r.view, replace):
        pass  # a tf.Variable, EagerTensor, keras.Variable or jax.Array (cairn._frameworks)
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
    first_region = len(r.regions)
    for rel, as_tensor in codec.referenced(structure):
        full = codec.under(name, rel)
        target = current.get(rel)
        entry = r.entries.get(full)
        if target is not None and (codec.is_dtensor(target) or (entry or {}).get("global_shape") is not None
                                   or (entry is None and full in (r.tensors or {}))):
            # a DTensor, or a tensor saved in pieces: filled in place, its box read from any layout
            _plan_array(r, _dtensor_leaf(full, target) if codec.is_dtensor(target)
                        else Leaf(full, target, None, None, None, None), wanted)
            values[rel] = target
            continue
        if full in r.entries and rel in current:
            _check(full, r.entries[full], current[rel])

        def take(meta: Dict[str, Any], off: int, rel: str = rel, as_tensor: bool = as_tensor) -> None:
            values[rel] = _decode_new(meta, r.view(meta, off), as_tensor)

        r.need(full, wanted, take)
    r.read(wanted)
    fill_all(r.conn, r.shm, r.step, r.regions[first_region:], r.stats)
    try:
        obj.load_state_dict(codec.rebuild(structure, values))
    except Exception as e:  # load_state_dict raises many types
        raise RestoreError(f"entry '{name}': load_state_dict failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e

