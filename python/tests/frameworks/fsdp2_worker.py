"""One rank of the FSDP2 tests (test_fsdp2_reshard.py), a real process: gloo on CPU, a 1-D device
mesh of WORLD_SIZE ranks, a real sidecar started by the package. Configured by the environment
(RANK, WORLD_SIZE, MASTER_ADDR/PORT as torchrun sets them; CAIRN_COORDINATOR, CAIRN_RUN_ID) and
argv: ``save OUT`` trains an FSDP2 MLP + Adam a few steps, saves ``AppState`` through Cairn and
writes the gathered full state to OUT (rank 0); ``restore EXPECTED OUT [plain]`` builds the model
from another seed, restores the latest checkpoint (as FSDP2, or ``plain``: an unsharded model and
optimizer on one rank) and writes to OUT (rank 0) a JSON report: what equals EXPECTED exactly, and
the one-line errors of a DTensor whose local shape disagrees with its placements."""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

import cairn
import cairn.torch

FULL = StateDictOptions(full_state_dict=True)


def build(seed: int, fsdp: bool, world: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5))
    mesh = None
    if fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        shape = tuple(int(n) for n in os.environ.get("FSDP2_MESH", str(world)).split(","))  # "2,1": HSDP
        mesh = init_device_mesh("cpu", shape, mesh_dim_names=("replicate", "shard") if len(shape) == 2 else ("shard",))
        for layer in (model[0], model[2]):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.01)
    return model, opt, mesh


def train(model, opt, steps: int, rank: int, world: int) -> None:
    g = torch.Generator().manual_seed(7)
    for _ in range(steps):
        x = torch.randn(8 * world, 16, generator=g)
        y = torch.randn(8 * world, 5, generator=g)
        lo = rank * 8
        loss = torch.nn.functional.mse_loss(model(x[lo:lo + 8]), y[lo:lo + 8])
        opt.zero_grad()
        loss.backward()
        opt.step()


def full_state(model, opt):
    """The gathered (plain, full) model and optimizer state dicts, as DCP's full_state_dict gives them."""
    model_sd, optim_sd = get_state_dict(model, opt, options=FULL)
    return {"model": model_sd, "optim": optim_sd}


def compare(expected, got, path="") -> list:
    """The key paths where ``got`` differs from ``expected`` (tensors by torch.equal and dtype)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(expected) != set(got):
            return [f"{path}: keys {sorted(map(str, expected))} != {sorted(map(str, got)) if isinstance(got, dict) else got!r}"]
        return [d for k in expected for d in compare(expected[k], got[k], f"{path}/{k}")]
    if isinstance(expected, (list, tuple)):
        if type(expected) is not type(got) or len(expected) != len(got):
            return [f"{path}: {expected!r} != {got!r}"]
        return [d for i, (a, b) in enumerate(zip(expected, got)) for d in compare(a, b, f"{path}/{i}")]
    if torch.is_tensor(expected):
        ok = torch.is_tensor(got) and got.dtype == expected.dtype and torch.equal(got, expected)
        return [] if ok else [f"{path}: tensors differ"]
    return [] if expected == got else [f"{path}: {expected!r} != {got!r}"]


def bad_dtensor(mesh, world: int):
    """A DTensor claiming global shape (32, 16) Shard(0) whose local piece has 3 rows."""
    from torch.distributed.tensor import DTensor, Shard

    return DTensor.from_local(torch.zeros(3, 16), mesh, [Shard(0)], run_check=False, shape=torch.Size((32, 16)),
                              stride=(16, 1))


def main() -> None:
    mode, rank, world = sys.argv[1], int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    plain = len(sys.argv) > 4 and sys.argv[4] == "plain"
    dist.init_process_group("gloo")
    try:
        if mode == "save":
            model, opt, _ = build(1, True, world)
            train(model, opt, 3, rank, world)
            with cairn.torch.manager(staging_mib=8, mirrored=True) as mgr:
                state = {"app": cairn.torch.AppState(model, opt), "step": 3}
                committed = mgr.save(3, state).result(timeout=120)
                kinds = {}
                for name, t in state["app"].state_dict()["model"].items():
                    kinds[name] = [str(p) for p in t.placements]
            full = full_state(model, opt)
            if rank == 0:
                torch.save({"state": full, "committed": committed, "placements": kinds}, sys.argv[2])
            return
        expected = torch.load(sys.argv[2], weights_only=True)["state"]
        model, opt, mesh = build(2, not plain, world)
        report = {}
        with cairn.torch.manager(staging_mib=8, mirrored=True) as mgr:
            state = {"app": cairn.torch.AppState(model, opt), "step": 0}
            before = compare(expected, full_state(model, opt))
            report["differs_before"] = len(before)
            report["restored_step"] = mgr.restore_latest(state)
            report["step_leaf"] = state["step"]
            report["bytes_read"] = mgr.last_restore_stats.bytes_read
            report["regions"] = mgr.last_restore_stats.regions
            if mesh is not None:
                # the same pieces restored as plain dict leaves (no AppState): get_model_state_dict's DTensors
                from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

                with torch.no_grad():
                    for p in model.parameters():
                        p.zero_()
                zeroed = len(compare(expected["model"], full_state(model, opt)["model"]))
                model_sd = get_model_state_dict(model)
                mgr.restore_latest({"app": {"model": model_sd}})
                set_model_state_dict(model, model_sd)
                report["plain_dict"] = [zeroed, compare(expected["model"], full_state(model, opt)["model"])]
                bad = bad_dtensor(mesh, world)
                for what, call in (("save", lambda: mgr.save(4, {"app": {"model": {"0.weight": bad}}})),
                                   ("restore", lambda: mgr.restore_latest({"app": {"model": {"0.weight": bad}}}))):
                    try:
                        call()
                        report[f"bad_{what}"] = "no error"
                    except cairn.CairnError as e:
                        report[f"bad_{what}"] = f"{type(e).__name__}: {e}"
        report["differs_after"] = compare(expected, full_state(model, opt))
        if rank == 0:
            with open(sys.argv[3], "w") as f:
                json.dump(report, f)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
