"""Cairn's Python client: save and restore a trainer's state through a local ``cairn agent``
sidecar (tensor bytes go through shared memory; the stall is one memory copy).

    import cairn
    with cairn.CheckpointManager("chief:7400", run_id="run-7", rank=r, world_size=n, mirrored=True) as mgr:
        step = mgr.restore_latest(state) or 0
        ...
        if mgr.save_due(step):
            mgr.save(step, state, metadata={"loss": loss})
"""

from ._reshard import RestoreStats
from ._tree import Replicated, Shard, replicated
from .errors import (CairnError, CorruptCheckpoint, RestoreError, SaveAborted, SidecarError, StagingBusy,
                     UnsupportedLeaf)
from .manager import CheckpointManager

__version__ = "0.1.0"

__all__ = [
    "CheckpointManager", "Shard", "Replicated", "replicated", "RestoreStats",
    "CairnError", "SaveAborted", "SidecarError", "RestoreError", "CorruptCheckpoint", "StagingBusy",
    "UnsupportedLeaf", "__version__",
]
