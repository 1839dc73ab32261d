#!/usr/bin/env python3
"""A small real MultiWorkerMirroredStrategy run (CPU) that checkpoints through Cairn and resumes
bit-identically.

Each worker trains a Keras MLP with a custom loop (``strategy.run`` + ``GradientTape`` + Keras
``Adam``) on its slice of a deterministic synthetic regression set. The model, the optimizer and
the step are ``MirroredVariable``s (created in the strategy's scope): each save writes them once,
split across the workers; so is ``loss_sum``, a ``SyncOnRead`` variable (SUM) each worker adds its
share of the loss to, saved as TF aggregates it. Each worker also has its own ``tf.random.Generator`` (created outside the
scope) that adds noise to its inputs: per-worker state, saved per worker. The coordinator decides
when to save; SIGTERM on any worker makes every worker save at the same step, then exit (42), via
``cairn.tensorflow.PreemptionCheckpointHandler``.

One process per worker, its cluster and index from ``TF_CONFIG`` (or ``--worker I --workers N``,
which builds a loopback ``TF_CONFIG`` on ports ``--base-port``+i):

    python3 train.py --worker 0 --workers 2 --coordinator 127.0.0.1:7400 --run-id tf --steps 40 &
    python3 train.py --worker 1 --workers 2 --coordinator 127.0.0.1:7400 --run-id tf --steps 40

``--no-cairn`` trains without checkpoints (the uninterrupted reference). The last line printed is
``CHECKSUM <sha256 of every variable and optimizer slot>``, after ``LOSS_SUM <the summed loss>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN's reorderings would make runs differ in the last bits

SAMPLES, FEATURES, BATCH = 2048, 16, 32  # BATCH: per worker


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coordinator", default="127.0.0.1:7400", help="the coordinator's host:port")
    p.add_argument("--run-id", default="tf-example")
    p.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--hidden", type=int, default=64, help="width of the hidden layers")
    p.add_argument("--staging-mib", type=int, default=64)
    p.add_argument("--worker", type=int, help="this worker's index (with --workers: builds a loopback TF_CONFIG)")
    p.add_argument("--workers", type=int, help="number of workers (with --worker)")
    p.add_argument("--base-port", type=int, default=23456, help="worker i listens on 127.0.0.1:(base-port + i)")
    p.add_argument("--sidecar-dir", help="attach to running sidecars at DIR/worker<i>.sock instead of starting them")
    p.add_argument("--no-cairn", action="store_true", help="train without checkpoints (the reference run)")
    p.add_argument("--log-every", type=int, default=20, help="print 'worker I: step S' every this many steps")
    p.add_argument("--checksum-file", help="also write this worker's checksum to FILE.<i>")
    args = p.parse_args()
    if (args.worker is None) != (args.workers is None):
        p.error("--worker and --workers go together")
    if args.worker is not None:
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{args.base_port + i}" for i in range(args.workers)]},
            "task": {"type": "worker", "index": args.worker}})
    return args


def main() -> None:
    args = parse()
    import numpy as np
    import tensorflow as tf
    import keras

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import cairn.tensorflow

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(args.seed)  # the same initial weights on every worker
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    worker, workers = strategy.cluster_resolver.task_id, strategy.num_replicas_in_sync

    rng = np.random.default_rng(args.seed)
    x_all = rng.standard_normal((SAMPLES, FEATURES)).astype("float32")
    w_true = rng.standard_normal((FEATURES, 1)).astype("float32")
    y_all = (np.tanh(x_all @ w_true) + 0.05 * rng.standard_normal((SAMPLES, 1))).astype("float32")

    def batch(step: int):
        """This worker's batch at ``step`` (1-based): each epoch is a permutation seeded by the epoch
        number, so the data order depends only on the step, never on where a run resumed."""
        per_epoch = SAMPLES // (BATCH * workers)
        epoch, pos = divmod(step - 1, per_epoch)
        order = np.random.default_rng(args.seed * 100_003 + epoch).permutation(SAMPLES)
        idx = order[(pos * workers + worker) * BATCH:][:BATCH]
        return tf.constant(x_all[idx]), tf.constant(y_all[idx])

    with strategy.scope():
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(args.hidden, activation="relu"),
                                  keras.layers.Dense(args.hidden, activation="relu"), keras.layers.Dense(1)])
        optimizer = keras.optimizers.Adam(3e-3)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        # the summed loss of every step: each worker adds its share, a read gives the sum over the workers
        loss_sum = tf.Variable(0.0, trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                               aggregation=tf.VariableAggregation.SUM)
    noise = tf.random.Generator.from_seed(args.seed + 7919 * (worker + 1))  # per worker: outside the scope

    @tf.function
    def train_step(x, y):
        def replica_fn(x, y):
            x = x + 0.01 * noise.normal(tf.shape(x))
            with tf.GradientTape() as tape:
                per_example = tf.square(model(x, training=True) - y)[:, 0]
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH * workers)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            loss_sum.assign_add(loss)
            return loss

        step_var.assign_add(1)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_fn, args=(x, y)), axis=None)

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var, noise=noise, loss_sum=loss_sum)
    handler = None
    if not args.no_cairn:
        sidecar = os.path.join(args.sidecar_dir, f"worker{worker}.sock") if args.sidecar_dir else None
        manager = cairn.tensorflow.CheckpointManager(checkpoint, args.coordinator, args.run_id,
                                                     cluster_resolver=strategy.cluster_resolver, token=args.token,
                                                     staging_mib=args.staging_mib, sidecar=sidecar)
        handler = cairn.tensorflow.PreemptionCheckpointHandler(strategy.cluster_resolver, manager)
        if handler.restored_step is not None:
            print(f"worker {worker}: resumed from step {handler.restored_step}", flush=True)
    first = int(step_var.numpy()) + 1
    for step in range(first, args.steps + 1):
        x, y = batch(step)
        before = handler.last_save if handler else None
        loss = handler.run(train_step, x, y) if handler else train_step(x, y)
        if handler and handler.last_save is not before:
            print(f"worker {worker}: saving step {step}, stall {handler.manager.last_stall_s * 1000:.1f} ms", flush=True)
        if step % args.log_every == 0:
            print(f"worker {worker}: step {step} loss {float(loss):.6f}", flush=True)
    if handler is not None:
        handler.manager.close()
    h = hashlib.sha256()
    for var in sorted(model.variables + optimizer.variables, key=lambda v: v.path):
        h.update(var.path.encode())
        h.update(np.asarray(var.numpy()).tobytes())
    digest = h.hexdigest()
    if args.checksum_file:
        with open(f"{args.checksum_file}.{worker}", "w") as f:
            f.write(digest + "\n")
    print(f"LOSS_SUM {float(loss_sum.numpy()):.9g}", flush=True)  # a SyncOnRead read: the sum over the workers
    print(f"CHECKSUM {digest}", flush=True)


if __name__ == "__main__":
    main()
