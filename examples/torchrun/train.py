#!/usr/bin/env python3
"""FSDP2 training under torchrun, checkpointed through Cairn, resuming after torchrun restarts it.

    CAIRN_COORDINATOR=127.0.0.1:7400 CAIRN_RUN_ID=fsdp \\
        torchrun --standalone --nproc-per-node 2 --max-restarts 1 train.py --steps 40

Each rank reads its rank and world size from torchrun's environment (``cairn.torch.manager``;
no rank arguments), builds an MLP sharded with ``fully_shard`` on a 1-D CPU mesh (gloo) and
Adam, restores the latest committed checkpoint (``cairn.torch.AppState``: DTensor pieces of the
model and optimizer state, the step counters and param groups) and trains; the coordinator's policy
(``--save-every-steps``) decides when to save. ``--crash-at-step K`` makes rank 1 exit with an
error at step K in the first attempt only (``TORCHELASTIC_RESTART_COUNT=0``), after the previous
save committed: torchrun stops every rank and starts them again, and they resume from the latest
committed step. ``--no-cairn`` trains without checkpoints (the uninterrupted reference). Rank 0
prints ``CHECKSUM <sha256 of the gathered parameters and optimizer state>`` at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import cairn.torch  # noqa: E402

FEATURES, HIDDEN, BATCH = 16, 48, 8


def batch(step: int, rank: int, world: int):
    """Rank ``rank``'s batch at ``step``: a function of the step only (resumes see the same data)."""
    g = torch.Generator().manual_seed(10_007 * step + rank)
    x = torch.randn(BATCH, FEATURES, generator=g)
    return x, torch.tanh(x.sum(dim=1, keepdim=True))


def checksum(model: torch.nn.Module, opt: torch.optim.Optimizer) -> str:
    """sha256 of the gathered (full_state_dict) model and optimizer state; a collective."""
    model_sd, optim_sd = get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True))
    h = hashlib.sha256()
    for name, t in sorted(model_sd.items()):
        h.update(name.encode() + t.contiguous().numpy().tobytes())
    for fqn, per_param in sorted(optim_sd["state"].items()):
        for key, t in sorted(per_param.items()):
            h.update(f"{fqn}/{key}".encode() + (t.contiguous().numpy().tobytes() if torch.is_tensor(t) else repr(t).encode()))
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--crash-at-step", type=int, default=0, help="rank 1 fails at this step in the first attempt")
    p.add_argument("--no-cairn", action="store_true", help="train without checkpoints (the reference run)")
    p.add_argument("--staging-mib", type=int, default=16)
    args = p.parse_args()

    cairn.torch.init_process_group("gloo")  # init_process_group under a per-restart store prefix
    rank, world = dist.get_rank(), dist.get_world_size()
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))
    mesh = init_device_mesh("cpu", (world,))
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    state = {"app": cairn.torch.AppState(model, opt), "step": 0}

    # rank and world size from torchrun's environment; mirrored: all but the DTensor pieces is
    # the same on every rank, written once
    mgr = None if args.no_cairn else cairn.torch.manager(mirrored=True, staging_mib=args.staging_mib)
    try:
        if mgr is not None:
            restored = mgr.restore_latest(state)
            if restored is not None:
                print(f"rank {rank} attempt {attempt}: resumed from step {restored}", flush=True)
        last = None
        for step in range(state["step"] + 1, args.steps + 1):
            if step == args.crash_at_step and attempt == 0 and rank == 1:
                if last is not None:
                    last.result(timeout=120)  # the previous save has committed: the resume point is known
                print(f"rank {rank}: crashing on purpose at step {step}", flush=True)
                os._exit(3)
            x, y = batch(step, rank, world)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            state["step"] = step
            if mgr is not None and mgr.save_due(step):
                last = mgr.save(step, state, metadata={"loss": float(loss)})
        if mgr is not None:
            mgr.wait_until_finished()
        digest = checksum(model, opt)
        if rank == 0:
            print(f"CHECKSUM {digest}", flush=True)
    finally:
        if mgr is not None:
            mgr.close()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
