#!/usr/bin/env python3
"""Measures what a cairn.tensorflow save blocks the trainer for: ``CheckpointManager.save`` of a
``tf.train.Checkpoint`` holding ``--mib`` MiB of float32 variables (in ``--vars`` variables), against
a coordinator at ``--coordinator`` (world 1), beside a plain copy of the same variables into
preallocated NumPy memory (``numpy.copyto(buf, v.numpy())``) in the same process. Prints the best
and median of ``--repeat`` saves of each, in ms."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coordinator", required=True)
    p.add_argument("--run-id", default="tf-stall")
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("--vars", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import cairn.tensorflow

    per_var = args.mib * (1 << 20) // 4 // args.vars
    variables = {f"v{i}": tf.Variable(tf.random.normal((per_var,))) for i in range(args.vars)}
    checkpoint = tf.train.Checkpoint(**variables)
    buffers = [np.empty(per_var, np.float32) for _ in variables]
    plain, stalls = [], []
    with cairn.tensorflow.CheckpointManager(checkpoint, args.coordinator, args.run_id, rank=0, world_size=1,
                                            staging_mib=args.mib * 3 + 16) as manager:
        for n in range(1, args.repeat + 1):
            start = time.perf_counter()
            for buf, v in zip(buffers, variables.values()):
                np.copyto(buf, v.numpy())
            plain.append(time.perf_counter() - start)
            future = manager.save(checkpoint_number=n)
            stalls.append(manager.last_stall_s)
            future.result()
    ms = lambda xs: f"best {min(xs) * 1000:.1f} ms, median {statistics.median(xs) * 1000:.1f} ms"  # noqa: E731
    print(f"state {args.mib} MiB in {args.vars} variables, {args.repeat} saves")
    print(f"cairn.tensorflow save stall: {ms(stalls)}")
    print(f"plain numpy copy of the variables: {ms(plain)}")


if __name__ == "__main__":
    main()
