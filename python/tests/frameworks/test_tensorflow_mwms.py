"""Issue #17's acceptance tests: examples/tensorflow_mwms/train.py as two real TensorFlow worker
processes under MultiWorkerMirroredStrategy (TF_CONFIG on two free loopback ports), each with its
own real sidecar JVM, and a real coordinator.

* Worker 1 is SIGKILLed (trainer and sidecar) while its sidecar holds the upload of step 16 half
  written (``--pause-at UPLOAD_HALFWAY@16`` prints ``EVENT paused``; the test waits for that line).
  Both workers restart, resume from step 8 and end bit-identical (sha256 over every variable and
  optimizer slot) to an uninterrupted ``--no-cairn`` run, and with the same sum in a SyncOnRead
  variable. The stored manifests show the mirrored variables split across the two workers by bytes
  and the per-worker RNG saved by each worker.
* SIGTERM on worker 1 makes both workers save at the same step; that save commits; both exit 42.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import real_cluster
from real_cluster import AgentProcess, coordinator, free_port, until
from support import require

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")

EXAMPLE = real_cluster.REPO / "examples" / "tensorflow_mwms" / "train.py"
WORLD, STEPS, EVERY, KILLED_STEP, VICTIM = 2, 24, 8, 16, 1


class Worker:
    """One example worker process; its output lines are collected so a test can wait for one."""

    def __init__(self, index: int, ports, *args: str) -> None:
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
               "CAIRN_JAVA_OPTS": " ".join(real_cluster.JVM[1:])}
        self.lines = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen([sys.executable, "-u", str(EXAMPLE), *args], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                assert left > 0 and self.process.poll() is None, f"no '{text}': {self.output[-3000:]}"
                self._changed.wait(min(left, 1.0))

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout)
        self._reader.join(30)
        return code

    @property
    def output(self) -> str:
        return "\n".join(line for line in self.lines if not line.startswith(("W0000", "I0000")))


def _workers(*args: str):
    ports = [free_port() for _ in range(WORLD)]
    return [Worker(i, ports, "--steps", str(STEPS), *args) for i in range(WORLD)]


def _checksum(workers) -> str:
    sums = set()
    for w in workers:
        lines = [line for line in w.lines if line.startswith("CHECKSUM ")]
        assert lines, w.output[-3000:]
        sums.add(lines[-1].split()[1])
    assert len(sums) == 1, f"workers disagree: {sums}"
    return sums.pop()


def _loss_sum(workers) -> float:
    sums = {float([line for line in w.lines if line.startswith("LOSS_SUM ")][-1].split()[1]) for w in workers}
    assert len(sums) == 1, f"workers read different sums: {sums}"
    return sums.pop()


def _committed(storage: Path) -> list:
    return sorted(int(p.stem) for p in (storage / "manifests").glob("*.json")) if (storage / "manifests").is_dir() else []


def _manifest(storage: Path, step: int) -> dict:
    return json.loads((storage / "manifests" / f"{step:020d}.json").read_text())


def _sidecars(tmp_path: Path, address: str, run: str, attempt: str, pause_victim: bool):
    (tmp_path / attempt).mkdir()
    agents = []
    for r in range(WORLD):
        extra = ["--staging-mib", "16"]
        if pause_victim and r == VICTIM:
            extra += ["--pause-at", f"UPLOAD_HALFWAY@{KILLED_STEP}"]
        agents.append(AgentProcess(address, run, r, WORLD, str(tmp_path / attempt / f"worker{r}.sock"),
                                   tmp_path / f"agent-{attempt}-{r}.log", *extra))
    for agent in agents:
        agent.wait_for("EVENT ready")
    return agents


@pytest.mark.timeout(900)
def test_a_worker_killed_mid_upload_resumes_bit_identical_and_mirrored_bytes_are_split(tmp_path):
    require("tensorflow")
    run = "tf-kill"
    reference = _workers("--no-cairn")
    for w in reference:
        assert w.finish() == 0, w.output[-3000:]
    expected = _checksum(reference)

    with coordinator(tmp_path, WORLD, run, "--save-every-steps", str(EVERY)) as (address, storage):
        agents = _sidecars(tmp_path, address, run, "first", pause_victim=True)
        workers = _workers("--coordinator", address, "--run-id", run, "--sidecar-dir", str(tmp_path / "first"))
        try:
            agents[VICTIM].wait_for(f"EVENT paused phase=UPLOAD_HALFWAY step={KILLED_STEP}", timeout=300)
            until(lambda: EVERY in _committed(storage), 60, f"the manifest of step {EVERY}")
            os.kill(workers[VICTIM].process.pid, signal.SIGKILL)
            os.kill(agents[VICTIM].process.pid, signal.SIGKILL)
        finally:
            for w in workers:  # the other worker blocks in the next all-reduce with a dead peer: restart both
                if w.process.poll() is None:
                    w.process.kill()
                w.finish(60)
        assert workers[VICTIM].process.returncode == -signal.SIGKILL
        for agent in agents:  # a sidecar whose trainer died ends its session and exits by itself
            agent.stop(timeout=60)
        assert _committed(storage) == [EVERY], f"step {KILLED_STEP} must not have committed"

        agents = _sidecars(tmp_path, address, run, "second", pause_victim=False)
        workers = _workers("--coordinator", address, "--run-id", run, "--sidecar-dir", str(tmp_path / "second"))
        for w in workers:
            assert w.finish() == 0, w.output[-3000:]
        for i, w in enumerate(workers):
            assert f"worker {i}: resumed from step {EVERY}" in w.output, w.output[-3000:]
        for agent in agents:
            assert agent.stop(timeout=60) == 0
        assert _checksum(workers) == expected
        assert _committed(storage) == [EVERY, KILLED_STEP, STEPS]

        manifest = _manifest(storage, STEPS)
        mirrored = {w: 0 for w in range(WORLD)}
        for e in manifest["entries"]:
            if e.get("replicated"):
                mirrored[e["worker"]] += e["length"]
        total = sum(mirrored.values())
        params = (16 * 64 + 64) + (64 * 64 + 64) + (64 + 1)  # the example's MLP (16 features, 64 wide)
        # the model, Adam's m and v, Adam's iterations (int64) and learning rate, the step: once, not N copies
        # ... and the summed loss (a SyncOnRead float32, saved as its sum over the workers)
        assert total == 3 * params * 4 + 8 + 4 + 8 + 4, mirrored
        assert max(mirrored.values()) <= 1.1 * total / WORLD, mirrored
        names = {e["name"] for e in manifest["entries"] if e.get("replicated")}
        assert {"model/_functional/_operations/1/_kernel", "optimizer/_iterations", "step", "loss_sum"} <= names, sorted(names)
        # the SyncOnRead sum was saved aggregated and spread back over the workers on restore: its
        # sum over the workers goes on as in the uninterrupted run (only the rounding may differ)
        assert _loss_sum(workers) == pytest.approx(_loss_sum(reference), rel=1e-5)
        per_worker = sorted(e["worker"] for e in manifest["entries"] if e["name"] == "noise/_state_var")
        assert per_worker == [0, 1], "each worker's RNG is its own entry"
        assert not any(e.get("replicated") for e in manifest["entries"] if e["name"] == "noise/_state_var")


@pytest.mark.timeout(600)
def test_sigterm_on_one_worker_saves_every_worker_at_the_same_step_then_exits(tmp_path):
    require("tensorflow")
    run = "tf-preempt"
    with coordinator(tmp_path, WORLD, run, "--save-every-steps", "100000") as (address, storage):
        ports = [free_port() for _ in range(WORLD)]
        workers = [Worker(i, ports, "--steps", "100000", "--log-every", "5", "--coordinator", address,
                          "--run-id", run, "--staging-mib", "16") for i in range(WORLD)]
        try:
            workers[VICTIM].wait_for(f"worker {VICTIM}: step 10 ", timeout=300)
            os.kill(workers[VICTIM].process.pid, signal.SIGTERM)
            codes = [w.finish(300) for w in workers]
        finally:
            for w in workers:
                if w.process.poll() is None:
                    w.process.kill()
                    w.finish(60)
        outputs = [w.output for w in workers]
        assert codes == [42, 42], [o[-3000:] for o in outputs]
        committed = _committed(storage)
        assert len(committed) == 1 and committed[0] >= 10, committed
        step = committed[0]
        for i, output in enumerate(outputs):
            assert f"cairn: preempted; checkpoint {step} committed, exiting" in output, output[-3000:]
            assert "CHECKSUM" not in output  # it left before the end of training
        assert {s["worker"] for s in _manifest(storage, step)["shards"]} == {0, 1}
