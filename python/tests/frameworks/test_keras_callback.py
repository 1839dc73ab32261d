"""cairn.keras.CheckpointCallback in the test process (Keras' default TensorFlow backend) against the
fake sidecar: what a save holds (entries named by the variables' paths, the position), the
optimizer built before a restore into a fresh model, and the one-line refusals naming the variable."""

import numpy as np
import pytest

import cairn
from support import require

keras = require("keras")
import cairn.keras  # noqa: E402


def _model(units: int = 8, features: int = 4):
    keras.backend.clear_session()  # names (and so paths) as in a fresh process
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(units, activation="relu", name="hidden"),
                              keras.layers.Dense(1, name="out")], name="net")
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _data(n: int = 16, features: int = 4):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, features)).astype("float32"), rng.standard_normal((n, 1)).astype("float32")


def test_a_save_holds_every_variable_by_path_and_the_position(fake, manager):
    model = _model()
    callback = cairn.keras.CheckpointCallback(manager, save_freq=3)
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    assert callback.saved_steps == [3, 6, 8]  # every 3 batches, and the end of training
    entries = fake.committed[8]["entries"]
    names = set(entries)
    assert {"model/net/hidden/kernel", "model/net/hidden/bias", "model/net/out/kernel",
            "optimizer/sgd/iteration", "optimizer/sgd/net_hidden_kernel_momentum", "keras/position"} <= names
    assert names == ({f"model/{v.path}" for v in model.variables} | {f"optimizer/{v.path}" for v in model.optimizer.variables}
                     | {"keras/position"})
    meta, raw = entries["model/net/hidden/kernel"]
    assert (meta["dtype"], meta["shape"]) == ("float32", [4, 8])
    assert raw == np.ascontiguousarray(model.get_layer("hidden").kernel.numpy()).tobytes()
    assert np.frombuffer(entries["keras/position"][1], "<i8").tolist() == [2, 0, 8]  # epoch 2, batch 0, step 8
    assert fake.committed[3]["metadata"] == {"epoch": 0, "batch": 3}


def test_a_fresh_model_is_restored_with_its_optimizer_built_first(fake, manager):
    trained, x_y = _model(), _data()
    trained.fit(*x_y, batch_size=4, epochs=1, shuffle=False, verbose=0,
                callbacks=[cairn.keras.CheckpointCallback(manager, save_freq=None)])
    fresh = _model()
    fresh.get_layer("hidden").kernel.assign(np.zeros((4, 8), "float32"))
    callback = cairn.keras.CheckpointCallback(manager, save_freq=None, save_at_end=False)
    history = fresh.fit(*x_y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert callback.restored_step == 4 and history.history == {}  # epoch 0 was done: nothing trained
    assert fresh.optimizer.built
    for a, b in zip(trained.variables + trained.optimizer.variables, fresh.variables + fresh.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_a_variable_of_another_shape_is_refused_naming_it(manager):
    _model(units=8).fit(*_data(), batch_size=8, epochs=1, verbose=0,
                        callbacks=[cairn.keras.CheckpointCallback(manager)])
    wider = _model(units=9)
    with pytest.raises(cairn.RestoreError,
                       match=r"^entry 'model/net/hidden/kernel': checkpoint has float32\[4, 8\], state has float32\[4, 9\]$"):
        wider.fit(*_data(), batch_size=8, epochs=1, verbose=0, callbacks=[cairn.keras.CheckpointCallback(manager)])


def test_a_variable_the_checkpoint_lacks_is_refused_naming_it(manager):
    _model().fit(*_data(), batch_size=8, epochs=1, verbose=0, callbacks=[cairn.keras.CheckpointCallback(manager)])
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    deeper = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                               keras.layers.Dense(3, name="extra"), keras.layers.Dense(1, name="out")], name="net")
    deeper.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    with pytest.raises(cairn.RestoreError, match=r"'model/net/extra/kernel'"):
        deeper.fit(*_data(), batch_size=8, epochs=1, verbose=0, callbacks=[cairn.keras.CheckpointCallback(manager)])


def test_bad_arguments_are_refused(manager):
    with pytest.raises(ValueError, match="save_freq"):
        cairn.keras.CheckpointCallback(manager, save_freq=0)
    with pytest.raises(ValueError, match="run_id"):
        cairn.keras.CheckpointCallback("127.0.0.1:7400")
    with pytest.raises(ValueError, match="with an address"):
        cairn.keras.CheckpointCallback(manager, run_id="r")


def test_the_coordinator_decides_saves_and_monitor_goes_in_the_metadata(fake, manager):
    fake.due_steps = {2, 5}
    callback = cairn.keras.CheckpointCallback(manager, save_freq=None, save_at_end=False, monitor="loss")
    _model().fit(*_data(), batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    assert callback.saved_steps == [2, 5]
    meta = fake.committed[5]["metadata"]
    assert (meta["epoch"], meta["batch"]) == (1, 1) and isinstance(meta["loss"], float) and meta["loss"] > 0


def test_a_preemption_saves_waits_for_the_commit_and_stops_training(fake, manager):
    class Preempt(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                manager.request_preemption()  # what SIGTERM does

    callback = cairn.keras.CheckpointCallback(manager, save_freq=None)
    _model().fit(*_data(), batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[Preempt(), callback])
    assert callback.preempted and manager.preempted
    assert callback.saved_steps == [3] and callback.step == 3  # saved at the step asked, then stopped
    assert 3 in fake.committed and np.frombuffer(fake.committed[3]["entries"]["keras/position"][1], "<i8").tolist() == [0, 3, 3]
