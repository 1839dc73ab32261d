"""Issue #12 (Python half): a run saved by 4 trainer processes restores onto 3 and then 6, with
real trainer processes (tests/reshard_case.py), each with its own real sidecar, and a real
coordinator restarted with another ``--world`` on the same storage. The tensors are split by rows,
columns and 2-D blocks, unevenly, one is 1-D, one is smaller than the world (some ranks hold an
empty piece), one is bfloat16, one is larger than the shared memory, one is mirrored. Every rank
compares every element it restored with the original and checks the bytes its sidecar read per
entry (<= 1.05 x needed + one 64-byte alignment unit per overlapping piece); the save after each
resharded restore commits with the new number of shards. Once on local storage, and 4 -> 3 on
S3Proxy (the S3 server the test kit embeds, run from the fat jar)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import real_cluster
from real_cluster import JAR

pytest.importorskip("numpy")
import reshard_case  # noqa: E402  (needs NumPy)

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")

CASE = Path(__file__).with_name("reshard_case.py")
RUN = "reshard"
ALL = list(reshard_case.TENSORS)


def _trainers(tmp_path: Path, address: str, world: int, actions: list, tag: str, names: list) -> list:
    """Runs ``world`` trainer processes (each starts its own sidecar) to the end; their reports.
    Their states hold the tensors ``names`` of reshard_case.TENSORS."""
    pytest.importorskip("numpy")
    if "model/half" in names:
        pytest.importorskip("torch")
    env = {**os.environ, "CAIRN_JAR": str(JAR), "OMP_NUM_THREADS": "1",
           "CAIRN_JAVA_OPTS": "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"}
    processes = []
    for rank in range(world):
        spec = {"address": address, "run_id": RUN, "rank": rank, "world": world, "actions": actions, "names": names}
        err = open(tmp_path / f"trainer-{tag}-{rank}.log", "w")
        processes.append((subprocess.Popen([sys.executable, str(CASE), json.dumps(spec)], env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=err), err))
    reports, started = [], time.monotonic()
    for rank, (process, err) in enumerate(processes):
        out, _ = process.communicate(timeout=300)
        err.close()
        log = (tmp_path / f"trainer-{tag}-{rank}.log").read_text()
        assert process.returncode == 0, f"trainer {rank} of {world} ({tag}) failed:\n{log[-3000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    cpu = [sum(r["cpu_s"][i] for r in reports) for i in (0, 1)]
    print(f"{tag}: {world} trainers in {time.monotonic() - started:.1f} s (CPU: trainers {cpu[0]:.1f} s, sidecars {cpu[1]:.1f} s)")
    return reports


def _manifest(root: Path, step: int) -> dict:
    return json.loads((root / "manifests" / f"{step:020d}.json").read_text())


def _save(step: int) -> dict:
    return {"op": "save", "step": step}


def _restore(expect: int, saved_world: int, step=None) -> dict:
    return {"op": "restore", "step": step, "expect": expect, "saved_world": saved_world}


def _check_save(reports: list, root: Path, step: int, world: int) -> None:
    assert [r["saved"] for r in reports] == [step] * world
    manifest = _manifest(root, step)
    assert len(manifest["shards"]) == world, manifest["shards"]


def _report(tag: str, reports: list) -> None:
    for r in reports:
        for restore in r["restores"]:
            read = sum(v[0] for v in restore["by_entry"].values())
            needed = sum(v[1] for v in restore["by_entry"].values())
            print(f"{tag} rank {r['rank']} step {restore['step']}: read {read} B for {needed} B needed "
                  f"({restore['regions']} regions, {restore['whole_entries']} whole entries)")


def _four_then_three(tmp_path: Path, root: Path, names: list, storage_uri=None) -> None:
    with real_cluster.coordinator(tmp_path, 4, RUN, storage_uri=storage_uri) as (address, _):
        _check_save(_trainers(tmp_path, address, 4, [_save(1)], "w4", names), root, 1, 4)
    with real_cluster.coordinator(tmp_path, 3, RUN, storage_uri=storage_uri) as (address, _):
        reports = _trainers(tmp_path, address, 3, [_restore(1, 4), {"op": "errors"}, _save(2)], "w3", names)
    for message in reports[0]["errors"]:
        print(f"error seen: {message}")
    _report("4->3", reports)
    _check_save(reports, root, 2, 3)
    if "model/half" in names:  # ranks 0 and 1 hold exactly the bfloat16 pieces ranks 0 and 1 of 4 saved: one whole read each
        assert [r["restores"][0]["by_entry"]["model/half"] for r in reports[:2]] == [[16 * 3 * 2, 16 * 3 * 2]] * 2


def test_a_run_saved_by_4_restores_on_3_then_6_with_other_splits(tmp_path):
    root = tmp_path / f"store-{RUN}"
    _four_then_three(tmp_path, root, ALL)
    with real_cluster.coordinator(tmp_path, 6, RUN) as (address, _):
        # no bfloat16 here (4 -> 3 covers it): 6 fewer torch imports
        reports = _trainers(tmp_path, address, 6, [_restore(1, 4, step=1), _restore(2, 3), _save(3)], "w6",
                            [n for n in ALL if n != "model/half"])
    _report("4,3->6", reports)
    _check_save(reports, root, 3, 6)


def test_on_s3_a_run_saved_by_4_restores_on_3(tmp_path):
    # the storage path is what differs here: the small tensors only (NumPy, no torch import in 7 more
    # processes, no 640 ranged GETs per rank for the column blocks of model/big)
    with real_cluster.s3_server(tmp_path) as (endpoint, bucket):
        _four_then_three(tmp_path, bucket / RUN, reshard_case.SMALL, real_cluster.s3_uri(endpoint, RUN))
