"""The TensorFlow bench: a MultiWorkerMirroredStrategy trainer's checkpoint stall with Cairn beside
``tf.train.CheckpointManager.save`` of the same variables, measured in the same run.

    python -m cairn._bench_tf [--workers 2] [--state-mib 64] [--variable-mib 8] [--rounds 7] [--api tensorflow|core]
                              [--out FILE]

run with an interpreter where TensorFlow imports (the framework environment), from a checkout with
``cli/target/cairn.jar`` built (or ``$CAIRN_JAR``). It starts a coordinator (local storage in a
temporary directory, or ``--dir``) and ``--workers`` worker processes on loopback (``TF_CONFIG``),
each under ``tf.distribute.MultiWorkerMirroredStrategy`` holding ``--state-mib`` MiB of float32
``MirroredVariable``s, with its own ``cairn agent`` sidecar: ``cairn.tensorflow.CheckpointManager``
of a ``tf.train.Checkpoint`` of them (``--api tensorflow``, the default), or the core
``cairn.CheckpointManager`` with ``mirrored=True`` and the variables as leaves (``--api core``);
either way written once, split across the workers. Every round, in an order that rotates
from round to round, each worker times, after a cross-worker barrier (an all-reduce):

- ``cairn``: ``CheckpointManager.save`` returning (the variables copied into the sidecar's shared
  memory: the trainer's stall), then the commit (``cairnCommitMs``, not a stall: uploads run in
  the background; waited for so rounds do not overlap);
- ``tf``: ``tf.train.CheckpointManager.save()`` of a ``tf.train.Checkpoint`` of the same
  variables, as TF's multi-worker docs prescribe: the chief into the real directory, the other
  workers into temporary directories of their own (the whole write blocks the trainer);
- ``copy``: the variables into preallocated, already touched NumPy arrays (``numpy.copyto`` of
  ``v.numpy()``): the floor of any stall.

The first ``--warmup`` rounds are not counted. Prints one JSON object (medians per worker and over
workers, in milliseconds) and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

MIB = 1 << 20
KINDS = ("cairn", "tf", "copy")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jar() -> Path:
    jar = os.environ.get("CAIRN_JAR")
    if jar:
        return Path(jar)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "cli" / "target" / "cairn.jar"
        if candidate.is_file():
            return candidate
    raise SystemExit("cairn._bench_tf: cannot find cairn.jar; build it or set CAIRN_JAR")


# ------------------------------------------------------------------ worker

def _worker(args: argparse.Namespace) -> None:
    ports = [int(p) for p in args.ports.split(",")]
    index = args.worker
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})
    import numpy as np
    import tensorflow as tf

    import cairn

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elements = args.variable_mib * MIB // 4
    count = max(1, args.state_mib // args.variable_mib)
    with strategy.scope():
        variables = {f"v{k:03d}": tf.Variable(tf.random.stateless_normal([elements], seed=[k, 7]), name=f"v{k:03d}")
                     for k in range(count)}
    kind = type(variables["v000"]).__name__
    copies = {k: np.ones(elements, np.float32) for k in variables}

    @tf.function
    def all_reduce() -> Any:
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    def barrier() -> None:
        all_reduce().numpy()

    base = Path(args.dir)
    checkpoint = tf.train.Checkpoint(**variables)
    # TF's multi-worker recipe: only the chief's checkpoint is kept; the others write to temporary dirs
    directory = base / "tf-chief" if index == 0 else Path(tempfile.mkdtemp(prefix=f"tf-worker{index}-", dir=base))
    tf_manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
    staging = 2 * args.state_mib + 16
    if args.api == "tensorflow":  # what a TF user calls: the object graph walked at every save
        import cairn.tensorflow

        tf_cairn = cairn.tensorflow.CheckpointManager(tf.train.Checkpoint(**variables), args.coordinator, args.run_id,
                                                      rank=index, world_size=len(ports), staging_mib=staging,
                                                      handle_sigterm=False)
        mgr: Any = tf_cairn

        def cairn_save(step: int) -> Any:
            return tf_cairn.save(checkpoint_number=step)
    else:  # the core manager with the variables as leaves
        mgr = cairn.CheckpointManager(args.coordinator, args.run_id, rank=index, world_size=len(ports), mirrored=True,
                                      staging_mib=staging, handle_sigterm=False)

        def cairn_save(step: int) -> Any:
            return mgr.save(step, variables)
    times: Dict[str, List[float]] = {k: [] for k in KINDS}
    committed: List[float] = []
    try:
        for r in range(args.warmup + args.rounds):
            order = KINDS[r % 3:] + KINDS[:r % 3]
            for what in order:
                barrier()
                t0 = time.perf_counter()
                if what == "cairn":
                    future = cairn_save(r + 1)
                    stall = _ms(t0)
                    future.result(timeout=600)
                    done = _ms(t0)
                elif what == "tf":
                    tf_manager.save(checkpoint_number=r + 1)
                    stall = _ms(t0)
                else:
                    for k, v in variables.items():
                        np.copyto(copies[k], v.numpy())
                    stall = _ms(t0)
                if r >= args.warmup:
                    times[what].append(stall)
                    if what == "cairn":
                        committed.append(done)
        barrier()
    finally:
        mgr.close()
        if index != 0:
            shutil.rmtree(directory, ignore_errors=True)
    result = {"worker": index, "variableKind": kind, "bytes": count * elements * 4, "rounds": times,
              "cairnCommitMs": committed, "tensorflow": tf.__version__}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ driver

def _median(xs: List[float]) -> float:
    return round(statistics.median(xs), 2)


def _drive(args: argparse.Namespace) -> Dict[str, Any]:
    jar = _jar()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cairn-bench-tf-"))
    base.mkdir(parents=True, exist_ok=True)
    run_id = "bench-tf"
    port_file = base / "coordinator.port"
    log = open(base / "coordinator.log", "w")
    coordinator = subprocess.Popen(["java", "-Xmx256m", "-XX:+UseSerialGC", "-jar", str(jar), "coordinator",
                                    "--storage", f"file://{base / 'store'}", "--world", str(args.workers),
                                    "--port", "0", "--port-file", str(port_file), "--run-id", run_id],
                                   stdout=subprocess.DEVNULL, stderr=log)
    workers: List[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if coordinator.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"cairn._bench_tf: the coordinator did not start: {(base / 'coordinator.log').read_text()}")
            time.sleep(0.05)
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        ports = ",".join(str(_free_port()) for _ in range(args.workers))
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), "CAIRN_JAR": str(jar)}
        for i in range(args.workers):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "cairn._bench_tf", "--worker", str(i), "--ports", ports, "--coordinator", address,
                 "--run-id", run_id, "--dir", str(base), "--state-mib", str(args.state_mib),
                 "--variable-mib", str(args.variable_mib), "--rounds", str(args.rounds), "--warmup", str(args.warmup),
                 "--api", args.api],
                env=env, stdout=subprocess.PIPE, stderr=open(base / f"worker{i}.log", "w"), text=True))
        results = []
        for i, w in enumerate(workers):
            out = w.communicate(timeout=3600)[0]
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            if w.returncode != 0 or not lines:
                tail = (base / f"worker{i}.log").read_text()[-3000:]
                raise SystemExit(f"cairn._bench_tf: worker {i} failed ({w.returncode}): {tail}")
            results.append(json.loads(lines[-1][len("RESULT "):]))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        coordinator.terminate()
        try:
            coordinator.wait(30)
        except subprocess.TimeoutExpired:
            coordinator.kill()
        log.close()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    per = [{"worker": r["worker"], "cairnStallMs": _median(r["rounds"]["cairn"]),
            "tfCheckpointManagerSaveMs": _median(r["rounds"]["tf"]), "copyMs": _median(r["rounds"]["copy"]),
            "cairnCommitMs": _median(r["cairnCommitMs"])} for r in results]
    every = {k: [t for r in results for t in r["rounds"][k]] for k in KINDS}
    cairn_ms, tf_ms = _median(every["cairn"]), _median(every["tf"])
    return {"bench": "tensorflow-mwms", "workers": args.workers, "stateBytesPerWorker": results[0]["bytes"],
            "variableMiB": args.variable_mib, "variableKind": results[0]["variableKind"], "api": args.api,
            "tensorflow": results[0]["tensorflow"], "rounds": args.rounds, "warmupRounds": args.warmup,
            "cairnStallMs": cairn_ms, "tfCheckpointManagerSaveMs": tf_ms, "copyMs": _median(every["copy"]),
            "cairnCommitMs": _median([t for r in results for t in r["cairnCommitMs"]]),
            "tfSaveOverCairnStall": round(tf_ms / cairn_ms, 2) if cairn_ms else None, "perWorker": per,
            "cpus": os.cpu_count()}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m cairn._bench_tf", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--state-mib", type=int, default=64, help="MiB of variables on each worker (all mirrored)")
    p.add_argument("--variable-mib", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--api", choices=("tensorflow", "core"), default="tensorflow",
                   help="cairn.tensorflow.CheckpointManager of a tf.train.Checkpoint (default), or the core "
                        "cairn.CheckpointManager with the variables as leaves")
    p.add_argument("--dir", help="where the storage and checkpoints go (default: a temporary directory, removed)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ports", help=argparse.SUPPRESS)
    p.add_argument("--coordinator", help=argparse.SUPPRESS)
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        _worker(args)
        return
    if args.workers < 1 or args.state_mib < 1 or args.variable_mib < 1 or args.rounds < 1:
        p.error("--workers, --state-mib, --variable-mib and --rounds must be >= 1")
    report = _drive(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
