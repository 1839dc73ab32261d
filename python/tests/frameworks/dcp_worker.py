"""One rank of the DCP tests (test_dcp.py): an FSDP2 model (fully_shard on a CPU device mesh, gloo)
with Adam, saved and loaded with torch.distributed.checkpoint through cairn.torch.dcp's writer and
reader, each rank with its own sidecar (started by the package, or attached to with --sidecar).

    python dcp_worker.py '<json spec>'

The spec: address, run_id, rank, world, port (the gloo rendezvous), out (a directory for the
reference files), sidecar (optional socket path) and actions, each a dict with "op":
  train_save  {"step", "train", "async", "expect_failure"}: train ``train`` more steps, save through
              the writer at checkpoint_id "step-<step>" (dcp.async_save with its own gloo group when
              async); the gathered full state is written to out/ref-<step>.pt by rank 0. With
              expect_failure, the save's exception is reported ("failed") instead of raised
  load        {"step" (None: the latest), "ref"}: a freshly initialized model loads through the
              reader; its gathered full state must equal out/ref-<ref>.pt exactly
  restore_plain {"step", "ref"}: CheckpointManager.restore into plain full-size tensors named as the
              writer names them; they must equal the reference
  cm_save_fsdp {"step", "train"}: train more, CheckpointManager.save of the FSDP2 model's and
              Adam's state dicts (DTensors), reference written as for train_save
  cm_restore_fsdp {"step", "ref"}: CheckpointManager.restore into a fresh model's DTensors
  load's "tensors_only": load the model and optimizer state but not DCP's param groups
  cm_save     {"step"}: CheckpointManager.save of a cairn.Shard piece, a mirrored tensor and a scalar
  cm_load     {"step"}: dcp.load of that into a plain full tensor, a DTensor and a scalar
The last stdout line is a JSON report.
"""

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the cairn package

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.distributed.checkpoint as dcp  # noqa: E402
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.fsdp import fully_shard  # noqa: E402
from torch.distributed.tensor import DTensor, Shard as DShard, distribute_tensor  # noqa: E402

import cairn  # noqa: E402
from cairn.torch.dcp import CairnStorageReader, CairnStorageWriter  # noqa: E402

CM_GLOBAL = (8, 6)  # the CheckpointManager-saved tensor split by rows across the ranks


def build(seed: int, mesh):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def train(model, opt, rank: int, start: int, steps: int) -> None:
    for step in range(start, start + steps):
        g = torch.Generator().manual_seed(1000 * step + rank)
        loss = model(torch.randn(8, 16, generator=g)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


def full_state(model, opt) -> dict:
    m, o = get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True))
    return {"model": m, "optim": o}


def diff(a, b, path="") -> list:
    """The key paths where a and b differ (tensors compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"]
        return [d for k in a for d in diff(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}/{i}")]
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ok = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
              and a.shape == b.shape and torch.equal(a, b))
        return [] if ok else [f"{path}: tensors differ"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> None:
    spec = json.loads(sys.argv[1])
    rank, world, out = spec["rank"], spec["world"], Path(spec["out"])
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{spec['port']}")
    mesh = init_device_mesh("cpu", (world,))
    async_group = dist.new_group(backend="gloo")  # dcp.async_save's own group (see docs/python.md)
    mgr = cairn.CheckpointManager(spec["address"], spec["run_id"], rank, world, staging_mib=16,
                                  sidecar=spec.get("sidecar"))
    report = {"rank": rank, "loads": [], "saved": [], "failed": None}
    model, opt = build(0, mesh)
    trained = 0
    for action in spec["actions"]:
        op = action["op"]
        if op == "train_save":
            train(model, opt, rank, trained, action["train"])
            trained += action["train"]
            model_sd, optim_sd = get_state_dict(model, opt)
            sd = {"model": model_sd, "optim": optim_sd}
            if rank == 0:
                torch.save(full_state(model, opt), out / f"ref-{action['step']}.pt")
            else:
                full_state(model, opt)  # the gather is a collective
            writer = CairnStorageWriter(mgr)
            print(f"saving step {action['step']}", flush=True)
            started = time.perf_counter()
            try:
                if action.get("async"):
                    future = dcp.async_save(sd, checkpoint_id=f"step-{action['step']}", storage_writer=writer,
                                            process_group=async_group)
                    train(model, opt, rank, 10_000, 1)  # training goes on while the save uploads (a copy was staged)
                    future.result(timeout=120)
                else:
                    dcp.save(sd, checkpoint_id=f"step-{action['step']}", storage_writer=writer)
            except BaseException as e:  # DCP's CheckpointException is a BaseException
                if not action.get("expect_failure"):
                    raise
                failures = {str(r): [type(f[0]).__name__, getattr(f[0], "reason", None)]
                            for r, f in getattr(e, "failures", {}).items()}
                report["failed"] = {"step": action["step"], "type": type(e).__name__, "failures": failures}
                continue
            assert writer.last_committed == action["step"], writer.last_committed
            report["saved"].append({"step": action["step"], "s": round(time.perf_counter() - started, 3)})
        elif op == "load":
            fresh, fresh_opt = build(123, mesh)
            model_sd, optim_sd = get_state_dict(fresh, fresh_opt)
            sd = {"model": model_sd, "optim": optim_sd}
            if action.get("tensors_only"):  # a CheckpointManager-saved run without DCP's param groups
                sd = {"model": model_sd, "optim": {"state": optim_sd["state"]}}
            reader = CairnStorageReader(mgr)
            started = time.perf_counter()
            if action.get("step") is None:
                dcp.load(sd, storage_reader=reader)
            else:
                dcp.load(sd, checkpoint_id=f"step-{action['step']}", storage_reader=reader)
            seconds = time.perf_counter() - started
            set_state_dict(fresh, fresh_opt, model_state_dict=sd["model"],
                           optim_state_dict={**optim_sd, **sd["optim"]})
            problems = diff(full_state(fresh, fresh_opt), torch.load(out / f"ref-{action['ref']}.pt", weights_only=False))
            report["loads"].append({"step": reader._plan["cairn_step"], "problems": problems[:5], "s": round(seconds, 3),
                                    "bytes_read": reader.last_restore_stats.bytes_read})
        elif op == "restore_plain":
            ref = torch.load(out / f"ref-{action['ref']}.pt", weights_only=False)
            state = {"model": {k: torch.zeros_like(v) for k, v in ref["model"].items()},
                     "optim": {"state": {p: {k: torch.zeros_like(v) for k, v in s.items()}
                                         for p, s in ref["optim"]["state"].items()}}}
            step = mgr.restore(action["step"], state)
            problems = diff(state["model"], ref["model"]) + diff(state["optim"]["state"], ref["optim"]["state"])
            report["loads"].append({"step": step, "problems": problems[:5], "plain": True})
        elif op == "cm_save_fsdp":
            # the same kind of state saved with CheckpointManager: DTensor pieces, plain step tensors
            # marked mirrored (identical on every rank)
            train(model, opt, rank, trained, action["train"])
            trained += action["train"]
            model_sd, optim_sd = get_state_dict(model, opt)
            state = {"model": model_sd, "optim": {"state": {
                p: {k: v if isinstance(v, DTensor) else cairn.replicated(v) for k, v in st.items()}
                for p, st in optim_sd["state"].items()}}}
            ref = full_state(model, opt)
            if rank == 0:
                torch.save(ref, out / f"ref-{action['step']}.pt")
            assert mgr.save(action["step"], state).result(timeout=120) == action["step"]
            report["saved"].append({"step": action["step"], "cm": True})
        elif op == "cm_restore_fsdp":
            # CheckpointManager.restore into a fresh FSDP2 model's DTensors, whoever wrote the run
            fresh, fresh_opt = build(123, mesh)
            model_sd, optim_sd = get_state_dict(fresh, fresh_opt)
            state = {"model": model_sd, "optim": {"state": optim_sd["state"]}}
            step = mgr.restore(action["step"], state)
            set_state_dict(fresh, fresh_opt, model_state_dict=state["model"], optim_state_dict=optim_sd)
            problems = diff(full_state(fresh, fresh_opt), torch.load(out / f"ref-{action['ref']}.pt", weights_only=False))
            report["loads"].append({"step": step, "problems": problems[:5], "dtensor": True})
        elif op == "cm_save":
            rows = CM_GLOBAL[0] // world
            full = torch.arange(CM_GLOBAL[0] * CM_GLOBAL[1], dtype=torch.float32).reshape(CM_GLOBAL) / 7
            state = {"cm": {"w": cairn.Shard(full[rank * rows:(rank + 1) * rows].clone(), CM_GLOBAL, (rank * rows, 0)),
                            "b": cairn.replicated(torch.linspace(0, 1, 5, dtype=torch.float64)),
                            "step": cairn.replicated(action["step"])}}
            assert mgr.save(action["step"], state).result(timeout=120) == action["step"]
            report["saved"].append({"step": action["step"], "cm": True})
        elif op == "cm_load":
            full = torch.arange(CM_GLOBAL[0] * CM_GLOBAL[1], dtype=torch.float32).reshape(CM_GLOBAL) / 7
            sd = {"cm": {"w": torch.zeros(CM_GLOBAL), "b": torch.zeros(5, dtype=torch.float64), "step": -1},
                  "dt": {"w": distribute_tensor(torch.zeros(CM_GLOBAL), mesh, [DShard(0)])}}
            reader = CairnStorageReader(mgr)
            dcp.load({"cm": sd["cm"]}, checkpoint_id=f"step-{action['step']}", storage_reader=reader)
            # the same global tensor into this rank's DTensor piece (its row block only)
            dcp.load({"cm": {"w": sd["dt"]["w"]}}, checkpoint_id=f"step-{action['step']}",
                     storage_reader=CairnStorageReader(mgr))
            local = sd["dt"]["w"].to_local()
            rows = local.shape[0]
            problems = diff(sd["cm"]["w"], full) + diff(sd["cm"]["b"], torch.linspace(0, 1, 5, dtype=torch.float64))
            problems += diff(sd["cm"]["step"], action["step"])
            problems += diff(local, full[rank * rows:(rank + 1) * rows])
            assert isinstance(sd["dt"]["w"], DTensor)
            report["loads"].append({"step": action["step"], "problems": problems[:5], "cm": True})
    mgr.close()
    dist.destroy_process_group()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
