"""Issue #17 item 5: a Keras model trained with cairn.keras.CheckpointCallback (its own manager and
sidecar, a real coordinator), exported by ``java -jar cairn.jar export`` to safetensors (and npz),
loads by entry name into a FRESH Keras model (cairn.keras.load_exported) that then predicts exactly
what the trained model predicts; a model of another shape is refused naming the variable."""

import json
import subprocess

import numpy as np
import pytest

import cairn
import real_cluster
from real_cluster import coordinator
from support import require

keras = require("keras")
require("safetensors")
import cairn.keras  # noqa: E402

pytestmark = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


def _model(seed: int, units: int = 12):
    keras.backend.clear_session()  # a fresh model: the names (so the paths) a new process gives it
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(units, activation="tanh"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _export(storage, to, fmt: str) -> dict:
    done = subprocess.run(["java", "-Xmx256m", "-jar", str(real_cluster.JAR), "export", "--storage", f"file://{storage}",
                           "--to", str(to), "--format", fmt, "--json", "-q"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(300)
def test_an_exported_run_loads_into_a_fresh_keras_model_by_name(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 5)).astype("float32")
    y = rng.standard_normal((40, 3)).astype("float32")
    trained = _model(seed=1)
    with coordinator(tmp_path, 1, "keras-export") as (address, storage):
        callback = cairn.keras.CheckpointCallback(address, "keras-export", save_freq="epoch")
        trained.fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0, callbacks=[callback])
    assert callback.saved_steps == [4, 8, 12] and callback.manager is None  # its own manager, closed at the end
    expected = trained.predict(x, verbose=0)

    report = _export(storage, tmp_path / "model.safetensors", "safetensors")
    assert report["step"] == 12
    _export(storage, tmp_path / "model.npz", "npz")
    for file in ("model.safetensors", "model.npz"):
        fresh = _model(seed=2)
        assert not np.array_equal(fresh.predict(x, verbose=0), expected)
        loaded = cairn.keras.load_exported(fresh, tmp_path / file)
        assert sorted(loaded) == sorted(f"model/{v.path}" for v in fresh.variables)
        np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)

    other = _model(seed=2, units=13)
    before = [v.numpy().copy() for v in other.variables]
    with pytest.raises(cairn.RestoreError, match=r"^variable 'sequential/dense/kernel': the file has float32\[5, 12\], "
                                                 r"the model has float32\[5, 13\]$"):
        cairn.keras.load_exported(other, tmp_path / "model.safetensors")
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, other.variables))  # nothing assigned
