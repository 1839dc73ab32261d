"""``cairn.tensorflow.PreemptionCheckpointHandler``: TF's ``PreemptionCheckpointHandler`` over Cairn.
SIGTERM on any worker makes every worker save at the same next step (the coordinator picks it);
once that save committed, the handler exits the process so the cluster manager restarts the job."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Callable, Iterator, Optional

from ..errors import CairnError
from ._manager import CheckpointManager

_LOG = logging.getLogger("cairn")
EXIT_CODE = 42  # TF's default exit code outside GCE and TPU


class PreemptionCheckpointHandler:
    """Restores on construction, saves when the coordinator asks (its policy, an operator's
    trigger, a preemption), and exits after the emergency save of a preemption.

    ``checkpoint_or_checkpoint_manager`` is a ``tf.train.Checkpoint`` (then ``address``, ``run_id``
    and any other :class:`CheckpointManager` keyword arguments make the manager) or a
    :class:`CheckpointManager`. ``termination_config`` (a ``tf.distribute.experimental.TerminationConfig``)
    or ``exit_fn`` say how to exit (default: ``sys.exit(42)``, as TF's). The checkpoint number is the
    count of :meth:`run` calls, restored with the checkpoint (:attr:`total_run_calls`).
    """

    def __init__(self, cluster_resolver: Any, checkpoint_or_checkpoint_manager: Any, *,
                 termination_config: Any = None, exit_fn: Optional[Callable[[], Any]] = None,
                 address: Optional[str] = None, run_id: Optional[str] = None, **manager_options: Any) -> None:
        if isinstance(checkpoint_or_checkpoint_manager, CheckpointManager):
            if address is not None or run_id is not None or manager_options:
                raise ValueError("address, run_id and manager options go to the CheckpointManager, not here")
            self.manager = checkpoint_or_checkpoint_manager
        else:
            if address is None or run_id is None:
                raise ValueError("PreemptionCheckpointHandler of a checkpoint needs address= and run_id=")
            self.manager = CheckpointManager(checkpoint_or_checkpoint_manager, address, run_id,
                                             cluster_resolver=cluster_resolver, **manager_options)
        configured = getattr(termination_config, "exit_fn", None) if termination_config is not None else None
        self._exit_fn = exit_fn or configured or (lambda: sys.exit(EXIT_CODE))
        self.restored_step = self.manager.restore_or_initialize()
        self._run_calls = self.restored_step or 0
        self.last_save: Any = None  # the Future of the last save this handler started

    @property
    def total_run_calls(self) -> int:
        """Steps run so far, counting those of the restored checkpoint."""
        return self._run_calls

    def run(self, distributed_train_function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs one step (``distributed_train_function(*args, **kwargs)``), then saves if the
        coordinator wants a save at this step; after a preemption's save commits, exits."""
        result = distributed_train_function(*args, **kwargs)
        self.save_checkpoint_if_preempted()
        return result

    @contextlib.contextmanager
    def watch_preemption_scope(self) -> Iterator["PreemptionCheckpointHandler"]:
        """For loops that do not go through :meth:`run`: inside the scope, call
        :meth:`save_checkpoint_if_preempted` after each step. Leaving the scope waits for the
        saves started in it."""
        try:
            yield self
        finally:
            self.manager.wait_until_finished()

    def save_checkpoint_if_preempted(self) -> None:
        """Counts one step; saves when the coordinator wants a save at it; after a preemption's
        save commits (or fails: the previous checkpoint stays the latest), exits the process. Under
        a multi-worker strategy every worker agrees on both (:meth:`CheckpointManager.save_due`),
        so every worker saves at the same step and every worker exits, not just the signalled one."""
        self._run_calls += 1
        step = self._run_calls
        if not self.manager.save_due(step):
            return
        self.last_save = self.manager.save(step)
        if not self.manager.preempted:
            return
        try:
            committed = self.last_save.result()
            _LOG.warning("cairn: preempted; checkpoint %d committed, exiting", committed)
        except CairnError as e:
            _LOG.warning("cairn: preempted; the emergency save of step %d failed (%s), exiting", step, e)
        self.manager.close()
        self._exit_fn()
