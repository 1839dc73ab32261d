"""examples/pytorch_ddp/train.py stopped after a save and resumed ends bit-identical to an
uninterrupted run. The ranks are real DDP processes (gloo); they attach to protocol doubles of the
sidecar (tests/fake_sidecar.py), so this checks the package and the example's state, not the Java
side (test_integration.py and the lead's kill-and-resume test do that)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fake_sidecar import FakeSidecar

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pytorch_ddp" / "train.py"
WORLD = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    done = subprocess.run([sys.executable, str(EXAMPLE), "--spawn", str(WORLD), "--checksum-file", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    sums = {Path(f"{out}.{r}").read_text().strip() for r in range(WORLD)}
    assert len(sums) == 1, f"ranks disagree: {sums}"
    return sums.pop(), done.stdout


def test_stopped_and_resumed_ddp_run_is_bit_identical(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("numpy")
    fakes = [FakeSidecar(str(tmp_path / f"rank{r}.sock"), run_id="ddp", rank=r, world_size=WORLD, shm_bytes=8 << 20)
             for r in range(WORLD)]
    try:
        for fake in fakes:
            fake.exit_on_close = False
            fake.due_steps = {12}
        reference, _ = _run(tmp_path, "reference", "--no-cairn", "--steps", "24")
        first, _ = _run(tmp_path, "first", "--run-id", "ddp", "--sidecar-dir", str(tmp_path), "--steps", "16")
        assert all(sorted(f.committed) == [12] for f in fakes)
        entries = fakes[0].committed[12]["entries"]
        assert entries["step"][1] == b"12" and all(meta["replicated"] for meta, _ in entries.values())
        assert first != reference
        resumed, stdout = _run(tmp_path, "resumed", "--run-id", "ddp", "--sidecar-dir", str(tmp_path), "--steps", "24")
        assert "resumed from step 12" in stdout
        assert resumed == reference
    finally:
        for fake in fakes:
            fake.cleanup()
