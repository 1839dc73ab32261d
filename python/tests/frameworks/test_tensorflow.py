"""cairn.tensorflow in one process against the fake sidecar: a tf.train.Checkpoint's object graph
saved by path and restored in place, an unbuilt Keras optimizer's slots created and filled, a
mismatched or missing variable refused naming it, TF_CONFIG read for rank and world size."""

import json

import numpy as np
import pytest

import cairn
from support import require

tf = require("tensorflow")
keras = require("keras")
ctf = require("cairn.tensorflow")


def _model(width: int = 8):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width, activation="relu"), keras.layers.Dense(1)])


def _train_one_step(model, optimizer):
    x, y = tf.ones((3, 4)), tf.ones((3, 1))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))


def _manager(fake, checkpoint, **kw):
    fake.exit_on_close = False  # one manager after another, as restarted trainers
    return ctf.CheckpointManager(checkpoint, "127.0.0.1:7400", "run", rank=0, world_size=1,
                                 sidecar=fake.socket_path, handle_sigterm=False, **kw)


def _values(variables):
    """The variables' values in order (Keras numbers the names of a second model: "dense_2")."""
    return [np.asarray(v.numpy()).copy() for v in variables]


def test_restore_before_the_first_step_creates_and_fills_the_optimizer_slots(fake):
    keras.utils.set_random_seed(1)
    model, optimizer = _model(), keras.optimizers.Adam(0.01)
    step, rng = tf.Variable(0, dtype=tf.int64), tf.random.Generator.from_seed(5)
    _train_one_step(model, optimizer)
    _train_one_step(model, optimizer)
    step.assign(2)
    rng.normal((3,))
    saved = _values(model.variables + optimizer.variables)
    saved_rng = rng.state.numpy().copy()
    manager = _manager(fake, tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, rng=rng))
    assert manager.save(checkpoint_number=2).result(timeout=30) == 2
    names = set(fake.committed[2]["entries"])
    assert {"model/_functional/_operations/1/_kernel", "optimizer/_iterations", "step", "rng/_state_var",
            "save_counter"} <= names, names
    assert not any("_trainable_variables" in n for n in names), names
    assert sum(n.startswith("optimizer/_variables/") for n in names) == 8  # m and v of 4 variables
    assert manager.latest_checkpoint == 2 and manager.checkpoints == [2]
    manager.close()

    keras.utils.set_random_seed(2)
    fresh_model, fresh_opt = _model(), keras.optimizers.Adam(0.01)
    fresh_step, fresh_rng = tf.Variable(0, dtype=tf.int64), tf.random.Generator.from_seed(9)
    assert not fresh_opt.built
    manager = _manager(fake, tf.train.Checkpoint(model=fresh_model, optimizer=fresh_opt, step=fresh_step, rng=fresh_rng))
    assert manager.restore_or_initialize() == 2
    assert fresh_opt.built
    restored = _values(fresh_model.variables + fresh_opt.variables)
    assert len(restored) == len(saved) == 4 + 2 + 8  # the model's, iterations and learning rate, m and v
    for i, (got, want) in enumerate(zip(restored, saved)):
        np.testing.assert_array_equal(got, want, err_msg=str(i))
    assert int(fresh_step.numpy()) == 2 and int(fresh_opt.iterations.numpy()) == 2
    np.testing.assert_array_equal(fresh_rng.state.numpy(), saved_rng)
    # the next step of the restored pair equals the next step of the original pair
    _train_one_step(model, optimizer)
    _train_one_step(fresh_model, fresh_opt)
    for i, (got, want) in enumerate(zip(_values(fresh_model.variables + fresh_opt.variables),
                                        _values(model.variables + optimizer.variables))):
        np.testing.assert_array_equal(got, want, err_msg=str(i))
    manager.close()


def test_a_mismatched_or_missing_variable_is_refused_naming_it(fake):
    model, optimizer = _model(8), keras.optimizers.Adam()
    _train_one_step(model, optimizer)
    with _manager(fake, tf.train.Checkpoint(model=model, step=tf.Variable(3, dtype=tf.int64))) as manager:
        manager.save(checkpoint_number=3).result(timeout=30)

    with _manager(fake, tf.train.Checkpoint(model=_model(5), step=tf.Variable(0, dtype=tf.int64))) as manager:
        with pytest.raises(cairn.RestoreError, match=r"^entry 'model/_functional/_operations/1/_kernel': "
                                                     r"checkpoint has float32\[4, 8\], state has float32\[4, 5\]$"):
            manager.restore()
    with _manager(fake, tf.train.Checkpoint(model=_model(8), step=tf.Variable(0, dtype=tf.int32))) as manager:
        with pytest.raises(cairn.RestoreError, match=r"^entry 'step': checkpoint has int64\[\], state has int32\[\]$"):
            manager.restore()
    extra = tf.train.Checkpoint(model=_model(8), step=tf.Variable(0, dtype=tf.int64), epoch=tf.Variable(0))
    with _manager(fake, extra) as manager:
        with pytest.raises(cairn.RestoreError, match=r"^entry 'epoch' is not in checkpoint step 3"):
            manager.restore()
        assert manager.restore(partial=True) == 3


def test_a_data_iterator_is_refused_naming_it(fake):
    iterator = iter(tf.data.Dataset.range(4))
    with _manager(fake, tf.train.Checkpoint(data=iterator)) as manager:
        with pytest.raises(cairn.UnsupportedLeaf, match=r"^entry 'data': a .* holds state that only TensorFlow"):
            manager.save(checkpoint_number=1)


def test_rank_and_world_size_come_from_tf_config(monkeypatch):
    cluster = {"chief": ["h:1"], "worker": ["h:2", "h:3"], "evaluator": ["h:4"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert ctf.worker_of() == (2, 3)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert ctf.worker_of() == (0, 3)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "evaluator", "index": 0}}))
    with pytest.raises(cairn.CairnError, match="evaluator:0 is not a chief or worker"):
        ctf.worker_of()
    monkeypatch.delenv("TF_CONFIG")
    assert ctf.worker_of() == (0, 1)
