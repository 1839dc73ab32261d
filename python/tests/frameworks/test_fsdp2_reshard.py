"""Issue 18 item 1/5: an FSDP2 (``fully_shard``) MLP + Adam trained on 2 real ranks (gloo, CPU) is
saved through ``CheckpointManager`` as ``cairn.torch.AppState``; the coordinator is restarted with
``--world 3`` and then ``--world 1`` on the same storage, and the gathered parameters and optimizer
state (``full_state_dict``) of the restored FSDP2 models on 3 ranks, on 1 rank, and of a plain
unsharded model + Adam on 1 rank equal the saved ones exactly (torch.equal, dtype, ``step``,
param-group options). A DTensor whose local shape disagrees with its placements is refused, on
save and on restore, naming the entry. Plus in-process checks of the strided layout arithmetic."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import real_cluster
from real_cluster import coordinator
from support import require

HERE = Path(__file__).resolve().parent
WORKER = HERE / "fsdp2_worker.py"
RUN = "fsdp2"

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


def _ranks(world: int, address: str, *args: str, timeout: float = 240, run: str = RUN, mesh: str = "") -> None:
    port = real_cluster.free_port()
    env_base = {**os.environ, "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                "CAIRN_COORDINATOR": address, "CAIRN_RUN_ID": run, "OMP_NUM_THREADS": "1", "FSDP2_MESH": mesh or str(world),
                "CAIRN_JAVA_OPTS": "-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
                "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE.parent)])}
    procs = [subprocess.Popen([sys.executable, str(WORKER), *args], env={**env_base, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(world)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    failed = [f"rank {r} (exit {p.returncode}):\n" + "\n".join(l for l in out.splitlines() if "File " not in l)[-2500:]
              for r, (p, out) in enumerate(zip(procs, outputs)) if p.returncode != 0]
    assert not failed, "\n".join(failed)
    # each rank's sidecar exits with its trainer and removes its staging file
    real_cluster.until(lambda: not list(Path("/dev/shm").glob(f"cairn-{run}-*")), 60, "the sidecars' staging files to go")


@pytest.mark.timeout(900)
def test_fsdp2_adam_saved_on_2_restores_exactly_on_3_and_1(tmp_path):
    require("torch.distributed.fsdp")
    saved = tmp_path / "saved.pt"
    with coordinator(tmp_path, 2, RUN) as (address, storage):
        _ranks(2, address, "save", str(saved))
    import torch

    blob = torch.load(saved, weights_only=True)
    assert blob["committed"] == 3
    assert blob["placements"]["0.weight"] == ["S(0)"], blob["placements"]
    manifests = [m for m in (storage / "manifests").glob("*.json") if int(m.stem) == 3]
    assert len(manifests) == 1, "step 3 must have committed"
    manifest = json.loads(manifests[0].read_text())
    reports = {}
    with coordinator(tmp_path, 3, RUN) as (address, _):
        _ranks(3, address, "restore", str(saved), str(tmp_path / "r3.json"))
    reports[3] = json.loads((tmp_path / "r3.json").read_text())
    with coordinator(tmp_path, 1, RUN) as (address, _):
        _ranks(1, address, "restore", str(saved), str(tmp_path / "r1.json"))
        _ranks(1, address, "restore", str(saved), str(tmp_path / "r1plain.json"), "plain")
    reports[1] = json.loads((tmp_path / "r1.json").read_text())
    plain = json.loads((tmp_path / "r1plain.json").read_text())
    for world, report in [(3, reports[3]), (1, reports[1]), ("1 plain", plain)]:
        assert report["differs_before"] > 0, f"{world}: the fresh model must differ from the saved one"
        assert report["restored_step"] == 3 and report["step_leaf"] == 3, (world, report)
        assert report["differs_after"] == [], (world, report["differs_after"])
        assert report["regions"] > 0, f"{world}: another layout must be read through restore_region: {report}"
    for world in (3, 1):
        assert reports[world]["plain_dict"] == [4, []], reports[world]["plain_dict"]  # zeroed, then equal again
        assert report_line(reports[world]["bad_save"]) == ("UnsupportedLeaf", "entry 'app/model/0.weight'")
        assert report_line(reports[world]["bad_restore"]) == ("RestoreError", "entry 'app/model/0.weight'")
        assert "disagrees with its placements" in reports[world]["bad_restore"]
    # one piece per saving rank, each with its place in the global tensor; mirrored state once
    pieces = [e for e in manifest["entries"] if e["name"] == "app/model/0.weight"]
    assert sorted((e["worker"], tuple(e["globalOffsets"])) for e in pieces) == [(0, (0, 0)), (1, (16, 0))], pieces
    assert all(e["globalShape"] == [32, 16] and e["shape"] == [16, 16] for e in pieces), pieces
    assert all(e.get("replicated") for e in manifest["entries"] if e["name"] == "app/optim/state/0.weight/step")


@pytest.mark.timeout(600)
def test_hsdp_replicas_store_a_piece_once_and_restore_on_1(tmp_path):
    """HSDP: fully_shard on a (replicate=2, shard=1) mesh gives (Replicate(), Shard(0)) DTensors
    of which both ranks hold the same piece; only the rank at replicate coordinate 0 writes it (the
    manifest has each parameter once, from worker 0, and the coordinator commits a worker with no
    piece of it); 1 rank on a 1-D mesh restores everything exactly."""
    require("torch.distributed.fsdp")
    saved = tmp_path / "saved.pt"
    with coordinator(tmp_path, 2, "hsdp") as (address, storage):
        _ranks(2, address, "save", str(saved), run="hsdp", mesh="2,1")
    import torch

    blob = torch.load(saved, weights_only=True)
    assert blob["placements"]["0.weight"] == ["R", "S(0)"], blob["placements"]
    manifest = json.loads(next((storage / "manifests").glob("*.json")).read_text())
    pieces = [e for e in manifest["entries"] if e["name"] in ("app/model/0.weight", "app/optim/state/0.weight/exp_avg")]
    assert [(e["worker"], e["shape"], e["globalOffsets"]) for e in pieces] == [(0, [32, 16], [0, 0])] * 2, pieces
    with coordinator(tmp_path, 1, "hsdp") as (address, _):
        _ranks(1, address, "restore", str(saved), str(tmp_path / "r1.json"), run="hsdp")
    report = json.loads((tmp_path / "r1.json").read_text())
    assert report["differs_before"] > 0 and report["restored_step"] == 3, report
    assert report["differs_after"] == [] and report["plain_dict"][1] == [], report


def report_line(text: str):
    kind, _, message = text.partition(": ")
    return kind, message.split(":")[0]


def test_strided_layouts_match_torch_offsets_and_non_boxes_are_refused():
    """The per-dimension index arithmetic (used for _StridedShard, as FSDP2 + TP produce) gives the
    offsets torch's own _compute_local_shape_and_global_offset gives, on every coordinate of a 2x2
    mesh; a layout whose local piece is not one box is detected."""
    require("torch.distributed.tensor")
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset
    from torch.distributed.tensor.placement_types import _StridedShard

    from cairn.torch._dtensor import _dim_indices, _runs

    boxes = 0
    for placements in [(_StridedShard(0, split_factor=2), Shard(0)), (Shard(0), Shard(1)), (Replicate(), Shard(1)),
                       (_StridedShard(1, split_factor=2), Shard(1)), (Shard(0), _StridedShard(0, split_factor=2))]:
        for coord in [(0, 0), (0, 1), (1, 0), (1, 1)]:
            indices = _dim_indices((10, 6), (2, 2), coord, placements)
            shape, offsets = _compute_local_shape_and_global_offset((10, 6), (2, 2), list(coord), placements)
            assert tuple(len(ix) for ix in indices) == tuple(shape), (placements, coord)
            assert tuple(ix[0] for ix in indices) == tuple(offsets), (placements, coord)
            if all(len(_runs(ix)) == 1 for ix in indices):
                boxes += 1
            else:
                assert placements[1] == _StridedShard(0, split_factor=2), (placements, coord, indices)
    assert boxes == 16  # every layout but (Shard(0), _StridedShard(0)) is one box on every coordinate


class _FakeMesh:
    def __init__(self, shape, coordinate):
        self.shape, self._coordinate = tuple(shape), coordinate

    def get_coordinate(self):
        return self._coordinate


class _FakeDTensor:
    """What cairn.torch._dtensor reads of a DTensor: shape, placements, device_mesh, _local_tensor."""

    def __init__(self, global_shape, local_shape, mesh_shape, coordinate, placements):
        import torch

        self.shape = torch.Size(global_shape)
        self.placements = tuple(placements)
        self.device_mesh = _FakeMesh(mesh_shape, coordinate)
        self._local_tensor = torch.zeros(local_shape)


def test_hsdp_copies_are_written_once_and_bad_layouts_are_refused_naming_the_entry():
    """On a (replicate=2, shard=2) mesh (HSDP), only coordinate 0 of the replicate dimension
    writes a piece; both replicas get the same box. All-Replicate() is one mirrored entry of full
    shape. Partial(), a non-box strided layout and a wrong local shape are refused, naming the entry."""
    require("torch.distributed.tensor")
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    import cairn
    from cairn.torch._dtensor import piece

    hsdp = [Replicate(), Shard(0)]
    got = {c: piece("w", _FakeDTensor((10, 4), (5, 4), (2, 2), list(c), hsdp)) for c in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    assert {c: p.writes for c, p in got.items()} == {(0, 0): True, (0, 1): True, (1, 0): False, (1, 1): False}
    assert {c: p.shard.offsets for c, p in got.items()} == {(0, 0): (0, 0), (0, 1): (5, 0), (1, 0): (0, 0), (1, 1): (5, 0)}
    assert all(p.shard.global_shape == (10, 4) for p in got.values())
    rep = piece("b", _FakeDTensor((3,), (3,), (2,), [1], [Replicate()]))
    assert rep.shard is None and rep.writes  # a replicated entry: every rank describes it
    empty = piece("tiny", _FakeDTensor((2, 3), (0, 3), (3,), [2], [Shard(0)]))  # 2 rows on 3 ranks
    assert empty.writes and empty.shard.offsets == (2, 0) and tuple(empty.local.shape) == (0, 3)
    fsdp_tp = [_StridedShard(0, split_factor=2), Shard(0)]  # fully_shard over tensor parallelism on dim 0
    strided = {c: piece("w", _FakeDTensor((8, 6), (2, 6), (2, 2), list(c), fsdp_tp)).shard.offsets
               for c in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    assert strided == {(0, 0): (0, 0), (0, 1): (4, 0), (1, 0): (2, 0), (1, 1): (6, 0)}
    bad = [(_FakeDTensor((8, 6), (4, 6), (2,), [0], [Partial()]), "placement"),
           (_FakeDTensor((8, 6), (2, 6), (2, 2), [0, 0], [Shard(0), _StridedShard(0, split_factor=2)]), "not one box"),
           (_FakeDTensor((8, 6), (3, 6), (2,), [1], [Shard(0)]), "disagrees with its placements")]
    for t, words in bad:
        with pytest.raises(cairn.CairnError, match=f"^entry 'app/model/x': .*{words}"):
            piece("app/model/x", t)
