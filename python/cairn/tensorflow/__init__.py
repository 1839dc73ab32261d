"""Cairn for TensorFlow: save and restore a ``tf.train.Checkpoint`` (or any trackable) through a
Cairn sidecar, under ``tf.distribute.MultiWorkerMirroredStrategy`` too (mirrored variables written
once, split across workers), with TF's ``CheckpointManager`` and ``PreemptionCheckpointHandler``
surface. Importing this module imports TensorFlow. See docs/tensorflow.md.

    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = cairn.tensorflow.CheckpointManager(ckpt, "chief:7400", run_id="run-7")
    manager.restore_or_initialize()
    ...
    if manager.save_due(step):
        manager.save(checkpoint_number=step)
"""

import tensorflow  # noqa: F401  (this subpackage is TensorFlow's adapter)

from ._graph import state_of
from ._manager import CheckpointManager, worker_of
from ._preemption import PreemptionCheckpointHandler

__all__ = ["CheckpointManager", "PreemptionCheckpointHandler", "state_of", "worker_of"]
