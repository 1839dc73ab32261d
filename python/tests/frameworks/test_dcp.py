"""Issue 18 item 2: Cairn as PyTorch DCP's storage layer (cairn.torch.dcp), with torch 2, gloo, an
FSDP2 model (fully_shard on a CPU mesh) and Adam, real trainer processes (dcp_worker.py), each
with its own real sidecar JVM, and a real coordinator (restarted with another --world on the same
storage to load on another number of ranks). Every load compares the gathered full parameters and
optimizer state with the ones saved, exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import real_cluster
from real_cluster import JAR, AgentProcess, coordinator, free_port, until
from support import require

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")

WORKER = Path(__file__).with_name("dcp_worker.py")
JAVA_OPTS = "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"


def _start(tmp_path: Path, address: str, run: str, world: int, actions: list, tag: str, sidecars=None) -> list:
    port = free_port()
    env = {**os.environ, "CAIRN_JAR": str(JAR), "OMP_NUM_THREADS": "1", "CAIRN_JAVA_OPTS": JAVA_OPTS}
    processes = []
    for rank in range(world):
        spec = {"address": address, "run_id": run, "rank": rank, "world": world, "port": port, "out": str(tmp_path),
                "actions": actions, "sidecar": None if sidecars is None else sidecars[rank]}
        log = open(tmp_path / f"worker-{tag}-{rank}.log", "w")
        processes.append((subprocess.Popen([sys.executable, str(WORKER), json.dumps(spec)], env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=log), log))
    return processes


def _finish(tmp_path: Path, processes: list, tag: str) -> list:
    reports = []
    for rank, (process, log) in enumerate(processes):
        out, _ = process.communicate(timeout=300)
        log.close()
        text = (tmp_path / f"worker-{tag}-{rank}.log").read_text()
        assert process.returncode == 0, f"rank {rank} ({tag}) failed:\n{out[-2000:]}\n{text[-4000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def _run(tmp_path: Path, address: str, run: str, world: int, actions: list, tag: str) -> list:
    started = time.monotonic()
    reports = _finish(tmp_path, _start(tmp_path, address, run, world, actions, tag), tag)
    print(f"{tag}: {world} ranks in {time.monotonic() - started:.1f} s: {reports}")
    return reports


def _committed(storage: Path) -> list:
    return sorted(int(p.stem) for p in (storage / "manifests").glob("*.json")) if (storage / "manifests").is_dir() else []


def _no_problems(reports: list, loads: int) -> None:
    for r in reports:
        assert len(r["loads"]) == loads, r
        for load in r["loads"]:
            assert load["problems"] == [], (r["rank"], load)


def _shm_of(ready_line: str) -> str:
    """The shared staging file an ``EVENT ready`` line announces ('' when none)."""
    return next((f[len("shm="):] for f in ready_line.split() if f.startswith("shm=")), "")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-Xmx128m", "-jar", str(JAR), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(600)
def test_dcp_save_async_save_load_and_load_on_3_and_1_ranks(tmp_path):
    require("torch")
    run = "dcp"
    with coordinator(tmp_path, 2, run) as (address, storage):
        reports = _run(tmp_path, address, run, 2, [
            {"op": "train_save", "step": 2, "train": 2},
            {"op": "load", "step": 2, "ref": 2},
            {"op": "train_save", "step": 4, "train": 1, "async": True},
            {"op": "load", "step": None, "ref": 4},
            {"op": "load", "step": 2, "ref": 2},
            {"op": "cm_save", "step": 6},
            {"op": "cm_load", "step": 6},
            {"op": "cm_save_fsdp", "step": 8, "train": 1},
            {"op": "load", "step": 8, "ref": 8, "tensors_only": True},
        ], "world2")
        _no_problems(reports, 5)
        assert [l["step"] for l in reports[0]["loads"][:3]] == [2, 4, 2]
        assert _committed(storage) == [2, 4, 6, 8]
    manifest = json.loads((storage / "manifests" / f"{4:020d}.json").read_text())
    assert len(manifest["shards"]) == 2
    # the operators' tools take a DCP-written run like any other
    verify = _cli("verify", "-q", "--storage", f"file://{storage}", "--step", "4")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    listed = _cli("list", "--storage", f"file://{storage}")
    assert listed.returncode == 0 and "4" in listed.stdout, listed.stdout + listed.stderr

    # the same storage, three ranks (FSDP2 shards 32 and 16 rows unevenly): DCP reshards 2 -> 3
    with coordinator(tmp_path, 3, run) as (address, _):
        reports = _run(tmp_path, address, run, 3, [
            {"op": "load", "step": 4, "ref": 4},
            {"op": "restore_plain", "step": 2, "ref": 2},
            {"op": "cm_restore_fsdp", "step": 4, "ref": 4},
            {"op": "load", "step": 8, "ref": 8, "tensors_only": True},
        ], "world3")
        _no_problems(reports, 4)

    # one rank: DCP reshards 2 -> 1; CheckpointManager restores the DCP-written run into plain
    # full-size tensors
    with coordinator(tmp_path, 1, run) as (address, _):
        reports = _run(tmp_path, address, run, 1, [
            {"op": "load", "step": 4, "ref": 4},
            {"op": "load", "step": 2, "ref": 2},
            {"op": "restore_plain", "step": 4, "ref": 4},
        ], "world1")
        _no_problems(reports, 3)


@pytest.mark.timeout(600)
def test_a_rank_killed_mid_upload_commits_nothing_and_the_previous_step_loads(tmp_path):
    require("torch")
    run, victim = "dcp-kill", 1
    for d in ("first", "second"):
        (tmp_path / d).mkdir()
    with coordinator(tmp_path, 2, run) as (address, storage):
        agents = []
        for r in range(2):
            extra = ["--staging-mib", "16"] + (["--pause-at", "UPLOAD_HALFWAY@4"] if r == victim else [])
            agents.append(AgentProcess(address, run, r, 2, str(tmp_path / "first" / f"rank{r}.sock"),
                                       tmp_path / f"agent-first-{r}.log", *extra))
        staging = [_shm_of(agent.wait_for("EVENT ready")) for agent in agents]
        processes = _start(tmp_path, address, run, 2, [
            {"op": "train_save", "step": 2, "train": 2},
            {"op": "train_save", "step": 4, "train": 1},
        ], "first", sidecars=[str(tmp_path / "first" / f"rank{r}.sock") for r in range(2)])
        try:
            agents[victim].wait_for("EVENT paused phase=UPLOAD_HALFWAY step=4", timeout=240)
            assert _committed(storage) == [2]
            os.kill(processes[victim][0].pid, signal.SIGKILL)
            os.kill(agents[victim].process.pid, signal.SIGKILL)
            agents[victim].process.wait(60)
            if staging[victim]:  # a SIGKILLed sidecar cannot delete its tmpfs staging file
                Path(staging[victim]).unlink(missing_ok=True)
            # the survivor's dcp.save fails (the coordinator aborts the save: WORKER_LOST) or blocks
            # in DCP's gather with a dead peer; either way it does not return a committed save
            survivor = processes[1 - victim][0]
            try:
                out, _ = survivor.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                survivor.kill()
                out, _ = survivor.communicate(timeout=60)
            assert survivor.returncode != 0, out
        finally:
            for process, log in processes:
                if process.poll() is None:
                    process.kill()
                process.communicate(timeout=60)
                log.close()
        assert processes[victim][0].returncode == -signal.SIGKILL
        for agent in agents:
            agent.stop(timeout=60)
        assert _committed(storage) == [2], "step 4 must not have committed"

        # restarted: the latest committed checkpoint is step 2 and loads exactly
        reports = _run(tmp_path, address, run, 2, [{"op": "load", "step": None, "ref": 2}], "second")
        _no_problems(reports, 1)
        assert [r["loads"][0]["step"] for r in reports] == [2, 2]
        assert _committed(storage) == [2]


@pytest.mark.timeout(600)
def test_an_async_save_that_does_not_commit_fails_its_future_on_every_rank(tmp_path):
    require("torch")
    run, held = "dcp-abort", 1
    (tmp_path / "s").mkdir()
    with coordinator(tmp_path, 2, run, "--upload-timeout-s", "8") as (address, storage):
        agents = []
        for r in range(2):  # rank 1's sidecar holds its upload of step 4 until the coordinator gives up
            extra = ["--staging-mib", "16"] + (["--pause-at", "UPLOAD_HALFWAY@4"] if r == held else [])
            agents.append(AgentProcess(address, run, r, 2, str(tmp_path / "s" / f"rank{r}.sock"),
                                       tmp_path / f"agent-{r}.log", *extra))
        staging = [_shm_of(agent.wait_for("EVENT ready")) for agent in agents]
        try:
            processes = _start(tmp_path, address, run, 2, [
                {"op": "train_save", "step": 2, "train": 1},
                {"op": "train_save", "step": 4, "train": 1, "async": True, "expect_failure": True},
                {"op": "load", "step": None, "ref": 2},
            ], "abort", sidecars=[str(tmp_path / "s" / f"rank{r}.sock") for r in range(2)])
            processes[1 - held][0].wait(300)
            agents[held].process.kill()  # paused for ever: its trainer's close() would wait 60 s for it
            reports = _finish(tmp_path, processes, "abort")
        finally:
            agents[held].process.kill()  # paused for ever
            for agent in agents:
                agent.stop(timeout=60)
            Path(staging[held]).unlink(missing_ok=True)
        for r in reports:
            assert r["failed"] is not None, r
            assert r["failed"]["type"] == "CheckpointException", r
            assert r["failed"]["failures"] == {"0": ["SaveAborted", "UPLOAD_TIMEOUT"],
                                               "1": ["SaveAborted", "UPLOAD_TIMEOUT"]}, r
        _no_problems(reports, 1)
        assert [r["loads"][0]["step"] for r in reports] == [2, 2]
        assert _committed(storage) == [2]
