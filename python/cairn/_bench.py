"""The trainer side of ``cairn bench --python``: one real trainer process driven over stdin/stdout.

``python3 -m cairn._bench --coordinator HOST:PORT --run-id RUN --rank I --world N --shard-mib M
[--entry-mib E] [--mirrored] --dir DIR``. The state is ``M`` MiB of float32 NumPy arrays of ``E``
MiB each (a torch state dict of the same tensors when torch imports, for the torch baselines).
The bench sends one command per line on stdin; every command is answered by one JSON line on
stdout (other output goes to stderr). Times are this process's, in milliseconds:

- ``copy``: ``numpy.copyto`` of the state into preallocated, already touched arrays (the floor of
  a save's stall).
- ``save STEP``: ``CheckpointManager.save`` (the stall) and its commit (``committedMs``).
- ``restore STEP``: ``CheckpointManager.restore`` into the state.
- ``write`` / ``read``: the same bytes to/from a file under DIR with plain ``os.write`` and
  ``fsync`` / ``readinto`` (the storage baselines; local files only).
- ``torch0`` / ``torchall``: ``torch.save`` of the state dict and ``fsync``, by rank 0 only
  (other ranks answer at once) / by every rank to its own file.
- ``dcp``: ``torch.distributed.checkpoint.save_state_dict`` with a single-process writer, when it
  imports; else ``{"error": reason}``.
- ``quit``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from typing import Any, Dict

import numpy as np

import cairn

MIB = 1 << 20


def _answer(fields: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _fsync_file(path: str, write) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        entry = min(args.entry_mib, args.shard_mib) * MIB // 4
        count = max(1, args.shard_mib * MIB // 4 // entry)
        rng = np.random.default_rng(1000 + (0 if args.mirrored else args.rank))
        self.arrays = {f"t{i:04d}": rng.standard_normal(entry, dtype=np.float32) for i in range(count)}
        self.copies = {k: np.ones_like(v) for k, v in self.arrays.items()}
        self.bytes = sum(v.nbytes for v in self.arrays.values())
        os.makedirs(args.dir, exist_ok=True)
        self.mgr = cairn.CheckpointManager(args.coordinator, run_id=args.run_id, rank=args.rank, world_size=args.world,
                                           mirrored=args.mirrored, staging_mib=args.staging_mib, handle_sigterm=False)
        try:
            import torch

            self.torch = torch
            self.tensors = {k: torch.from_numpy(v) for k, v in self.arrays.items()}
        except ImportError:
            self.torch = None

    def run(self) -> None:
        _answer({"ready": True, "bytes": self.bytes, "torch": self.torch is not None and self.torch.__version__})
        for line in sys.stdin:
            cmd, *rest = line.split()
            if cmd == "quit":
                break
            _answer(getattr(self, "_" + cmd)(*rest))
        self.mgr.close()
        _answer({"closed": True})

    def _copy(self) -> Dict[str, Any]:
        t0 = time.perf_counter()
        for k, v in self.arrays.items():
            np.copyto(self.copies[k], v)
        return {"ms": _ms(t0)}

    def _save(self, step: str) -> Dict[str, Any]:
        t0 = time.perf_counter()
        future = self.mgr.save(int(step), self.arrays)
        stall = _ms(t0)
        future.result()
        return {"ms": stall, "committedMs": _ms(t0)}

    def _restore(self, step: str) -> Dict[str, Any]:
        t0 = time.perf_counter()
        got = self.mgr.restore(int(step), self.arrays)
        return {"ms": _ms(t0), "step": got}

    def _path(self, what: str) -> str:
        return os.path.join(self.args.dir, f"{what}-{self.args.rank}.bin")

    def _write(self) -> Dict[str, Any]:
        t0 = time.perf_counter()
        _fsync_file(self._path("raw"), lambda f: [f.write(memoryview(v).cast("B")) for v in self.arrays.values()])
        return {"ms": _ms(t0)}

    def _read(self) -> Dict[str, Any]:
        t0 = time.perf_counter()
        with open(self._path("raw"), "rb", buffering=0) as f:
            for v in self.copies.values():
                f.readinto(memoryview(v).cast("B"))
        return {"ms": _ms(t0)}

    def _torch_save(self, path: str) -> float:
        t0 = time.perf_counter()
        _fsync_file(path, lambda f: self.torch.save(self.tensors, f))
        return _ms(t0)

    def _torch0(self) -> Dict[str, Any]:
        if self.torch is None:
            return {"error": "torch does not import"}
        return {"ms": self._torch_save(self._path("torch0")) if self.args.rank == 0 else 0.0}

    def _torchall(self) -> Dict[str, Any]:
        if self.torch is None:
            return {"error": "torch does not import"}
        return {"ms": self._torch_save(self._path("torchall"))}

    def _dcp(self) -> Dict[str, Any]:
        reasons = []
        dcp = None
        # torch >= 2.0 / torch 1.13's prototype (which fails to import under Python 3.11)
        for module in ("torch.distributed.checkpoint", "torch.distributed._shard.checkpoint"):
            try:
                dcp = importlib.import_module(module)
                break
            except Exception as e:  # any import failure is the reason
                reasons.append(f"{module}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        if dcp is None:
            return {"error": "PyTorch distributed checkpoint does not import (" + "; ".join(reasons) + ")"}
        t0 = time.perf_counter()
        dcp.save_state_dict(self.tensors, dcp.FileSystemWriter(os.path.join(self.args.dir, f"dcp-{self.args.rank}")),
                            no_dist=True)
        return {"ms": _ms(t0)}


def main() -> None:
    p = argparse.ArgumentParser(prog="python3 -m cairn._bench", description="trainer process of cairn bench --python")
    p.add_argument("--coordinator", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--shard-mib", type=int, required=True)
    p.add_argument("--entry-mib", type=int, default=8)
    p.add_argument("--staging-mib", type=int)
    p.add_argument("--mirrored", action="store_true")
    p.add_argument("--dir", required=True)
    Driver(p.parse_args()).run()


if __name__ == "__main__":
    main()
