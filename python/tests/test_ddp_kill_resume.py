"""Issue #11 item 5: examples/pytorch_ddp/train.py on 3 ranks, each with its own real sidecar JVM
(-Xmx256m), and a real coordinator. Rank 1 is SIGKILLed (trainer and sidecar) while its sidecar is
in the middle of uploading the save of step 16 (the sidecar's ``--pause-at UPLOAD_HALFWAY@16``
prints ``EVENT paused`` and holds the upload there: the test waits for that line, not a time).
All ranks are restarted; they resume from step 8, the last committed save, and end with parameters
and optimizer state bit-identical to an uninterrupted run's."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import real_cluster
from real_cluster import AgentProcess, coordinator, until

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")

EXAMPLE = real_cluster.REPO / "examples" / "pytorch_ddp" / "train.py"
WORLD, STEPS, EVERY, KILLED_STEP, VICTIM = 3, 24, 8, 16, 1
RUN = "ddp-kill"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(EXAMPLE), "--steps", str(STEPS), "--checksum-file", str(out), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _checksums(out: Path) -> str:
    sums = {Path(f"{out}.{r}").read_text().strip() for r in range(WORLD)}
    assert len(sums) == 1, f"ranks disagree: {sums}"
    return sums.pop()


def _sidecars(tmp_path: Path, address: str, attempt: str, pause_victim: bool):
    agents = []
    for r in range(WORLD):
        extra = ["--staging-mib", "16"]
        if pause_victim and r == VICTIM:
            extra += ["--pause-at", f"UPLOAD_HALFWAY@{KILLED_STEP}"]
        agents.append(AgentProcess(address, RUN, r, WORLD, str(tmp_path / attempt / f"rank{r}.sock"),
                                   tmp_path / f"agent-{attempt}-{r}.log", *extra))
    for agent in agents:
        agent.wait_for("EVENT ready")
    return agents


def _committed(storage: Path) -> list:
    """The steps whose manifest the coordinator wrote (its commit point), ascending."""
    return sorted(int(p.stem) for p in (storage / "manifests").glob("*.json")) if (storage / "manifests").is_dir() else []


def test_a_rank_killed_mid_upload_resumes_bit_identical(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    reference = [_rank(r, port, tmp_path / "reference", "--no-cairn") for port in [_free_port()] for r in range(WORLD)]
    for p in reference:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0, output[-2000:]
    expected = _checksums(tmp_path / "reference")

    with coordinator(tmp_path, WORLD, RUN, "--save-every-steps", str(EVERY)) as (address, storage):
        agents = _sidecars(tmp_path, address, "first", pause_victim=True)
        port = _free_port()
        ranks = [_rank(r, port, tmp_path / "first", "--coordinator", address, "--run-id", RUN,
                       "--sidecar-dir", str(tmp_path / "first")) for r in range(WORLD)]
        try:
            agents[VICTIM].wait_for(f"EVENT paused phase=UPLOAD_HALFWAY step={KILLED_STEP}", timeout=180)
            until(lambda: EVERY in _committed(storage), 60, f"the manifest of step {EVERY}")
            os.kill(ranks[VICTIM].pid, signal.SIGKILL)
            os.kill(agents[VICTIM].process.pid, signal.SIGKILL)
        finally:
            for p in ranks:  # the others block in the next all-reduce with a dead peer: restart them all
                if p.poll() is None:
                    p.kill()
                p.communicate(timeout=60)
        assert ranks[VICTIM].returncode == -signal.SIGKILL
        for agent in agents:  # a sidecar whose trainer died ends its session and exits by itself
            agent.stop(timeout=60)
        assert _committed(storage) == [EVERY], f"step {KILLED_STEP} must not have committed"

        agents = _sidecars(tmp_path, address, "second", pause_victim=False)
        port = _free_port()
        ranks = [_rank(r, port, tmp_path / "second", "--coordinator", address, "--run-id", RUN,
                       "--sidecar-dir", str(tmp_path / "second")) for r in range(WORLD)]
        outputs = [p.communicate(timeout=300)[0] for p in ranks]
        for p, output in zip(ranks, outputs):
            assert p.returncode == 0, output[-3000:]
        assert all(f"resumed from step {EVERY}" in o for o in outputs), outputs
        for agent in agents:
            assert agent.stop(timeout=60) == 0
        assert _checksums(tmp_path / "second") == expected
        assert _committed(storage) == [EVERY, KILLED_STEP, STEPS]
