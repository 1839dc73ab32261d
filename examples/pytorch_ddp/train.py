#!/usr/bin/env python3
"""A small real DDP run (gloo, CPU) that checkpoints through Cairn and resumes bit-identically.

Each rank trains an MLP on its slice of a deterministic synthetic regression set; the whole state
(model, optimizer, LR schedule, the RNG that drives dropout, the step) is the same on every rank,
so each rank's CheckpointManager is ``mirrored=True`` and a save is written once, split across
ranks. The coordinator's step policy decides when to save (``save_due``).

One process per rank (what a launcher or a test does; one rank can be SIGKILLed):

    RANK=0 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
        python3 train.py --coordinator 127.0.0.1:7400 --run-id ddp --steps 60

or all ranks from one command: ``python3 train.py --spawn 3 --coordinator ...``.
``--no-cairn`` trains without checkpoints (the uninterrupted reference). The last line printed by
rank 0 is ``CHECKSUM <sha256 of every parameter and optimizer tensor>``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import cairn  # noqa: E402

SAMPLES, FEATURES, BATCH = 3072, 32, 32


def dataset(seed: int):
    """A fixed synthetic regression set: y = tanh(X @ w) + noise, the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SAMPLES, FEATURES, generator=g)
    w = torch.randn(FEATURES, 1, generator=g)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(SAMPLES, 1, generator=g)
    return x, y


def batch_indices(step: int, rank: int, world: int, seed: int) -> torch.Tensor:
    """Rank ``rank``'s batch at ``step`` (1-based): each epoch is a permutation seeded by the
    epoch number, so the data order depends only on the step, never on where a run resumed."""
    per_epoch = SAMPLES // (BATCH * world)
    epoch, pos = divmod(step - 1, per_epoch)
    order = torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    start = (pos * world + rank) * BATCH
    return order[start:start + BATCH]


def checksum(model: torch.nn.Module, opt: torch.optim.Optimizer) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    for index, per_param in sorted(opt.state_dict()["state"].items()):
        for name, t in sorted(per_param.items()):
            h.update(f"{index}/{name}".encode())
            h.update(t.detach().contiguous().numpy().tobytes() if torch.is_tensor(t) else repr(t).encode())
    return h.hexdigest()


def warm_up_buckets(ddp: DDP, model: torch.nn.Module, x: torch.Tensor) -> None:
    """One zero-gradient pass (dropout off, so no RNG is drawn). DDP lays its gradient buckets out
    again, in gradient-ready order, after the first backward pass; the element order in a bucket
    decides the summation order of the all-reduce. Without this pass a resumed run's first step
    would reduce with the initial layout where the uninterrupted run used the rebuilt one, and the
    runs would differ in the last bits."""
    model.eval()
    ddp(x[:1]).sum().mul(0.0).backward()
    model.train()
    for p in model.parameters():
        p.grad = None


def train(rank: int, world: int, args: argparse.Namespace) -> None:
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(args.seed)  # the same on every rank: dropout masks (and the RNG state) are mirrored
    torch.use_deterministic_algorithms(True)
    x, y = dataset(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    ddp = DDP(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.7)
    state = {"model": model, "opt": opt, "sched": sched, "rng": torch.default_generator, "step": 0}

    mgr = None
    if not args.no_cairn:
        mgr = cairn.CheckpointManager(args.coordinator, run_id=args.run_id, rank=rank, world_size=world,
                                      token=args.token, mirrored=True, staging_mib=args.staging_mib,
                                      sidecar=os.path.join(args.sidecar_dir, f"rank{rank}.sock") if args.sidecar_dir else None)
        restored = mgr.restore_latest(state)
        if restored is not None:
            print(f"rank {rank}: resumed from step {restored}", flush=True)
    warm_up_buckets(ddp, model, x)
    try:
        for step in range(state["step"] + 1, args.steps + 1):
            idx = batch_indices(step, rank, world, args.seed)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(ddp(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            state["step"] = step
            if mgr is not None and mgr.save_due(step):
                future = mgr.save(step, state, metadata={"loss": float(loss)})
                if mgr.preempted:  # SIGTERM: this save is the emergency save; wait for it, then leave
                    print(f"rank {rank}: preempted, saved step {future.result()}", flush=True)
                    sys.exit(143)
            if rank == 0 and step % 20 == 0:
                print(f"step {step} loss {float(loss):.6f}", flush=True)
        if mgr is not None:
            mgr.wait_until_finished()
        digest = checksum(model, opt)
        if args.checksum_file:
            with open(f"{args.checksum_file}.{rank}", "w") as f:
                f.write(digest + "\n")
        if rank == 0:
            print(f"CHECKSUM {digest}", flush=True)
    finally:
        if mgr is not None:
            mgr.close()
        dist.destroy_process_group()


def _spawned(rank: int, world: int, args: argparse.Namespace) -> None:
    train(rank, world, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coordinator", default="127.0.0.1:7400", help="the coordinator's host:port")
    p.add_argument("--run-id", default="ddp-example")
    p.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--staging-mib", type=int, default=64)
    p.add_argument("--sidecar-dir", help="attach to running sidecars at DIR/rank<r>.sock instead of starting them")
    p.add_argument("--spawn", type=int, metavar="N", help="start N ranks here (torch.multiprocessing)")
    p.add_argument("--no-cairn", action="store_true", help="train without checkpoints (the reference run)")
    p.add_argument("--checksum-file", help="also write each rank's checksum to FILE.<rank>")
    args = p.parse_args()
    if args.spawn:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        mp.spawn(_spawned, args=(args.spawn, args), nprocs=args.spawn, join=True)
    else:
        train(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args)


if __name__ == "__main__":
    main()
