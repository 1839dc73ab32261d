"""Lightning ``CheckpointIO`` plugins that save and load through Cairn.

    from cairn.torch.lightning import CairnCheckpointIO
    trainer = Trainer(plugins=[CairnCheckpointIO("chief:7400", run_id="lit-7")],
                      callbacks=[ModelCheckpoint(dirpath="ckpt", save_last=True)])
    trainer.fit(model, ckpt_path="last")

Lightning's contract: global rank 0 writes checkpoints (``Strategy.save_checkpoint``), every rank
loads them. So the Cairn run has ONE worker (the coordinator is started with ``--world 1``): rank 0
owns a ``CheckpointManager(rank=0, world_size=1)`` and its sidecar; on load, rank 0 restores from
Cairn and broadcasts the checkpoint dict to the other ranks (``torch.distributed``, when a process
group of more than one rank is up). Strategies that save sharded checkpoints from every rank
(Lightning's FSDP/DeepSpeed strategies) are not covered by this plugin.

Paths: Lightning's ``ModelCheckpoint`` keeps choosing file names (``epoch=0-step=10.ckpt``,
``last.ckpt``), listing them, removing the ones out of its top-k, and finding ``last`` by name. The
plugin keeps that working: a save stores the checkpoint as Cairn step = ``checkpoint["global_step"]``
and then writes at ``path`` a small JSON *marker* (``{"format": "cairn-lightning/1", "run_id",
"step"}``) naming that step. Two files saved at one global step (top-k and ``last``) are one Cairn
checkpoint. ``remove_checkpoint`` removes the marker only: which Cairn steps are kept is the
coordinator's retention policy. ``load_checkpoint`` of a marker restores that step; of any other
file it falls back to Lightning's own loading (``TorchCheckpointIO``), so runs started without Cairn
resume too.

Encoding: the checkpoint dict is stored as a Cairn state_dict object: every tensor is an entry,
the structure and the JSON values (ints, floats, strings, bools, None, lists, tuples, dicts with
str/int keys) are a JSON entry. A value that is none of these (an ``argparse.Namespace`` in
``hyper_parameters``, an enum, a dict with tuple keys, ...) is stored as ``torch.save`` bytes and
loaded with ``torch.load(weights_only=True)``: only tensors and plain containers/primitives (and what
``torch.serialization.add_safe_globals`` allows) load, never arbitrary pickled code.
"""

from __future__ import annotations

import io
import json
import os
import threading
from concurrent.futures import Future
from typing import Any, Dict, Optional

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

from .. import _codec as codec
from .._dtypes import numpy_name
from ..errors import CairnError, RestoreError
from ..manager import CheckpointManager

MARKER_FORMAT = "cairn-lightning/1"
PICKLED = "$cairn_torch_save"  # a dict {PICKLED: uint8 tensor} stands for a value stored with torch.save
ENTRY = "lightning"


def _jsonable_key(k: Any) -> bool:
    return isinstance(k, (str, int)) and not isinstance(k, bool)


def encode(value: Any) -> Any:
    """``value`` with every part Cairn cannot store as an entry or JSON replaced by its
    ``torch.save`` bytes (``{PICKLED: uint8 tensor}``)."""
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, dict) and all(_jsonable_key(k) for k in value):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        out = [encode(v) for v in value]
        return out if isinstance(value, list) else tuple(out)
    if codec.is_scalar(value) or (codec.is_ndarray(value) and numpy_name(value.dtype) is not None):
        return value
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return {PICKLED: torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)}


def decode(value: Any, weights_only: bool = True) -> Any:
    """The inverse of :func:`encode`; ``torch.save`` parts load with ``weights_only=True`` unless
    the caller trusts the checkpoint (``weights_only=False``)."""
    if isinstance(value, dict):
        if len(value) == 1 and PICKLED in value:
            data = value[PICKLED].numpy().tobytes()
            return torch.load(io.BytesIO(data), weights_only=weights_only, map_location="cpu")
        return {k: decode(v, weights_only) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, weights_only) for v in value]
    if isinstance(value, tuple):
        return tuple(decode(v, weights_only) for v in value)
    return value


class _Holder:
    """A checkpoint dict as a Cairn state_dict object (structure JSON + tensor entries)."""

    def __init__(self, checkpoint: Optional[Dict[str, Any]] = None) -> None:
        self.checkpoint = checkpoint

    def state_dict(self) -> Dict[str, Any]:
        return self.checkpoint if self.checkpoint is not None else {}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.checkpoint = state_dict


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _global_rank() -> int:
    dist = _dist()
    if dist is not None:
        return dist.get_rank()
    return int(os.environ.get("RANK", os.environ.get("GLOBAL_RANK", "0")) or 0)


class CairnCheckpointIO(CheckpointIO):
    """Lightning checkpoints saved through Cairn (see the module docstring). ``address``/``run_id``
    as for :class:`cairn.CheckpointManager`; other keyword arguments (``token``, ``staging_mib``,
    TLS files, ``sidecar``) go to it. A save returns once the checkpoint committed."""

    asynchronous = False

    def __init__(self, address: str, run_id: str, **manager_kwargs: Any) -> None:
        super().__init__()
        self.address, self.run_id = address, run_id
        self._kwargs = {"mirrored": True, "handle_sigterm": False, **manager_kwargs}
        self._mgr: Optional[CheckpointManager] = None
        self._lock = threading.Lock()
        self._saved: Dict[int, "Future[int]"] = {}  # Cairn step -> its save (one per global step)
        self._markers: list = []
        self._fallback = TorchCheckpointIO()

    @property
    def manager(self) -> CheckpointManager:
        """Rank 0's manager (started on first use)."""
        with self._lock:
            if self._mgr is None:
                self._mgr = CheckpointManager(self.address, self.run_id, rank=0, world_size=1, **self._kwargs)
            return self._mgr

    # ------------------------------------------------------------ save

    def save_checkpoint(self, checkpoint: Dict[str, Any], path: _PATH, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"CairnCheckpointIO.save_checkpoint: storage_options are not supported, got {storage_options!r}")
        step = int(checkpoint.get("global_step", 0))
        future = self._saved.get(step)
        if future is None or (future.done() and future.exception() is not None):
            future = self.manager.save(step, {ENTRY: _Holder(encode(checkpoint))},
                                       metadata={"epoch": int(checkpoint.get("epoch", 0)), "path": os.fspath(path)})
            self._saved[step] = future
        marker = {"format": MARKER_FORMAT, "run_id": self.run_id, "step": step}
        if self.asynchronous:
            done = threading.Event()
            self._markers.append((future, done))
            future.add_done_callback(lambda f: (self._write_marker(f, path, marker), done.set()))
        else:
            self._write_marker(future, path, marker, raise_errors=True)

    def _write_marker(self, future: "Future[int]", path: _PATH, marker: Dict[str, Any], raise_errors: bool = False) -> None:
        try:
            future.result()
        except CairnError:
            if raise_errors:
                raise
            return  # an asynchronous save that failed leaves no marker; the failure is in the log
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.cairn-tmp"
        with open(tmp, "w") as f:
            json.dump(marker, f)
        os.replace(tmp, path)

    def remove_checkpoint(self, path: _PATH) -> None:
        """Removes the marker only; the coordinator's retention decides which Cairn steps stay."""
        try:
            os.remove(os.fspath(path))
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------ load

    @staticmethod
    def read_marker(path: _PATH) -> Optional[Dict[str, Any]]:
        """The marker at ``path``, or None when it is not a Cairn marker (an ordinary .ckpt)."""
        try:
            with open(os.fspath(path), "rb") as f:
                head = f.read(4096)
            marker = json.loads(head.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None

    def load_checkpoint(self, path: _PATH, map_location: Optional[Any] = None, weights_only: Optional[bool] = None
                        ) -> Dict[str, Any]:
        marker = self.read_marker(path)
        if marker is None:
            return self._fallback.load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        if marker.get("run_id") != self.run_id:
            raise RestoreError(f"checkpoint '{os.fspath(path)}' belongs to Cairn run {marker.get('run_id')!r}, "
                               f"not {self.run_id!r}")
        dist = _dist()
        checkpoint: Any = None
        if _global_rank() == 0:
            holder = _Holder()
            self.manager.restore(int(marker["step"]), {ENTRY: holder})
            checkpoint = decode(holder.checkpoint, weights_only is not False)
        if dist is not None and dist.get_world_size() > 1:
            box = [checkpoint]
            dist.broadcast_object_list(box, src=0)
            checkpoint = box[0]
        if isinstance(map_location, (str, torch.device)):
            from lightning.fabric.utilities.apply_func import move_data_to_device

            checkpoint = move_data_to_device(checkpoint, map_location)
        return checkpoint

    # ------------------------------------------------------------ lifecycle

    def wait(self) -> None:
        """Waits until every save so far committed (and its marker is written) or failed."""
        for future in list(self._saved.values()):
            try:
                future.result()
            except CairnError:
                pass
        for _, done in self._markers:
            done.wait()
        self._markers.clear()

    def teardown(self) -> None:
        """Waits for pending saves, then closes the manager and its sidecar."""
        self.wait()
        with self._lock:
            mgr, self._mgr = self._mgr, None
        if mgr is not None:
            mgr.close()
        self._saved.clear()


class AsyncCairnCheckpointIO(CairnCheckpointIO):
    """:class:`CairnCheckpointIO` whose save returns once the checkpoint is copied into the
    sidecar's shared memory (the training stall is that copy; no tensor is cloned); upload and
    commit go on in the background, and the marker file is written when the checkpoint commits
    (a failed save leaves no marker). ``teardown`` (end of ``fit``) waits for pending saves. Like
    Lightning's ``AsyncCheckpointIO``, a marker may appear a little after ``save_checkpoint``
    returned."""

    asynchronous = True


__all__ = ["CairnCheckpointIO", "AsyncCairnCheckpointIO", "encode", "decode"]
