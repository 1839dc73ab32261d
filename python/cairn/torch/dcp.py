"""Cairn as the storage layer of PyTorch Distributed Checkpoint (``torch.distributed.checkpoint``).

    import torch.distributed.checkpoint as dcp
    from cairn.torch.dcp import CairnStorageWriter, CairnStorageReader

    writer = CairnStorageWriter("chief:7400", run_id="run-7")      # rank/world from torch.distributed
    dcp.save(state_dict, checkpoint_id="step-100", storage_writer=writer)
    dcp.load(state_dict, storage_reader=CairnStorageReader(writer.manager))   # the latest committed step

DCP's planners keep their jobs (which rank writes a replicated tensor, resharding at load). Each
rank's items become entries of that rank's share of the Cairn save; the coordinator's barrier and
its validated, atomic manifest commit replace rank 0's ``.metadata`` file as the commit point.
Entry names follow the state dict's key paths (``{"model": {"0.weight": t}}`` -> ``model/0.weight``),
so ``cairn.CheckpointManager`` and the ``cairn`` CLI handle a DCP-written run like any other.

The step of a save or load comes from ``checkpoint_id`` (see :func:`step_of`), else from the
``step`` the writer/reader was given; a reader without either loads the latest committed step.
This module imports torch; it is imported only by a user who wants it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import types
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch.distributed.checkpoint.metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata, StorageMeta,
                                                   TensorProperties, TensorStorageMetadata)
from torch.distributed.checkpoint.planner import (LoadItemType, LoadPlan, LoadPlanner, SavePlan, SavePlanner,
                                                  WriteItem, WriteItemType)
from torch.distributed.checkpoint.storage import StorageReader as _StorageReader
from torch.distributed.checkpoint.storage import StorageWriter as _StorageWriter
from torch.distributed.checkpoint.storage import WriteResult
from torch.futures import Future as TorchFuture

from .._codec import Item, tensor_item
from .._dtypes import torch_name
from .._reshard import Region, RestoreStats, fill
from .._tree import Shard, escape_segment
from ..errors import CairnError, RestoreError, UnsupportedLeaf
from ..manager import CheckpointManager, _check_metadata

DCP_MARK = "cairn.dcp"  # save metadata key: the checkpoint was written through CairnStorageWriter

_TRAILING_DIGITS = re.compile(r"(\d+)$")


class CheckpointIdError(CairnError, ValueError):
    """A ``checkpoint_id`` (or step) that names no Cairn step."""


def step_of(checkpoint_id: Union[int, str, "os.PathLike[str]"]) -> int:
    """The Cairn step a DCP ``checkpoint_id`` names: an int >= 0 is the step itself; a str or path
    gives the digits its last path component ends with (``"step-100"``, ``"/ckpt/step-100"``,
    ``"100"`` -> 100). :class:`CheckpointIdError` otherwise."""
    if isinstance(checkpoint_id, bool):
        raise CheckpointIdError(f"checkpoint_id {checkpoint_id!r} is not a step")
    if isinstance(checkpoint_id, int):
        if checkpoint_id < 0:
            raise CheckpointIdError(f"checkpoint_id {checkpoint_id} is negative; steps are >= 0")
        return checkpoint_id
    if isinstance(checkpoint_id, (str, os.PathLike)):
        text = os.fspath(checkpoint_id)
        last = text.rstrip("/").rpartition("/")[2]
        match = _TRAILING_DIGITS.search(last)
        if match:
            return int(match.group(1))
        raise CheckpointIdError(f"checkpoint_id {text!r}: its last path component must end in the step's digits "
                                "(e.g. 'step-100')")
    raise CheckpointIdError(f"checkpoint_id must be an int, str or path, got {type(checkpoint_id).__name__}")


def _valid_id(checkpoint_id: Any) -> bool:
    try:
        step_of(checkpoint_id)
        return True
    except CheckpointIdError:
        return False


def entry_name(path: Sequence[Any]) -> str:
    """The Cairn entry name of a state-dict key path (DCP's planner mapping of an FQN)."""
    return "/".join(escape_segment(k) for k in path)


def _unescape(segment: str) -> str:
    return "" if segment == "%00" else urllib.parse.unquote(segment)


def fqn_of(name: str) -> Tuple[str, Tuple[str, ...]]:
    """(DCP's flattened key, the key path) of a Cairn entry name: its segments joined with ``.``
    as DCP's ``flatten_state_dict`` joins nested keys."""
    path = tuple(_unescape(s) for s in name.split("/"))
    return ".".join(path), path


def _dist_rank_world() -> Tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    raise CairnError("rank and world_size: pass them, initialize torch.distributed, or set RANK and WORLD_SIZE")


class _Managed:
    """The CheckpointManager a writer/reader uses: given, or created (and then owned) from an address."""

    def _attach(self, manager: Union[CheckpointManager, str], run_id: Optional[str], rank: Optional[int],
                world_size: Optional[int], manager_kwargs: Dict[str, Any]) -> None:
        if isinstance(manager, CheckpointManager):
            if run_id is not None or rank is not None or world_size is not None or manager_kwargs:
                raise ValueError("run_id, rank, world_size and CheckpointManager options go with an address, "
                                 "not with a CheckpointManager")
            self.manager, self._owned = manager, False
            return
        if not isinstance(manager, str):
            raise TypeError(f"manager must be a cairn.CheckpointManager or a 'host:port' address, "
                            f"got {type(manager).__name__}")
        if run_id is None:
            raise ValueError("run_id is required with an address")
        if rank is None or world_size is None:
            seen_rank, seen_world = _dist_rank_world()
            rank = seen_rank if rank is None else rank
            world_size = seen_world if world_size is None else world_size
        self.manager = CheckpointManager(manager, run_id, rank, world_size, **manager_kwargs)
        self._owned = True

    def close(self) -> None:
        """Closes the CheckpointManager this object created (one passed in is left open)."""
        if self._owned:
            self.manager.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _BytesPiece:
    """What ``cairn.Shard`` checks of a value: its shape (a bytes entry of ``n`` bytes is ``[n]``)."""

    __slots__ = ("shape",)

    def __init__(self, n: int) -> None:
        self.shape = (n,)


def _bytes_item(name: str, data: bytes) -> Item:
    # a one-piece [n] tensor of dtype bytes: listed among the checkpoint's tensors, so a rank of
    # any world size finds and reads it, though DCP had only one rank write it
    shard = Shard(_BytesPiece(len(data)), (len(data),), (0,))
    return Item(name, "bytes", (len(data),), len(data), False, shard, lambda shm, off: shm.write(off, data))


class CairnStorageWriter(_StorageWriter, _Managed):
    """A DCP ``StorageWriter`` that saves through a Cairn sidecar.

    ``manager`` is a :class:`cairn.CheckpointManager` (left open by :meth:`close`) or the
    coordinator's ``host:port``; with an address, ``run_id`` is required, ``rank``/``world_size``
    default to torch.distributed's (or ``RANK``/``WORLD_SIZE``), and the other keyword arguments go
    to the CheckpointManager this writer creates and :meth:`close` closes. The step of a save is
    ``step_of(checkpoint_id)`` when ``dcp.save`` is given a ``checkpoint_id``, else :attr:`step`.
    ``metadata`` (str/bool/int/float values) is recorded with every save.

    ``write_data`` copies this rank's items into the sidecar's shared memory and completes once the
    coordinator committed the save (every rank's upload done, manifest validated and written); a
    save that does not commit fails ``dcp.save`` (DCP reports a ``CheckpointException`` whose
    ``failures`` hold the :class:`cairn.SaveAborted` of each rank). ``finish`` writes nothing.
    """

    def __init__(self, manager: Union[CheckpointManager, str], run_id: Optional[str] = None, *,
                 rank: Optional[int] = None, world_size: Optional[int] = None, step: Optional[int] = None,
                 metadata: Optional[Mapping[str, Any]] = None, **manager_kwargs: Any) -> None:
        self.step: Optional[int] = None if step is None else step_of(step)
        self.checkpoint_id: Optional[Union[str, "os.PathLike[str]"]] = None
        self._metadata = _check_metadata(metadata)
        self.is_coordinator = False
        self.last_committed: Optional[int] = None
        self._whole: Dict[str, WriteItem] = {}
        self._attach(manager, run_id, rank, world_size, manager_kwargs)

    # ------------------------------------------------------------ DCP protocol

    def reset(self, checkpoint_id: Union[str, "os.PathLike[str]", None] = None) -> None:
        if checkpoint_id is not None:
            self.step = step_of(checkpoint_id)
            self.checkpoint_id = checkpoint_id

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, "os.PathLike[str]"]) -> bool:
        return _valid_id(checkpoint_id)

    def storage_meta(self) -> Optional[StorageMeta]:
        return StorageMeta(checkpoint_id=self.checkpoint_id if self.checkpoint_id is not None else self.step,
                           save_id=f"{self.manager.run_id}/{self.step}")

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self.is_coordinator = is_coordinator

    def _require_step(self) -> int:
        if self.step is None:
            raise CheckpointIdError("dcp.save through CairnStorageWriter needs a step: pass checkpoint_id "
                                    "(e.g. 'step-100') or set writer.step")
        return self.step

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        # this rank's whole tensors, before DCP's dedup keeps one writer of each
        self._whole = {wi.index.fqn: wi for wi in plan.items if wi.type == WriteItemType.TENSOR}
        whole = [[fqn, str(wi.tensor_data.properties.dtype), list(wi.tensor_data.size)]
                 for fqn, wi in self._whole.items() if wi.tensor_data is not None]
        return dataclasses.replace(plan, storage_data={"cairn_step": self._require_step(), "whole": whole})

    def prepare_global_plan(self, plans: List[SavePlan]) -> List[SavePlan]:
        data = [p.storage_data or {} for p in plans]
        steps = {d.get("cairn_step") for d in data}
        if len(steps) != 1:
            raise CheckpointIdError(f"the ranks save different steps {sorted(steps, key=str)}; "
                                    "give every rank the same checkpoint_id")
        # a whole tensor of the same key, dtype and shape on every rank is mirrored state: written
        # once, split across the ranks (DCP's dedup takes it for the same value too)
        common = None
        for d in data:
            mine = {(fqn, dtype, tuple(shape)) for fqn, dtype, shape in d.get("whole", [])}
            common = mine if common is None else common & mine
        mirrored = sorted(fqn for fqn, _, _ in (common or set()))
        return [dataclasses.replace(p, storage_data={"cairn_step": d.get("cairn_step"), "mirrored": mirrored})
                for p, d in zip(plans, data)]

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> "TorchFuture[List[WriteResult]]":
        step = self._require_step()
        mappings: Mapping[str, Any] = getattr(planner, "mappings", None) or {}
        items: List[Item] = []
        results: List[WriteResult] = []
        names: Dict[str, WriteItem] = {}
        mirrored = set((plan.storage_data or {}).get("mirrored", ())) if isinstance(plan.storage_data, dict) else set()
        for fqn in sorted(mirrored):
            wi = self._whole[fqn]
            name = entry_name(mappings[fqn]) if fqn in mappings else escape_segment(fqn)
            names[name] = wi
            items.append(tensor_item(name, self._cpu(planner.resolve_data(wi)), True, None))
        for wi in plan.items:
            fqn = wi.index.fqn
            name = entry_name(mappings[fqn]) if fqn in mappings else escape_segment(fqn)
            if fqn in mirrored:
                results.append(WriteResult(index=wi.index, size_in_bytes=items[sorted(mirrored).index(fqn)].length,
                                           storage_data=name))
                continue
            if name in names:
                raise UnsupportedLeaf(f"entry '{name}': this rank holds several chunks of it (one piece per rank "
                                      "and name is stored)")
            names[name] = wi
            data = planner.resolve_data(wi)
            if wi.type == WriteItemType.BYTE_IO:
                payload = data.getvalue() if isinstance(data, io.BytesIO) else bytes(data)
                item = _bytes_item(name, payload)
            else:
                items_tensor = self._cpu(data)
                td = wi.tensor_data
                assert td is not None
                shard = Shard(items_tensor, tuple(td.size), tuple(td.chunk.offsets))
                item = tensor_item(name, items_tensor, False, shard)
            items.append(item)
            results.append(WriteResult(index=wi.index, size_in_bytes=item.length, storage_data=name))
        committed = self.manager.save_items(step, items, {**self._metadata, DCP_MARK: 1}).result()
        self.last_committed = committed
        future: "TorchFuture[List[WriteResult]]" = TorchFuture()
        future.set_result(results)
        return future

    @staticmethod
    def _cpu(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return t if t.device.type == "cpu" else t.cpu()

    def finish(self, metadata: Metadata, results: List[List[WriteResult]]) -> None:
        """Nothing to write: the save committed in ``write_data`` (the coordinator's manifest)."""


class CairnStorageReader(_StorageReader, _Managed):
    """A DCP ``StorageReader`` that loads a committed Cairn checkpoint, whoever wrote it (this
    module's writer or ``CheckpointManager.save``) and whatever world size saved it.

    ``manager``/``run_id``/``rank``/``world_size``/keyword arguments as for
    :class:`CairnStorageWriter`. The step is ``step_of(checkpoint_id)`` when ``dcp.load`` is given
    one, else ``step``, else the latest committed step (the same on every rank: the coordinator
    announces it). Every tensor is offered to DCP as one chunk covering the whole global tensor;
    each ReadItem's box is read with ranged reads of the pieces that overlap it.

    Non-tensor values: a DCP-written value is DCP's ``torch.save`` payload, which DCP's default
    load planner unpickles with ``torch.load(weights_only=False)``: load only checkpoints of runs
    you trust. A ``CheckpointManager`` scalar (JSON) or ``bytes`` leaf is offered as that value.
    """

    def __init__(self, manager: Union[CheckpointManager, str], run_id: Optional[str] = None, *,
                 rank: Optional[int] = None, world_size: Optional[int] = None, step: Optional[int] = None,
                 **manager_kwargs: Any) -> None:
        self.step: Optional[int] = None if step is None else step_of(step)
        self.checkpoint_id: Optional[Union[str, "os.PathLike[str]"]] = None
        self._plan: Dict[str, Any] = {}
        self.last_restore_stats: Optional[RestoreStats] = None
        self._attach(manager, run_id, rank, world_size, manager_kwargs)

    def reset(self, checkpoint_id: Union[str, "os.PathLike[str]", None] = None) -> None:
        if checkpoint_id is not None:
            self.step = step_of(checkpoint_id)
            self.checkpoint_id = checkpoint_id

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, "os.PathLike[str]"]) -> bool:
        return _valid_id(checkpoint_id)

    def read_metadata(self) -> Metadata:
        mgr = self.manager
        with mgr._lock:
            conn = mgr._live()
            opened = conn.call("restore_open", **({} if self.step is None else {"step": self.step}))
            if opened.get("step") is None:
                raise RestoreError(f"run {mgr.run_id!r} has no committed checkpoint to load")
            step = int(opened["step"])
            conn.call("restore_close", step=step)
        return self._metadata(step, opened)

    def _metadata(self, step: int, opened: Dict[str, Any]) -> Metadata:
        dcp_written = bool((opened.get("metadata") or {}).get(DCP_MARK))
        described: Dict[str, Dict[str, Any]] = {e["name"]: e for e in opened.get("entries", [])}
        for t in opened.get("tensors", []):
            described.setdefault(t["name"], {**t, "sharded": True})
            described[t["name"]]["sharded"] = True
        state: Dict[str, Any] = {}
        paths: Dict[str, Tuple[str, ...]] = {}
        how: Dict[str, Tuple[str, str, str, List[int]]] = {}  # fqn -> (entry, kind, dtype, global shape)
        for name, e in described.items():
            if name.rpartition("/")[2] == ".state_dict":
                continue  # CheckpointManager's structure of a Stateful object; its tensors are entries
            fqn, path = fqn_of(name)
            if fqn in how:
                raise RestoreError(f"entries '{how[fqn][0]}' and '{name}' both map to DCP key '{fqn}'")
            dtype = str(e["dtype"])
            shape = [int(d) for d in (e.get("global_shape") or e.get("shape") or [])]
            if dtype in ("bytes", "json"):
                kind = "payload" if dtype == "bytes" and dcp_written and e.get("sharded") else dtype
                state[fqn] = BytesStorageMetadata()
            else:
                torch_dtype = getattr(torch, dtype, None)
                if not isinstance(torch_dtype, torch.dtype):
                    continue  # an element type torch lacks: not offered to DCP
                kind = "tensor"
                state[fqn] = TensorStorageMetadata(TensorProperties(dtype=torch_dtype), torch.Size(shape),
                                                   [ChunkStorageMetadata(torch.Size([0] * len(shape)), torch.Size(shape))])
            paths[fqn] = path
            how[fqn] = (name, kind, dtype, shape)
        return Metadata(state_dict_metadata=state, planner_data=paths,
                        storage_data={"cairn_step": step, "entries": how},
                        storage_meta=StorageMeta(checkpoint_id=self.checkpoint_id if self.checkpoint_id is not None
                                                 else step))

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        data = metadata.storage_data
        if not isinstance(data, dict) or "cairn_step" not in data:
            raise RestoreError("CairnStorageReader: the metadata was not read by a CairnStorageReader")
        self._plan = data

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: List[LoadPlan]) -> List[LoadPlan]:
        return plans

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> "TorchFuture[None]":
        step, how = int(self._plan["cairn_step"]), self._plan["entries"]
        mgr = self.manager
        stats = RestoreStats(step=step)
        self.last_restore_stats = stats
        with mgr._lock:
            conn = mgr._live()
            shm = mgr._shm
            assert shm is not None
            conn.call("restore_open", step=step)
            try:
                for ri in plan.items:
                    name, kind, dtype, shape = how[ri.storage_index.fqn]
                    if ri.type == LoadItemType.BYTE_IO:
                        planner.load_bytes(ri, io.BytesIO(self._value_bytes(conn, shm, step, name, kind, shape, stats)))
                        continue
                    target = planner.resolve_tensor(ri).detach()
                    lengths = tuple(int(n) for n in ri.lengths)
                    if tuple(target.shape) != lengths:
                        raise RestoreError(f"entry '{name}': DCP asks for {list(lengths)} into a tensor of "
                                           f"{list(target.shape)}")
                    base = ri.storage_index.offset or (0,) * len(lengths)
                    offsets = [int(b) + int(o) for b, o in zip(base, ri.storage_offsets)]
                    if torch_name(target.dtype) is None:
                        raise RestoreError(f"entry '{name}': cannot load into a {target.dtype} tensor")
                    fill(conn, shm, step, Region(name, dtype, offsets, lengths, target), stats)
                    planner.commit_tensor(ri, target)
            finally:
                conn.call("restore_close", step=step)
        future: "TorchFuture[None]" = TorchFuture()
        future.set_result(None)
        return future

    @staticmethod
    def _value_bytes(conn: Any, shm: Any, step: int, name: str, kind: str, shape: List[int],
                     stats: RestoreStats) -> bytes:
        """What DCP's ``load_bytes`` unpickles for a non-tensor entry."""
        if kind == "payload":
            n = int(shape[0]) if shape else 0
            dest = torch.empty(n, dtype=torch.uint8)
            fill(conn, shm, step, Region(name, "bytes", [0], [n], dest), stats)
            return bytes(dest.numpy().tobytes())
        placed = {e["name"]: e for e in conn.call("restore_read", step=step, names=[name]).get("entries", [])}
        e = placed.get(name)
        if e is None:
            raise RestoreError(f"entry '{name}': the sidecar did not return it")
        shm.check(int(e["offset"]), int(e["length"]), f"entry '{name}'")
        raw = shm.read(int(e["offset"]), int(e["length"]))
        stats.whole_entries += 1
        stats.add(name, len(raw))
        from .._codec import loads

        value: Any = loads(raw) if kind == "json" else raw
        out = io.BytesIO()
        torch.save(value, out)
        return out.getvalue()


StorageWriter = CairnStorageWriter
StorageReader = CairnStorageReader

__all__ = ["CairnStorageWriter", "CairnStorageReader", "StorageWriter", "StorageReader", "CheckpointIdError",
           "step_of", "entry_name", "fqn_of", "DCP_MARK"]
