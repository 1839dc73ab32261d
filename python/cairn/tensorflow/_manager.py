"""``cairn.tensorflow.CheckpointManager``: the ``tf.train.CheckpointManager`` calls that make sense
for Cairn, over a ``cairn.CheckpointManager`` and its sidecar."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import Future
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import CairnError
from ..manager import CheckpointManager as _CoreManager
from . import _graph

_LOG = logging.getLogger("cairn")
PathLike = Union[str, "os.PathLike[str]"]


def worker_of(cluster_resolver: Any = None) -> Tuple[int, int]:
    """(rank, world size) of this worker: from ``cluster_resolver`` (e.g. a strategy's), else from
    ``TF_CONFIG``, else (0, 1). The chief (if the cluster has one) is rank 0, then the workers in
    order; other tasks (evaluator, ps) are not training workers and get an error."""
    if cluster_resolver is not None:
        spec = cluster_resolver.cluster_spec().as_dict()
        task_type, task_id = cluster_resolver.task_type, cluster_resolver.task_id
    else:
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            return 0, 1
        try:
            config = json.loads(raw)
            spec, task = config.get("cluster") or {}, config.get("task") or {}
            task_type, task_id = task.get("type"), int(task.get("index", 0))
        except (ValueError, TypeError, AttributeError) as e:
            raise CairnError(f"TF_CONFIG is not a valid cluster description: {e}") from None
    if not spec:
        return 0, 1
    workers = [("chief", i) for i in range(len(spec.get("chief") or []))]
    workers += [("worker", i) for i in range(len(spec.get("worker") or []))]
    if (task_type, task_id) not in workers:
        raise CairnError(f"task {task_type}:{task_id} is not a chief or worker of the cluster; it saves no checkpoints")
    return workers.index((task_type, task_id)), len(workers)


def _as_int(value: Any, what: str) -> int:
    if hasattr(value, "numpy"):
        value = value.numpy()
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{what} must be >= 0, got {number}")
    return number


class CheckpointManager:
    """Saves and restores a ``tf.train.Checkpoint`` (or any trackable) through Cairn, as
    ``tf.train.CheckpointManager`` does through files.

    Every variable of ``checkpoint``'s object graph is an entry named by its object-graph path
    (``model/_functional/_operations/1/_kernel``, ``optimizer/_iterations``, ``step``). Under a
    ``tf.distribute`` strategy, ``MirroredVariable``/``SyncOnRead`` variables are mirrored: each
    save writes them once, split across the workers by bytes; every other variable (created outside
    the strategy's scope: a per-worker ``tf.random.Generator``, a data position) is this worker's.

    ``rank``/``world_size`` default to the worker's place in ``cluster_resolver`` (e.g.
    ``strategy.cluster_resolver``), else in ``TF_CONFIG`` (chief first, then the workers).
    ``step_counter`` (a variable) numbers saves when ``save()`` gets no number; else the checkpoint's
    ``save_counter`` does, as TF does. ``init_fn`` runs in :meth:`restore_or_initialize` when there is
    nothing to restore. ``optimizer_variables`` (a list, or a callable returning one) is what an
    unbuilt Keras optimizer is built with before a restore (default: the trainable variables of the
    Keras models directly under ``checkpoint``). Retention, storage and the save policy are the
    coordinator's options (``--keep-last``, ``--save-every-steps``). The other keyword arguments are
    :class:`cairn.CheckpointManager`'s.
    """

    def __init__(self, checkpoint: Any, address: str, run_id: str, *, rank: Optional[int] = None,
                 world_size: Optional[int] = None, cluster_resolver: Any = None, step_counter: Any = None,
                 init_fn: Optional[Callable[[], Any]] = None,
                 optimizer_variables: Union[None, Sequence[Any], Callable[[], Sequence[Any]]] = None,
                 token: Optional[str] = None, staging_mib: Optional[int] = None, sidecar: Optional[str] = None,
                 handle_sigterm: bool = True, tls_ca: Optional[PathLike] = None, tls_cert: Optional[PathLike] = None,
                 tls_key: Optional[PathLike] = None) -> None:
        if rank is None or world_size is None:
            found_rank, found_world = worker_of(cluster_resolver)
            rank = found_rank if rank is None else rank
            world_size = found_world if world_size is None else world_size
        self._checkpoint = checkpoint
        self._step_counter = step_counter
        self._init_fn = init_fn
        self._optimizer_variables = optimizer_variables
        # TF numbers saves by save_counter, which tf.train.Checkpoint creates lazily; create it now,
        # on every worker at once (under a strategy its creation is a collective), so it is saved.
        self._save_counter = getattr(checkpoint, "save_counter", None)
        self.last_stall_s: Optional[float] = None
        self._strategy = _graph.strategy_of(checkpoint)
        self._agree: Optional[Callable[[Any], Any]] = None
        self._any_preempted = False
        self.manager = _CoreManager(address, run_id, rank, world_size, token=token, staging_mib=staging_mib,
                                    sidecar=sidecar, handle_sigterm=handle_sigterm, tls_ca=tls_ca, tls_cert=tls_cert,
                                    tls_key=tls_key)

    # ------------------------------------------------------------ properties

    @property
    def checkpoint(self) -> Any:
        """The trackable this manager saves and restores."""
        return self._checkpoint

    @property
    def rank(self) -> int:
        return self.manager.rank

    @property
    def world_size(self) -> int:
        return self.manager.world_size

    @property
    def latest_checkpoint(self) -> Optional[int]:
        """The newest committed checkpoint's number (its step), or None (TF: a path or None)."""
        return self.manager.latest_step()

    @property
    def checkpoints(self) -> List[int]:
        """The numbers of the committed checkpoints the coordinator keeps, oldest first."""
        return self.manager.all_steps()

    @property
    def preempted(self) -> bool:
        """True once a :meth:`save_due` answered for an emergency save: SIGTERM (or
        :meth:`request_preemption`) on this worker or, under a multi-worker strategy, on any worker."""
        return self.manager.preempted or self._any_preempted

    # ------------------------------------------------------------ save

    def save_due(self, step: Any) -> bool:
        """True when the coordinator wants a save at ``step`` (its policy, an operator's trigger,
        a preemption); records progress. One local round trip.

        Under a multi-worker strategy every worker must call it at every step (as a training loop
        does): the workers' answers are all-reduced (two int32s through the strategy), so all of
        them get the same answer at the same step. A worker's sidecar may learn of a save the
        coordinator picked a step later than another's; without the agreement one worker would
        save (and all-reduce its SyncOnRead variables) while the other trains on."""
        due = self.manager.save_due(_as_int(step, "step"))
        if self._strategy is None or self.manager.world_size == 1:
            return due
        import tensorflow as tf

        if self._agree is None:
            strategy = self._strategy

            @tf.function
            def agree(flags: Any) -> Any:
                return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(tf.identity, args=(flags,)), axis=None)

            self._agree = agree
        flags = self._agree(tf.constant([int(due), int(self.manager.preempted)], tf.int32)).numpy()
        self._any_preempted = self._any_preempted or bool(flags[1])
        return bool(flags[0])

    def request_preemption(self) -> None:
        """What SIGTERM does: the next :meth:`save_due` asks every worker for an emergency save."""
        self.manager.request_preemption()

    def _number(self, checkpoint_number: Any) -> int:
        if checkpoint_number is not None:
            return _as_int(checkpoint_number, "checkpoint_number")
        if self._step_counter is not None:
            return _as_int(self._step_counter, "step_counter")
        if self._save_counter is not None:
            return _as_int(self._save_counter, "save_counter")
        raise ValueError("save(): pass checkpoint_number (the trackable has no save_counter and no step_counter was given)")

    def save(self, checkpoint_number: Any = None, metadata: Optional[Mapping[str, Any]] = None) -> "Future[int]":
        """Copies every variable into the sidecar's shared memory and returns once copied (the only
        blocking part; :attr:`last_stall_s`); the upload and commit go on in the background. The
        Future's result is the committed number, or it raises ``cairn.SaveAborted``/``SidecarError``.
        The number is ``checkpoint_number``, else ``step_counter``'s value, else the checkpoint's
        ``save_counter`` after it is incremented (it is incremented by every save, as TF does)."""
        started = time.perf_counter()
        if self._save_counter is not None:
            self._save_counter.assign_add(1)
        number = self._number(checkpoint_number)
        state, _ = _graph.state_of(self._checkpoint)
        future = self.manager.save(number, state, metadata)
        self.last_stall_s = time.perf_counter() - started
        return future

    def wait_until_finished(self) -> None:
        """Waits until every save started so far committed or failed."""
        self.manager.wait_until_finished()

    # ------------------------------------------------------------ restore

    def _build_optimizers(self) -> None:
        unbuilt = _graph.unbuilt_optimizers(self._checkpoint)
        if not unbuilt:
            return
        given = self._optimizer_variables
        var_list = list(given() if callable(given) else given) if given is not None else \
            _graph.trainable_variables(self._checkpoint)
        for path, optimizer in unbuilt:
            if not var_list:
                raise CairnError(f"entry '{path}': the optimizer has no variables yet and no model variables were found "
                                 "to build it with; pass optimizer_variables=model.trainable_variables")
            strategy = getattr(optimizer, "_distribution_strategy", None)
            if strategy is not None:
                with strategy.scope():
                    optimizer.build(var_list)
            else:
                optimizer.build(var_list)

    def restore(self, checkpoint_number: Optional[int] = None, partial: bool = False) -> Optional[int]:
        """Assigns every variable of the checkpoint's object graph from checkpoint
        ``checkpoint_number`` (None: the latest); its number, or None when there is none. An unbuilt
        Keras optimizer is built first, so its slots (momentums, velocities) are created and filled,
        as ``tf.train.Checkpoint.restore`` does. A variable missing from the checkpoint or of
        another dtype/shape raises ``cairn.RestoreError`` naming it (missing ones are left as they
        are with ``partial=True``)."""
        step = self.manager.latest_step() if checkpoint_number is None else _as_int(checkpoint_number, "checkpoint_number")
        if step is None:
            return None
        self._build_optimizers()
        state, _ = _graph.state_of(self._checkpoint)
        return self.manager.restore(step, state, partial)

    def restore_or_initialize(self) -> Optional[int]:
        """Restores the latest checkpoint and returns its number; with none, runs ``init_fn`` (if
        given) and returns None."""
        restored = self.restore()
        if restored is None and self._init_fn is not None:
            self._init_fn()
        return restored

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Waits for pending saves, then ends the sidecar session. Idempotent."""
        self.manager.close()

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"cairn.tensorflow.CheckpointManager({self.manager!r})"
