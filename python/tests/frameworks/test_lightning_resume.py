"""Issue 18 item 3: Lightning 2.6 with ``cairn.torch.lightning``. A real 2-process DDP run on CPU
(Trainer(strategy="ddp", devices=2), ModelCheckpoint every 5 steps + last) saves through
``CairnCheckpointIO`` (one Cairn worker: Lightning's rank 0 writes); both processes are SIGKILLed
at step 12; a new run with ``AsyncCairnCheckpointIO`` and ``fit(ckpt_path="last")`` starts at
global step 10 with the weights and LR schedule of step 10 exactly, and saves on. Plus the encoding
of non-tensor values (in-process)."""

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import real_cluster
from real_cluster import coordinator, until
from support import require

HERE = Path(__file__).resolve().parent
WORKER = HERE / "lightning_worker.py"
RUN = "lightning"


def _launch(out: Path, mode: str, address: str) -> subprocess.Popen:
    env = {**os.environ, "CAIRN_COORDINATOR": address, "CAIRN_RUN_ID": RUN, "OMP_NUM_THREADS": "1",
           "CAIRN_JAVA_OPTS": "-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1", "MASTER_PORT": str(real_cluster.free_port()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE.parent)])}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK"):
        env.pop(k, None)
    return subprocess.Popen([sys.executable, str(WORKER), str(out), mode], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _committed(storage: Path) -> list:
    return sorted(int(p.stem) for p in (storage / "manifests").glob("*.json")) if (storage / "manifests").is_dir() else []


@pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")
@pytest.mark.timeout(900)
def test_lightning_ddp_killed_resumes_from_last(tmp_path):
    require("lightning.pytorch")
    import torch

    with coordinator(tmp_path, 1, RUN) as (address, storage):
        first = _launch(tmp_path, "first", address)
        try:
            until(lambda: (tmp_path / "at12").exists() or first.poll() is not None, 400, "step 12 of the first run")
            assert first.poll() is None, first.communicate()[0][-4000:]
            pids = [int((tmp_path / f"pid.first.{r}").read_text()) for r in (0, 1)]
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        finally:
            if first.poll() is None:
                first.kill()
            output = first.communicate(timeout=60)[0]
        assert first.returncode == -signal.SIGKILL, output[-3000:]
        until(lambda: not list(Path("/dev/shm").glob(f"cairn-{RUN}-*")), 60, "the killed run's sidecar to exit")
        assert _committed(storage) == [5, 10]
        ckpt = tmp_path / "ckpt"
        markers = {p.name: json.loads(p.read_text()) for p in ckpt.glob("*.ckpt")}
        assert markers["last.ckpt"] == {"format": "cairn-lightning/1", "run_id": RUN, "step": 10}, markers
        assert markers["epoch=0-step=10.ckpt"]["step"] == 10 and markers["epoch=0-step=5.ckpt"]["step"] == 5

        second = _launch(tmp_path, "resume", address)
        output = second.communicate(timeout=400)[0]
        assert second.returncode == 0, output[-4000:]
        assert _committed(storage) == [5, 10, 15]
        assert json.loads((ckpt / "last.ckpt").read_text())["step"] == 15

    saved = torch.load(tmp_path / "step10.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert resumed["global_step"] == 10
    assert resumed["lr"] == saved["lr"] == 0.05 * 0.5 ** 2  # StepLR(4, 0.5) after 10 steps: scheduler restored
    assert set(resumed["weights"]) == set(saved["weights"])
    for name, t in saved["weights"].items():
        assert torch.equal(resumed["weights"][name], t), name


def test_encoding_keeps_json_and_tensors_and_loads_other_objects_weights_only():
    require("lightning.pytorch")
    import torch

    from cairn.torch.lightning import PICKLED, decode, encode

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    ckpt = {"epoch": 1, "global_step": 7, "state_dict": {"w": torch.arange(4.0)}, "loops": {"a": [1, (2.5, None)]},
            "hyper_parameters": {"tag": argparse.Namespace(x=1)}, "keys": {(1, 2): "tuple key"}, "inf": float("inf")}
    enc = encode(ckpt)
    assert enc["loops"] == ckpt["loops"] and enc["state_dict"]["w"] is not None and enc["inf"] == float("inf")
    assert set(enc["keys"]) == {PICKLED}  # a dict with tuple keys: torch.save bytes
    assert set(enc["hyper_parameters"]["tag"]) == {PICKLED}
    torch.serialization.add_safe_globals([argparse.Namespace])
    dec = decode(enc)
    assert dec["hyper_parameters"]["tag"] == argparse.Namespace(x=1) and dec["keys"] == {(1, 2): "tuple key"}
    assert torch.equal(dec["state_dict"]["w"], torch.arange(4.0)) and dec["loops"] == ckpt["loops"]
    with pytest.raises(Exception, match="(?i)weights_only|unsupported global"):
        decode(encode({"x": Evil()}))
