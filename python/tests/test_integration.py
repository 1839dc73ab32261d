"""The package against the real sidecar (``cairn agent`` from cli/target/cairn.jar) and a real
coordinator on local storage. Skipped, with the reason shown, when the jar or its ``agent``
subcommand is missing."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cairn

import real_cluster
from real_cluster import REPO, JAR, until as _until

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


@pytest.fixture
def coordinator(tmp_path, request):
    world = getattr(request, "param", 1)
    with real_cluster.coordinator(tmp_path, world, "py-run", "--barrier-timeout-s", "30") as (address, _):
        yield address, world


def _manager(address, rank, world, **kwargs):
    os.environ["CAIRN_JAR"] = str(JAR)
    return cairn.CheckpointManager(address, run_id="py-run", rank=rank, world_size=world, handle_sigterm=False, **kwargs)


def test_save_and_restore_through_the_real_sidecar(coordinator):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    address, world = coordinator
    with _manager(address, 0, world, staging_mib=64) as mgr:
        assert mgr.restore_latest({"x": 0}) is None
        model = torch.nn.Linear(8, 4)
        state = {"model": model, "w": np.arange(10, dtype=np.float64), "epoch": 2}
        assert mgr.save(5, state, metadata={"loss": 0.5}).result(60) == 5
        assert mgr.save(6, state).result(60) == 6
        assert mgr.latest_step() == 6 and mgr.all_steps() == [5, 6]
    with _manager(address, 0, world) as mgr:
        target = {"model": torch.nn.Linear(8, 4), "w": np.zeros(10), "epoch": 0}
        assert mgr.restore_latest(target) == 6
        assert torch.equal(target["model"].weight, model.weight) and target["w"].tolist() == list(range(10))
        with pytest.raises(cairn.RestoreError, match=r"entry 'w': checkpoint has float64\[10\], state has float32\[10\]"):
            mgr.restore_latest({"w": np.zeros(10, np.float32)}, partial=True)


@pytest.mark.parametrize("coordinator", [2], indirect=True)
def test_mirrored_save_by_two_workers_restores_on_both(coordinator, tmp_path):
    np = pytest.importorskip("numpy")
    address, world = coordinator
    state = {"w": np.arange(1 << 16, dtype=np.float32), "b": np.ones(7)}
    managers = [None, None]
    results = [None, None]

    def run(rank):
        managers[rank] = _manager(address, rank, world, mirrored=True)
        results[rank] = managers[rank].save(1, state).result(60)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert results == [1, 1]
    # written once, split by bytes across both workers (docs/architecture.md)
    total = state["w"].nbytes + state["b"].nbytes
    shards = sorted((tmp_path / "store-py-run").glob("data/*/shard-*.bin"))  # real_cluster.coordinator's root
    assert len(shards) == world
    assert sum(p.stat().st_size for p in shards) == total
    assert max(p.stat().st_size for p in shards) <= -(-total // world)
    for mgr in managers:
        target = {"w": np.zeros(1 << 16, np.float32), "b": np.zeros(7)}
        assert mgr.restore_latest(target) == 1
        assert (target["w"] == state["w"]).all() and (target["b"] == 1).all()
        mgr.close()


def test_when_the_sidecar_is_killed_saves_fail_and_training_goes_on(coordinator):
    address, world = coordinator
    mgr = _manager(address, 0, world)
    shm = mgr._process.shm_path()
    assert shm is not None and os.path.exists(shm)
    mgr._process.process.send_signal(signal.SIGKILL)
    _until(lambda: not mgr.sidecar_alive, what="the connection to drop")
    with pytest.raises(cairn.SidecarError, match="cairn sidecar at .*agent.sock"):
        mgr.save(1, {"x": 1}).result(30)
    assert mgr.save_due(2) is False
    assert os.path.exists(shm)  # the killed sidecar could not delete it
    mgr.reconnect()
    assert not os.path.exists(shm), "the dead sidecar's staging file (tmpfs memory) must be removed"
    assert mgr.save(3, {"x": 1}).result(60) == 3
    mgr.close()


def test_when_the_trainer_dies_the_sidecar_exits(coordinator, tmp_path):
    address, world = coordinator
    script = (f"import os, sys; sys.path.insert(0, {str(REPO / 'python')!r}); import cairn;"
              f"m = cairn.CheckpointManager({address!r}, run_id='py-run', rank=0, world_size={world});"
              "print(m._process.process.pid, flush=True); os.kill(os.getpid(), 9)")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "CAIRN_JAR": str(JAR)})
    assert child.returncode == -9, child.stderr
    sidecar_pid = int(child.stdout.split()[0])
    _until(lambda: not Path(f"/proc/{sidecar_pid}").exists()
           or Path(f"/proc/{sidecar_pid}/stat").read_text().split()[2] == "Z", what=f"sidecar {sidecar_pid} to exit")
