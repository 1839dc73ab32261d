"""A nested state (a pytree of dicts, lists and tuples) flattened into named leaves, each with the
container and key it sits at so a restore can put a new value back in place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple


class Replicated:
    """A leaf or subtree marked as mirrored: every worker holds the same value (see
    :func:`cairn.replicated`)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"cairn.replicated({self.value!r})"


class Shard:
    """One piece of a larger tensor: ``tensor`` holds the elements at ``offsets`` (one per
    dimension) of a tensor of ``global_shape``. The checkpoint records both."""

    __slots__ = ("tensor", "global_shape", "offsets")

    def __init__(self, tensor: Any, global_shape: Sequence[int], offsets: Sequence[int]) -> None:
        self.global_shape = tuple(int(d) for d in global_shape)
        self.offsets = tuple(int(o) for o in offsets)
        shape = tuple(int(d) for d in getattr(tensor, "shape", ()))
        if len(self.global_shape) != len(shape) or len(self.offsets) != len(shape):
            raise ValueError(
                f"cairn.Shard: tensor of shape {list(shape)} needs {len(shape)} global dims and offsets, "
                f"got global_shape {list(self.global_shape)} and offsets {list(self.offsets)}")
        for dim, (size, off, total) in enumerate(zip(shape, self.offsets, self.global_shape)):
            if off < 0 or off + size > total:
                raise ValueError(
                    f"cairn.Shard: dimension {dim}: offset {off} + size {size} lies outside global size {total}")
        self.tensor = tensor

    def __repr__(self) -> str:
        return f"cairn.Shard(shape={list(getattr(self.tensor, 'shape', ()))}, global_shape={list(self.global_shape)}, offsets={list(self.offsets)})"


def replicated(value: Any) -> Replicated:
    """Marks ``value`` (a leaf or a whole subtree) as mirrored: identical on every worker, so a save
    writes it once, split across all workers."""
    return Replicated(value)


@dataclass
class Leaf:
    """One leaf of a state: its entry name, value, mirroring mark, and where it sits."""

    name: str
    value: Any
    replicated: Optional[bool]  # None: the manager's default (mirrored=...)
    shard: Optional[Shard]
    container: Any
    key: Any

    def replace(self, new_value: Any) -> None:
        """Puts ``new_value`` where this leaf sits (for immutable leaves such as ints)."""
        if isinstance(self.container, tuple) or self.container is None:
            raise TypeError(f"entry '{self.name}': cannot replace a leaf inside a tuple or at the root; use a list or dict")
        self.container[self.key] = new_value


_FORBIDDEN = {chr(c) for c in range(0x20)} | {chr(0x7F), "\\"}


def escape_segment(key: Any) -> str:
    """The name segment of a dict key or list index: ``str(key)`` with ``%`` and ``/`` percent-
    encoded, and empty, ``.`` and ``..`` segments encoded so every segment is valid."""
    text = key if isinstance(key, str) else str(key)
    text = text.replace("%", "%25").replace("/", "%2F")
    if text in ("", ".", ".."):
        text = text.replace(".", "%2E") or "%00"
    bad = [ch for ch in text if ch in _FORBIDDEN]
    if bad:
        raise ValueError(f"key {key!r}: control characters and backslashes cannot appear in entry names")
    return text


def join(prefix: str, key: Any) -> str:
    segment = escape_segment(key)
    return f"{prefix}/{segment}" if prefix else segment


def _children(node: Any) -> Optional[Iterator[Tuple[Any, Any]]]:
    if isinstance(node, Mapping):
        for key in node:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"dict key {key!r}: keys must be str or int")
        return iter(list(node.items()))
    if isinstance(node, (list, tuple)):
        return iter(list(enumerate(node)))
    return None


def flatten(state: Any, prefix: str = "") -> List[Leaf]:
    """The leaves of ``state`` in a deterministic order (dict order, then list order), named by
    their key paths. ``Replicated`` marks pass to the leaves under them."""
    if not isinstance(state, (Mapping, list, tuple, Replicated)):
        raise TypeError(f"state must be a dict (or list) of leaves, got {type(state).__name__}")
    leaves: List[Leaf] = []
    seen = set()

    def walk(node: Any, name: str, mark: Optional[bool], container: Any, key: Any) -> None:
        if isinstance(node, Replicated):
            walk(node.value, name, True, container, key)
            return
        if isinstance(node, Shard):
            if mark:
                raise ValueError(f"entry '{name}': a cairn.Shard cannot be replicated")
            leaves.append(Leaf(name, node.tensor, False, node, container, key))
            return
        children = _children(node)
        if children is None:
            if not name:
                raise TypeError("state must be a dict (or list) of leaves")
            if name in seen:
                raise ValueError(f"entry '{name}': two keys map to the same entry name")
            seen.add(name)
            leaves.append(Leaf(name, node, mark, None, container, key))
            return
        for child_key, child in children:
            walk(child, join(name, child_key), mark, node, child_key)

    walk(state, prefix, None, None, None)
    return leaves
