import random

import pytest

import cairn
from cairn import _codec as codec
from cairn._tree import flatten


def items(state, rep=False):
    out = []
    for leaf in flatten(state):
        out.extend(codec.leaf_items(leaf, rep))
    return out


def test_scalars_and_strings_are_json_entries():
    got = {i.name: (i.dtype, i.shape, i.length) for i in items({"epoch": 3, "name": "rün", "lr": 0.5, "x": None})}
    assert got == {"epoch": ("json", (1,), 1), "name": ("json", (6,), 6), "lr": ("json", (3,), 3), "x": ("json", (4,), 4)}


def test_non_finite_floats_survive_json():
    for value in (float("nan"), float("inf"), -float("inf")):
        back = codec.loads(codec.dumps(value))
        assert repr(back) == repr(value)


def test_an_unsupported_leaf_is_named():
    with pytest.raises(cairn.UnsupportedLeaf, match=r"entry 'opt/extra': a builtins.set cannot be stored"):
        items({"opt": {"extra": {1, 2}}})
    assert issubclass(cairn.UnsupportedLeaf, TypeError)


def test_object_arrays_are_refused_by_name():
    np = pytest.importorskip("numpy")
    with pytest.raises(cairn.UnsupportedLeaf, match="entry 'names': NumPy dtype object cannot be stored"):
        items({"names": np.array(["a", None], dtype=object)})


def test_array_entries_carry_dtype_shape_and_length():
    np = pytest.importorskip("numpy")
    (item,) = items({"w": np.zeros((4, 3), dtype=">f8")}, rep=True)
    assert (item.dtype, item.shape, item.length, item.replicated) == ("float64", (4, 3), 96, True)
    assert item.describe(128) == {"name": "w", "offset": 128, "length": 96, "dtype": "float64",
                                  "shape": [4, 3], "replicated": True}


def test_shard_entries_describe_their_global_layout():
    np = pytest.importorskip("numpy")
    (item,) = items({"w": cairn.Shard(np.zeros((4, 3), np.float32), (8, 3), (4, 0))})
    assert item.describe(0)["global_shape"] == [8, 3] and item.describe(0)["global_offsets"] == [4, 0]


def test_a_state_dict_object_is_a_structure_entry_plus_its_tensors():
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    got = {i.name: (i.dtype, i.shape) for i in items({"model": model, "opt": opt})}
    assert got["model/weight"] == ("float32", (2, 3)) and got["model/bias"] == ("float32", (2,))
    assert got["opt/state/0/exp_avg"] == ("float32", (2, 3))
    assert got["model/.state_dict"][0] == "json" and got["opt/.state_dict"][0] == "json"


def test_structure_rebuilds_keys_types_and_containers():
    np = pytest.importorskip("numpy")
    sd = {"state": {0: {"m": np.arange(3.0)}}, "groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 1]}]}
    out = []
    structure = codec._skeleton(sd, "opt", "", False, out)
    structure = codec.loads(codec.dumps(structure))  # as stored
    assert codec.referenced(structure) == [("state/0/m", False)]
    rebuilt = codec.rebuild(structure, {"state/0/m": "M"})
    assert rebuilt == {"state": {0: {"m": "M"}}, "groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 1]}]}


def test_generators_are_entries_of_their_state():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    got = {i.name: i.dtype for i in items({"np": np.random.default_rng(1), "torch": torch.Generator(),
                                           "py": random.Random(2)})}
    assert got == {"np": "json", "torch": "uint8", "py": "json"}
