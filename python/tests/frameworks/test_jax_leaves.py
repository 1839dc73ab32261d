"""jax.Array leaves (cairn._frameworks) against the fake sidecar: a typed entry on save; restored
as a new jax.Array on the same sharding, put in the leaf's container."""

import numpy as np
import pytest

import cairn
from support import require

jax = require("jax")
jnp = require("jax.numpy")


def test_a_jax_array_round_trips_on_its_sharding(fake, manager):
    x = jnp.arange(12, dtype=jnp.float32).reshape(3, 4)
    h = jnp.array([1.0, 2.5], dtype=jnp.bfloat16)
    state = {"params": {"x": x, "h": h}}
    manager.save(5, state).result(timeout=30)
    entries = {n: (m["dtype"], m["shape"]) for n, (m, _) in fake.committed[5]["entries"].items()}
    assert entries == {"params/x": ("float32", [3, 4]), "params/h": ("bfloat16", [2])}
    state["params"]["x"] = jnp.zeros((3, 4), jnp.float32)
    state["params"]["h"] = jnp.zeros((2,), jnp.bfloat16)
    assert manager.restore_latest(state) == 5
    restored = state["params"]["x"]
    assert isinstance(restored, jax.Array) and restored.sharding == x.sharding
    np.testing.assert_array_equal(np.asarray(restored), np.arange(12, dtype="float32").reshape(3, 4))
    assert state["params"]["h"].dtype == jnp.bfloat16 and np.asarray(state["params"]["h"], "float32").tolist() == [1.0, 2.5]


def test_a_jax_array_of_another_shape_is_refused_naming_it(manager):
    manager.save(1, {"x": jnp.zeros((2, 2))}).result(timeout=30)
    with pytest.raises(cairn.RestoreError, match=r"^entry 'x': checkpoint has float32\[2, 2\], state has float32\[4\]$"):
        manager.restore_latest({"x": jnp.zeros((4,))})
