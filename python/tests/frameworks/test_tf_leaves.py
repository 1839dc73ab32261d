"""tf.Variable, EagerTensor and keras.Variable leaves in a plain cairn.CheckpointManager state
(cairn._frameworks), against the fake sidecar: typed entries on save, restored in place (variables)
or replaced by a new value of the same kind (tensors); mismatches name the entry."""

import numpy as np
import pytest

import cairn
from support import require

tf = require("tensorflow")
keras = require("keras")


def test_variables_and_tensors_become_typed_entries_and_restore(fake, manager):
    state = {"w": tf.Variable(np.arange(6, dtype="float32").reshape(2, 3)),
             "b16": tf.Variable(tf.constant([1.5, -2.0, 3.25], tf.bfloat16)),
             "step": tf.Variable(7, dtype=tf.int64),
             "t": tf.constant([[1, 2], [3, 4]], tf.int32),
             "k": keras.Variable(np.full((4,), 0.5, "float64"))}
    manager.save(3, state).result(timeout=30)
    entries = {n: meta for n, (meta, _) in fake.committed[3]["entries"].items()}
    assert {n: (m["dtype"], m["shape"]) for n, m in entries.items()} == {
        "w": ("float32", [2, 3]), "b16": ("bfloat16", [3]), "step": ("int64", []), "t": ("int32", [2, 2]),
        "k": ("float64", [4])}
    assert fake.committed[3]["entries"]["w"][1] == np.arange(6, dtype="<f4").tobytes()

    w, b16 = state["w"], state["b16"]
    w.assign(tf.zeros((2, 3)))
    b16.assign(tf.zeros((3,), tf.bfloat16))
    state["step"].assign(0)
    state["t"] = tf.zeros((2, 2), tf.int32)
    state["k"].assign(np.zeros(4))
    assert manager.restore_latest(state) == 3
    assert state["w"] is w and state["b16"] is b16  # in place
    np.testing.assert_array_equal(w.numpy(), np.arange(6, dtype="float32").reshape(2, 3))
    assert b16.numpy().tolist() == [1.5, -2.0, 3.25] and b16.dtype == tf.bfloat16
    assert int(state["step"].numpy()) == 7
    assert isinstance(state["t"], tf.Tensor) and state["t"].numpy().tolist() == [[1, 2], [3, 4]]
    assert state["k"].numpy().tolist() == [0.5] * 4


def test_a_mismatched_variable_is_refused_naming_it(manager):
    manager.save(1, {"model": {"w": tf.Variable(tf.zeros((2, 3)))}}).result(timeout=30)
    with pytest.raises(cairn.RestoreError, match=r"^entry 'model/w': checkpoint has float32\[2, 3\], state has float64\[2, 3\]$"):
        manager.restore_latest({"model": {"w": tf.Variable(tf.zeros((2, 3), tf.float64))}})
    with pytest.raises(cairn.RestoreError, match=r"^entry 'model/w': checkpoint has float32\[2, 3\], state has float32\[3, 2\]$"):
        manager.restore_latest({"model": {"w": tf.Variable(tf.zeros((3, 2)))}})


def test_a_string_variable_cannot_be_stored(manager):
    with pytest.raises(cairn.UnsupportedLeaf, match="entry 's'"):
        manager.save(1, {"s": tf.Variable("text")})
