"""One Keras 3 trainer for the callback's real-process tests (test_keras_kill_resume.py): ``model.fit``
of a small MLP (Dense + Dropout + BatchNormalization, Adam) on deterministic data, shuffle=False,
with cairn.keras.CheckpointCallback against a real coordinator and a sidecar already listening at
``--sidecar`` (or without Cairn: ``--no-cairn``, the uninterrupted reference). The backend is the
environment's KERAS_BACKEND. Writes ``CHECKSUM <sha256>`` of every model and optimizer variable
(in path order) to ``--checksum-file``."""

import argparse
import hashlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

SAMPLES, BATCH, FEATURES = 64, 8, 6  # 8 batches an epoch


def build() -> "keras.Model":
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.2, seed=5), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    return model


def data():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype("float32")
    y = np.stack([x[:, :3].sum(1), x[:, 3:].prod(1)], 1).astype("float32")
    return x, y


def checksum(model: "keras.Model") -> str:
    h = hashlib.sha256()
    variables = list(model.variables) + list(model.optimizer.variables)
    for v in sorted(variables, key=lambda v: v.path):
        h.update(v.path.encode())
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v.value)).tobytes())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--save-freq", type=int, default=5)
    p.add_argument("--coordinator")
    p.add_argument("--run-id")
    p.add_argument("--sidecar")
    p.add_argument("--no-cairn", action="store_true")
    p.add_argument("--checksum-file", required=True)
    args = p.parse_args()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    model = build()
    x, y = data()
    callbacks = []
    if not args.no_cairn:
        import cairn
        import cairn.keras

        mgr = cairn.CheckpointManager(args.coordinator, args.run_id, rank=0, world_size=1, sidecar=args.sidecar)
        callback = cairn.keras.CheckpointCallback(mgr, save_freq=args.save_freq)
        callbacks.append(callback)
    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, shuffle=False, verbose=0, callbacks=callbacks)
    if not args.no_cairn:
        print(f"saved steps {callback.saved_steps}, restored {callback.restored_step}", flush=True)
        mgr.close()
    with open(args.checksum_file, "w") as f:
        f.write(checksum(model) + "\n")
    print(f"CHECKSUM {checksum(model)}", flush=True)


if __name__ == "__main__":
    main()
