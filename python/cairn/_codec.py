"""Leaves to typed entries (dtype, shape, bytes) and back. NumPy and torch are touched only when a
leaf is one of their objects (checked through ``sys.modules``, so neither is imported here)."""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._dtypes import itemsize, numpy_name, torch_name, torch_same_size_int
from ._shm import SharedFile
from ._tree import Leaf, Shard, join
from .errors import CairnError, UnsupportedLeaf

STATE_DICT = ".state_dict"  # the JSON entry holding the structure of an object's state_dict()

Writer = Callable[[SharedFile, int], None]


@dataclass
class Item:
    """One entry of a save: its typed description and how to copy its bytes to the shared file."""

    name: str
    dtype: str
    shape: Tuple[int, ...]
    length: int
    replicated: bool
    shard: Optional[Shard]
    write: Writer

    def describe(self, offset: int) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"name": self.name, "offset": offset, "length": self.length, "dtype": self.dtype,
                                 "shape": list(self.shape), "replicated": self.replicated}
        if self.shard is not None:
            entry["global_shape"] = list(self.shard.global_shape)
            entry["global_offsets"] = list(self.shard.offsets)
        return entry


def _module(name: str) -> Any:
    return sys.modules.get(name)


def is_ndarray(x: Any) -> bool:
    np = _module("numpy")
    return np is not None and isinstance(x, (np.ndarray, np.generic))


def is_tensor(x: Any) -> bool:
    torch = _module("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_dtensor(x: Any) -> bool:
    """A ``torch.distributed.tensor.DTensor`` (only possible once that module is imported)."""
    m = _module("torch.distributed.tensor")
    return m is not None and isinstance(x, getattr(m, "DTensor", ()))


def dtensor_items(name: str, t: Any) -> List[Item]:
    """The entry of this rank's piece of DTensor ``t`` (``cairn.torch._dtensor``): a piece with
    global shape/offsets, a replicated entry for an all-Replicate() DTensor, nothing for a
    duplicate copy along a replicate mesh dimension."""
    from .torch._dtensor import piece

    try:
        p = piece(name, t)
    except CairnError as e:  # one line naming the entry
        raise UnsupportedLeaf(str(e)) from None
    return [tensor_item(name, p.local, p.shard is None, p.shard)] if p.writes else []


def is_torch_generator(x: Any) -> bool:
    torch = _module("torch")
    return torch is not None and isinstance(x, torch.Generator)


def is_numpy_generator(x: Any) -> bool:
    np = _module("numpy")
    return np is not None and isinstance(x, np.random.Generator)


def is_stateful(x: Any) -> bool:
    return callable(getattr(x, "state_dict", None)) and callable(getattr(x, "load_state_dict", None))


def is_scalar(x: Any) -> bool:
    return x is None or isinstance(x, (bool, int, float, str))


# ---------------------------------------------------------------- JSON values

def to_json(value: Any) -> Any:
    """A JSON-safe form: tuples become lists, non-finite floats ``{"$float": "nan"}``."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if is_ndarray(value):
        return to_json(value.tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _from_json_hook(obj: Dict[str, Any]) -> Any:
    if len(obj) == 1 and "$float" in obj:
        return float(obj["$float"])
    return obj


def dumps(value: Any) -> bytes:
    return json.dumps(to_json(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), object_hook=_from_json_hook)


# ---------------------------------------------------------------- save side

def _bytes_item(name: str, dtype: str, data: bytes, rep: bool) -> Item:
    return Item(name, dtype, (len(data),), len(data), rep, None, lambda shm, off: shm.write(off, data))


def array_item(name: str, arr: Any, rep: bool, shard: Optional[Shard]) -> Item:
    import numpy as np

    arr = np.asarray(arr)
    dtype = numpy_name(arr.dtype)
    if dtype is None:
        raise UnsupportedLeaf(f"entry '{name}': NumPy dtype {arr.dtype} cannot be stored (numeric and bool only)")
    shape = tuple(int(d) for d in arr.shape)

    def write(shm: SharedFile, off: int) -> None:
        if arr.size:
            np.copyto(shm.array(off, dtype, shape), arr, casting="equiv")

    return Item(name, dtype, shape, arr.size * itemsize(dtype), rep, shard, write)


def tensor_item(name: str, t: Any, rep: bool, shard: Optional[Shard]) -> Item:
    import torch

    if t.layout != torch.strided or getattr(t, "is_quantized", False):
        raise UnsupportedLeaf(f"entry '{name}': a {t.layout} tensor cannot be stored (dense tensors only)")
    dtype = torch_name(t.dtype)
    if dtype is None:
        raise UnsupportedLeaf(f"entry '{name}': torch dtype {t.dtype} cannot be stored")
    shape = tuple(int(d) for d in t.shape)
    src = t.detach()

    def write(shm: SharedFile, off: int) -> None:
        if src.numel():
            dst = torch.from_numpy(shm.array(off, dtype, shape))
            with torch.no_grad():
                dst.copy_(src.view(torch_same_size_int(dtype)) if dtype == "bfloat16" else src)

    return Item(name, dtype, shape, src.numel() * itemsize(dtype), rep, shard, write)


def under(name: str, rel: str) -> str:
    """The entry name of a tensor at ``rel`` (already escaped segments) inside object ``name``."""
    return f"{name}/{rel}" if rel else name


def _skeleton(node: Any, name: str, rel: str, rep: bool, items: List[Item]) -> Any:
    """The JSON structure of a state_dict; tensors and arrays become entries under ``name``."""
    if isinstance(node, dict):
        pairs = []
        for k, v in node.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise UnsupportedLeaf(f"entry '{under(name, rel)}': state_dict key {k!r} is not a str or int")
            pairs.append([k, _skeleton(v, name, join(rel, k), rep, items)])
        return {"dict": pairs}
    if isinstance(node, (list, tuple)):
        kind = "list" if isinstance(node, list) else "tuple"
        return {kind: [_skeleton(v, name, join(rel, i), rep, items) for i, v in enumerate(node)]}
    if is_dtensor(node):
        items.extend(dtensor_items(under(name, rel), node))
        return {"tensor": rel}
    if is_tensor(node):
        items.append(tensor_item(under(name, rel), node, rep, None))
        return {"tensor": rel}
    if is_ndarray(node) and not isinstance(node, _module("numpy").generic):
        items.append(array_item(under(name, rel), node, rep, None))
        return {"ndarray": rel}
    if is_scalar(node) or is_ndarray(node):
        return {"value": to_json(node.item() if is_ndarray(node) else node)}
    raise UnsupportedLeaf(f"entry '{under(name, rel)}': a {type(node).__name__} inside a state_dict cannot be stored")


def leaf_items(leaf: Leaf, rep: bool) -> List[Item]:
    """The entries of one leaf; UnsupportedLeaf naming it when it cannot be stored."""
    v, name = leaf.value, leaf.name
    if leaf.shard is not None and not (is_tensor(v) or is_ndarray(v)):
        raise UnsupportedLeaf(f"entry '{name}': a cairn.Shard must hold a tensor or array, not {type(v).__name__}")
    if is_dtensor(v) and leaf.shard is None:
        return dtensor_items(name, v)
    if is_tensor(v):
        return [tensor_item(name, v, rep, leaf.shard)]
    if is_ndarray(v):
        return [array_item(name, v, rep, leaf.shard)]
    from ._frameworks import leaf_items as framework_items  # tf.Variable, EagerTensor, keras.Variable, jax.Array

    framework = framework_items(name, v, rep, Item)
    if framework is not None:
        return framework
    if is_torch_generator(v):
        state = v.get_state()
        return [tensor_item(name, state, rep, None)]
    if is_numpy_generator(v):
        return [_bytes_item(name, "json", dumps(v.bit_generator.state), rep)]
    if isinstance(v, random.Random):
        return [_bytes_item(name, "json", dumps(v.getstate()), rep)]
    if is_stateful(v):
        rep = rep or getattr(v, "cairn_mirrored", False) is True  # e.g. cairn.torch.AppState
        items: List[Item] = []
        structure = _skeleton(v.state_dict(), name, "", rep, items)
        return [_bytes_item(join(name, STATE_DICT), "json", dumps(structure), rep)] + items
    if isinstance(v, (bytes, bytearray, memoryview)):
        return [_bytes_item(name, "bytes", bytes(v), rep)]
    if is_scalar(v):
        try:
            return [_bytes_item(name, "json", dumps(v), rep)]
        except TypeError as e:  # pragma: no cover - scalars always encode
            raise UnsupportedLeaf(f"entry '{name}': {e}") from None
    raise UnsupportedLeaf(
        f"entry '{name}': a {type(v).__module__}.{type(v).__qualname__} cannot be stored (use NumPy arrays, torch "
        "tensors, Python scalars/strings, or objects with state_dict()/load_state_dict())")


# ---------------------------------------------------------------- restore side

def rebuild(structure: Any, values: Dict[str, Any]) -> Any:
    """The state_dict described by ``structure``, its tensors/arrays taken from ``values`` (by
    name relative to the object). Missing ones are left out (partial restores)."""
    if "dict" in structure:
        out = {}
        for k, v in structure["dict"]:
            child = rebuild(v, values)
            if child is not _MISSING:
                out[k] = child
        return out
    if "list" in structure or "tuple" in structure:
        seq = [rebuild(v, values) for v in structure.get("list", structure.get("tuple"))]
        seq = [x for x in seq if x is not _MISSING]
        return seq if "list" in structure else tuple(seq)
    if "tensor" in structure or "ndarray" in structure:
        return values.get(structure.get("tensor", structure.get("ndarray")), _MISSING)
    return structure["value"]


def referenced(structure: Any) -> List[Tuple[str, bool]]:
    """(name relative to the object, is a torch tensor) of every tensor/array a state_dict
    structure refers to, in state_dict order."""
    out: List[Tuple[str, bool]] = []

    def walk(node: Any) -> None:
        if "dict" in node:
            for _, v in node["dict"]:
                walk(v)
        elif "list" in node or "tuple" in node:
            for v in node.get("list", node.get("tuple")):
                walk(v)
        elif "tensor" in node or "ndarray" in node:
            out.append((node["tensor"], True) if "tensor" in node else (node["ndarray"], False))

    walk(structure)
    return out


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def to_random_state(value: Any) -> Any:
    """``random.Random.setstate`` wants tuples where JSON gave lists."""
    return tuple(tuple(v) if isinstance(v, list) else v for v in value)
