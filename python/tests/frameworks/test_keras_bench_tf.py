"""The TensorFlow bench (python -m cairn._bench_tf) runs end to end, small: 2 MultiWorkerMirroredStrategy
worker processes, a real coordinator and sidecars, one round of each measurement; its JSON says
what it measured (mirrored variables, every figure a positive time, Cairn's commit after its stall)
and the chief's tf.train.CheckpointManager checkpoint is where TF's recipe puts it."""

import json
import subprocess
import sys

import pytest

import real_cluster
from support import require

require("tensorflow")
pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


@pytest.mark.timeout(300)
def test_the_tf_bench_measures_cairn_beside_tf_checkpoint_manager(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "cairn._bench_tf", "--state-mib", "2", "--variable-mib", "1",
                           "--rounds", "1", "--warmup", "0", "--dir", str(tmp_path / "run"), "--out", str(out)],
                          cwd=real_cluster.REPO / "python", capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert (report["workers"], report["stateBytesPerWorker"], report["variableKind"]) == (2, 2 << 20, "MirroredVariable")
    assert [w["worker"] for w in report["perWorker"]] == [0, 1]
    for w in report["perWorker"]:
        assert w["cairnStallMs"] > 0 and w["tfCheckpointManagerSaveMs"] > 0 and w["copyMs"] > 0
        assert w["cairnCommitMs"] >= w["cairnStallMs"]
    assert list((tmp_path / "run" / "tf-chief").glob("ckpt-1.index")), "the chief's checkpoint"
    assert not list((tmp_path / "run").glob("tf-worker1-*")), "the other worker's temporary copy is removed"
    assert sorted(int(p.stem) for p in (tmp_path / "run" / "store" / "manifests").glob("*.json")) == [1]
