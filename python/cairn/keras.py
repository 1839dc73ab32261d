"""Keras 3 integration: a ``model.fit`` callback that checkpoints through Cairn, and the loading of
an exported checkpoint (``cairn export``) into a Keras model.

    import cairn.keras
    model.fit(x, y, epochs=5, callbacks=[cairn.keras.CheckpointCallback("chief:7400", run_id="run-7", save_freq=100)])

Backend-agnostic (TensorFlow, JAX and torch backends). What is saved: every model variable
(``model.variables``: weights, non-trainable state such as BatchNormalization statistics, the seed
generators' states) and every optimizer variable (slots, iteration count, learning rate), named by
their Keras paths (``model/<v.path>``, ``optimizer/<v.path>``), plus the epoch/batch position
(``keras/position``). Single worker, or one process with ``tf.distribute.MirroredStrategy``;
Keras' ``fit`` does not run under ``MultiWorkerMirroredStrategy`` (use a custom loop with
``cairn.tensorflow`` there). Keras is imported only by this module, never by ``import cairn``.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import CairnError, RestoreError
from .manager import CheckpointManager

_LOG = logging.getLogger("cairn")
MODEL, OPTIMIZER, POSITION = "model", "optimizer", "position"
_POSITION_GROUP = "keras"

try:  # keras.callbacks.Callback as the base class, imported when this module is
    import keras as _keras

    _Callback: Any = _keras.callbacks.Callback
except ImportError as _e:  # pragma: no cover - the module needs Keras 3
    raise ImportError(f"cairn.keras needs Keras 3 (pip install 'cairn[keras]'): {_e}") from None


def _nest(group: Dict[str, Any], path: str, value: Any, what: str) -> None:
    """Puts ``value`` at ``path`` (``a/b/c``) in the nested dict ``group``; a path that is also
    another path's prefix, or used twice, is an error naming it."""
    parts = path.split("/")
    node = group
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CairnError(f"{what} variable '{path}': its path runs through another variable's path")
        node = child
    if parts[-1] in node:
        raise CairnError(f"{what} variable '{path}': two variables have this path; give the layers unique names")
    node[parts[-1]] = value


def _saved_leaf(v: Any) -> Any:
    """What a save reads of a variable: the variable itself, or on the torch backend its tensor
    detached from autograd (the same memory: no extra copy)."""
    if _keras.backend.backend() == "torch":
        return v.value.detach()
    return v


def variables_state(model: Any, optimizer: bool = True, for_save: bool = False) -> Dict[str, Any]:
    """The Cairn state of a Keras model: ``{"model": {...}, "optimizer": {...}}``, the variables
    nested by their paths (the entries ``model/<v.path>`` and ``optimizer/<v.path>``); restoring it
    assigns the variables. ``for_save``: the values to save (the same entries)."""
    leaf = _saved_leaf if for_save else (lambda v: v)
    state: Dict[str, Any] = {MODEL: {}}
    for v in model.variables:
        _nest(state[MODEL], v.path, leaf(v), "model")
    opt = getattr(model, "optimizer", None)
    if optimizer and opt is not None:
        state[OPTIMIZER] = {}
        for v in opt.variables:
            _nest(state[OPTIMIZER], v.path, leaf(v), "optimizer")
    return state


def _nbytes(state: Any) -> int:
    if isinstance(state, dict):
        return sum(_nbytes(v) for v in state.values())
    shape = getattr(state, "shape", ())
    return 8 * max(1, math.prod(int(d) for d in shape))  # an upper bound (8 bytes an element)


class CheckpointCallback(_Callback):
    """Checkpoints ``model.fit`` through Cairn and resumes it, mid-epoch, after a restart.

    ``manager_or_address``: a :class:`cairn.CheckpointManager` (used as is, not closed), or the
    coordinator's ``host:port``: then the callback starts its own manager (and sidecar) with
    ``run_id``, ``rank``/``world_size`` (default 0 of 1), ``staging_mib`` (default: room for two
    saves of the model and optimizer), ``sidecar`` and ``**manager_kwargs``, at ``on_train_begin``,
    and closes it at ``on_train_end`` (after the last save committed).

    Saves after a batch when ``save_freq`` (an int) batches divide the global batch count, at the end
    of each epoch with ``save_freq="epoch"``, only when the coordinator asks with ``None`` — and in
    every case whenever the coordinator asks (``CheckpointManager.save_due``: its step or time
    policy, an operator's request, a preemption). ``save_at_end`` saves the final state at
    ``on_train_end``. ``monitor`` (e.g. ``"loss"``, ``"val_loss"``) puts that value of the latest
    logs (a batch's, or the epoch's at its end) in each save's metadata, for the coordinator's
    ``--best-k``/``--best-metric`` retention. Only the copy of the variables blocks ``fit``; uploads are asynchronous.

    On the first ``on_train_begin`` the latest checkpoint, if any, is restored (the optimizer built
    first when it has no variables yet) and ``fit`` continues after the last saved batch: the
    epochs before are skipped as ``BackupAndRestore`` skips them, and the batches already done in
    the saved epoch are drawn from the data and not trained on (other callbacks still see those
    batches begin and end). A variable whose dtype or shape differs from the checkpoint's, or which
    the checkpoint lacks, is a :class:`cairn.RestoreError` naming it.

    After a SIGTERM (see :class:`cairn.CheckpointManager`) the coordinator picks the step every
    worker saves at; this callback saves it, waits for the commit, sets ``preempted`` and stops
    training (``model.stop_training``): exit then and let the cluster manager restart the job.

    Attributes after ``fit``: ``restored_step`` (the step resumed from, or None), ``step`` (global
    batches done), ``saved_steps`` (the steps saved), ``preempted``, ``manager``.
    """

    def __init__(self, manager_or_address: Union[CheckpointManager, str], run_id: Optional[str] = None, *,
                 save_freq: Union[int, str, None] = "epoch", rank: int = 0, world_size: int = 1,
                 staging_mib: Optional[int] = None, sidecar: Optional[str] = None, save_at_end: bool = True,
                 monitor: Optional[str] = None, **manager_kwargs: Any) -> None:
        super().__init__()
        if save_freq is not None and save_freq != "epoch" and (
                isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch', an int >= 1 or None, got {save_freq!r}")
        if isinstance(manager_or_address, CheckpointManager):
            if run_id is not None or manager_kwargs or staging_mib is not None or sidecar is not None:
                raise ValueError("run_id, staging_mib, sidecar and manager arguments go with an address, "
                                 "not with a CheckpointManager")
            self._args: Optional[Dict[str, Any]] = None
            self.manager: Optional[CheckpointManager] = manager_or_address
        elif isinstance(manager_or_address, str):
            if not run_id:
                raise ValueError("run_id is needed with a coordinator address")
            self._args = dict(address=manager_or_address, run_id=run_id, rank=rank, world_size=world_size,
                              staging_mib=staging_mib, sidecar=sidecar, **manager_kwargs)
            self.manager = None
        else:
            raise TypeError(f"manager_or_address must be a CheckpointManager or 'host:port', "
                            f"got {type(manager_or_address).__name__}")
        self.save_freq = save_freq
        self.save_at_end = bool(save_at_end)
        self.monitor = monitor
        self._logs: Dict[str, Any] = {}
        self.step = 0
        self.restored_step: Optional[int] = None
        self.saved_steps: List[int] = []
        self.preempted = False
        self._restored = False
        self._epoch = 0
        self._epoch_base = 0
        self._resume: Optional[Tuple[int, int]] = None  # (epoch, batches already done in it)
        self._last_saved: Optional[int] = None
        self._futures: List["Future[int]"] = []
        self._original_train_function: Any = None

    # ------------------------------------------------------------ state

    def _state(self, epoch: int, batch: int, for_save: bool = False) -> Dict[str, Any]:
        import numpy as np

        state = variables_state(self.model, for_save=for_save)
        state[_POSITION_GROUP] = {POSITION: np.array([epoch, batch, self.step], dtype=np.int64)}
        return state

    def _sync(self) -> None:
        sync = getattr(self.model, "jax_state_sync", None)  # JAX: fit keeps the values outside the variables
        if sync is not None:
            sync()

    # ------------------------------------------------------------ train begin / end

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.manager is None:
            args = dict(self._args or {})
            if args.get("staging_mib") is None:
                need = _nbytes(self._state_for_size())
                args["staging_mib"] = max(16, -(-2 * need // (1 << 20)) + 1)
            self.manager = CheckpointManager(**args)
        if not self._restored:
            self._restored = True
            self._restore()

    def _state_for_size(self) -> Dict[str, Any]:
        self._build_optimizer()
        return variables_state(self.model)

    def _build_optimizer(self) -> None:
        if not getattr(self.model, "built", False):
            raise CairnError("cairn.keras.CheckpointCallback: the model must be built before fit() "
                             "(call it on a batch or give it an Input)")
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and not opt.built:
            opt.build(self.model.trainable_variables)  # its slots exist before they are assigned

    def _restore(self) -> None:
        assert self.manager is not None
        self._build_optimizer()
        state = self._state(0, 0)
        step = self.manager.restore_latest(state)
        if step is None:
            return
        epoch, batch, count = (int(x) for x in state[_POSITION_GROUP][POSITION])
        steps = (self.params or {}).get("steps")
        if steps and batch >= steps:  # saved after the last batch of an epoch
            epoch, batch = epoch + 1, 0
        self.step, self.restored_step, self._last_saved = count, step, step
        self.model._initial_epoch = epoch  # what BackupAndRestore sets; fit starts at this epoch
        self._resume = (epoch, batch) if batch else None
        print(f"cairn: resumed from step {step} (epoch {epoch}, batch {batch})", flush=True)
        if batch:
            self._skip_batches(batch)

    def _skip_batches(self, count: int) -> None:
        """Wraps ``model.train_function`` so its next ``count`` calls draw their batches from the
        data iterator without training (the batches the saved run had done in this epoch)."""
        model = self.model
        original = model.train_function
        if original is None:
            raise CairnError("cairn.keras.CheckpointCallback: model.train_function is not made yet at on_train_begin")
        left = [count]
        per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
        torch_backend = _keras.backend.backend() == "torch"

        def skipping(*args: Any) -> Any:
            if left[0] <= 0:
                model.train_function = original
                return original(*args)
            iterator = args[-1]
            for _ in range(min(per_call, left[0])):
                if torch_backend:
                    break  # torch: fit drew the batch already; it is passed in
                if hasattr(iterator, "get_next"):  # TensorFlow's (distributed) iterator
                    iterator.get_next()
                else:  # JAX: a Python iterator of batches
                    next(iterator)
            left[0] -= per_call
            if left[0] <= 0:
                model.train_function = original
            return ({}, args[0]) if len(args) == 2 else {}  # JAX: (logs, state); others: logs

        self._original_train_function = original
        model.train_function = skipping

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        try:
            if self.model.train_function is not self._original_train_function and self._original_train_function:
                self.model.train_function = self._original_train_function
            self._original_train_function = None
            self.model._initial_epoch = None
            if self.save_at_end and not self.preempted and self.step != self._last_saved:
                if self._epoch_done:
                    self._save(self._epoch + 1, 0)
                else:
                    self._save(self._epoch, self.step - self._epoch_base)
            self._wait()
        finally:
            if self._args is not None and self.manager is not None:
                self.manager.close()
                self.manager = None

    # ------------------------------------------------------------ epochs and batches

    _epoch_done = False

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch, self._epoch_done = epoch, False
        if self._resume is not None and self._resume[0] == epoch:
            self._epoch_base = self.step - self._resume[1]
        else:
            self._epoch_base = self.step
        self._resume = None

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        step = self._epoch_base + batch + 1
        if step <= self.step:
            return  # a batch skipped on resume: done before the restart
        self.step = step
        self._logs = logs or {}
        assert self.manager is not None
        due = self.manager.save_due(step)
        if due or (isinstance(self.save_freq, int) and step % self.save_freq == 0):
            self._save(self._epoch, batch + 1)
            if self.manager.preempted:
                self._preempted()

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch_done = True
        self._logs = logs or self._logs
        if self.save_freq == "epoch" and self.step != self._last_saved and not self.preempted:
            self._save(epoch + 1, 0)

    # ------------------------------------------------------------ saving

    def _save(self, epoch: int, batch: int) -> None:
        assert self.manager is not None
        self._sync()
        metadata: Dict[str, Any] = {"epoch": epoch, "batch": batch}
        if self.monitor is not None and self.monitor in self._logs:
            value = float(self._logs[self.monitor])
            if math.isfinite(value):
                metadata[self.monitor] = value
        future = self.manager.save(self.step, self._state(epoch, batch, True), metadata=metadata)
        self._last_saved = self.step
        self.saved_steps.append(self.step)
        step = self.step

        def report(f: "Future[int]") -> None:
            error = f.exception()
            if error is not None:
                _LOG.warning("cairn: the save of step %d did not commit: %s", step, error)

        future.add_done_callback(report)
        self._futures.append(future)

    def _preempted(self) -> None:
        """SIGTERM: the emergency save just started; wait for its commit, then stop training."""
        self.preempted = True
        try:
            self._futures[-1].result(timeout=600)
        except (CairnError, TimeoutError) as e:
            _LOG.warning("cairn: the emergency save of step %d did not commit: %s", self.step, e)
        self.model.stop_training = True

    def _wait(self) -> None:
        for future in self._futures:
            try:
                future.result()
            except CairnError:
                pass  # reported by its callback
        self._futures = []


def load_exported(model: Any, path: Union[str, "os.PathLike[str]"], prefix: str = "model/",
                  strict: bool = True) -> List[str]:
    """Assigns the variables of ``model`` from a file written by ``cairn export`` (safetensors, or
    ``.npz``): each variable from the tensor ``<prefix><v.path>`` (what :class:`CheckpointCallback`
    saved). Returns the names assigned. A variable without its tensor, or whose dtype or shape
    differs, is a :class:`cairn.RestoreError` naming it (``strict=False`` skips missing ones), as is
    a tensor under ``prefix`` that no variable takes (with ``strict``). Nothing is assigned unless
    every check passes."""
    import numpy as np

    tensors = _read_export(os.fspath(path))
    plan: List[Tuple[Any, Any, str]] = []
    taken = set()
    for v in model.variables:
        name = prefix + v.path
        arr = tensors.get(name)
        if arr is None:
            if strict:
                raise RestoreError(f"variable '{v.path}': no tensor '{name}' in {os.fspath(path)}")
            continue
        dtype = str(getattr(v.dtype, "name", v.dtype))
        shape = tuple(int(d) for d in v.shape)
        if (str(arr.dtype), tuple(arr.shape)) != (dtype, shape):
            raise RestoreError(f"variable '{v.path}': the file has {arr.dtype}{list(arr.shape)}, "
                               f"the model has {dtype}{list(shape)}")
        plan.append((v, arr, name))
        taken.add(name)
    if strict:
        extra = sorted(n for n in tensors if n.startswith(prefix) and n not in taken)
        if extra:
            raise RestoreError(f"tensor '{extra[0]}' in {os.fspath(path)}: no variable of the model has this path")
    for v, arr, _ in plan:
        v.assign(np.ascontiguousarray(arr))
    return [name for _, _, name in plan]


def _read_export(path: str) -> Dict[str, Any]:
    import numpy as np

    if path.endswith(".npz"):
        with np.load(path) as z:
            return {n: z[n] for n in z.files if n != "__metadata__.json"}
    try:
        from safetensors.numpy import load_file
    except ImportError as e:
        raise CairnError(f"reading {path} needs the safetensors package: {e}") from None
    return dict(load_file(path))


__all__ = ["CheckpointCallback", "load_exported", "variables_state"]
