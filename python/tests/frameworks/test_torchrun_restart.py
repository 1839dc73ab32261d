"""Issue 18 item 4: examples/torchrun/train.py (FSDP2 + Adam, 2 ranks) launched by the real
``torchrun --standalone --nproc-per-node 2 --max-restarts 1``, no rank arguments (rank and world
size from torchrun's environment through ``cairn.torch.manager``). Rank 1 exits with an error at
step 6 of the first attempt, after the save of step 4 committed; torchrun restarts both ranks, they
resume from step 4 (each with a new sidecar), finish, and end with the gathered parameters and
optimizer state bit-identical to an uninterrupted run's. The restarted ranks rendezvous through
``cairn.torch.init_process_group`` (a per-attempt store prefix): with the plain
``init_process_group`` they read the dead ranks' gloo addresses from torchrun's reused store and
failed to connect (``Gloo connectFullMesh failed ... Connection refused``), and the SIGTERM torchrun
then sent was taken for a preemption: the job hung."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import real_cluster
from real_cluster import coordinator
from support import require

EXAMPLE = real_cluster.REPO / "examples" / "torchrun" / "train.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
STEPS, EVERY, CRASH = 12, 4, 6
RUN = "torchrun"

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


def _torchrun(tmp_path: Path, env_extra: dict, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra,
           "CAIRN_JAVA_OPTS": "-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    p = subprocess.run([*TORCHRUN, "--standalone", "--nproc-per-node", "2", *args], env=env, cwd=tmp_path,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=400)
    assert p.returncode == 0, p.stdout[-5000:]
    return p.stdout


def _checksum(output: str) -> str:
    sums = re.findall(r"CHECKSUM ([0-9a-f]{64})", output)
    assert len(sums) == 1, output[-3000:]
    return sums[0]


@pytest.mark.timeout(900)
def test_torchrun_max_restarts_resumes_from_latest_committed(tmp_path):
    require("torch.distributed.fsdp")
    reference = _checksum(_torchrun(tmp_path, {}, str(EXAMPLE), "--steps", str(STEPS), "--no-cairn"))
    with coordinator(tmp_path, 2, RUN, "--save-every-steps", str(EVERY)) as (address, storage):
        output = _torchrun(tmp_path, {"CAIRN_COORDINATOR": address, "CAIRN_RUN_ID": RUN}, "--max-restarts", "1",
                           str(EXAMPLE), "--steps", str(STEPS), "--crash-at-step", str(CRASH))
        committed = sorted(int(m.stem) for m in (storage / "manifests").glob("*.json"))
    assert output.count(f"rank 1: crashing on purpose at step {CRASH}") == 1, output[-4000:]
    # both ranks print to torchrun's stdout: lines may interleave
    resumed = sorted(re.findall(r"rank (\d+) attempt (\d+): resumed from step (\d+)", output))
    assert resumed == [("0", "1", "4"), ("1", "1", "4")], output[-4000:]
    assert committed == [4, 8, 12], committed
    assert _checksum(output) == reference
