import pytest

import cairn
from cairn._tree import escape_segment, flatten


def test_flatten_names_leaves_by_key_path_in_order():
    state = {"model": {"w": 1, "b": 2}, "steps": [10, {"x": 3}], "t": (4, 5)}
    leaves = flatten(state)
    assert [leaf.name for leaf in leaves] == ["model/w", "model/b", "steps/0", "steps/1/x", "t/0", "t/1"]
    assert [leaf.value for leaf in leaves] == [1, 2, 10, 3, 4, 5]


def test_replace_puts_the_value_back_where_the_leaf_sits():
    state = {"a": {"b": 1}, "l": [1, 2]}
    leaves = flatten(state)
    leaves[0].replace(7)
    leaves[2].replace(9)
    assert state == {"a": {"b": 7}, "l": [1, 9]}


def test_a_leaf_inside_a_tuple_cannot_be_replaced():
    leaf = flatten({"t": (1,)})[0]
    with pytest.raises(TypeError, match="entry 't/0'.*tuple"):
        leaf.replace(2)


def test_replicated_marks_every_leaf_under_it():
    state = {"mirror": cairn.replicated({"a": 1, "b": [2]}), "own": 3}
    marks = {leaf.name: leaf.replicated for leaf in flatten(state)}
    assert marks == {"mirror/a": True, "mirror/b/0": True, "own": None}


def test_shard_is_one_leaf_with_its_layout():
    np = pytest.importorskip("numpy")
    piece = np.zeros((2, 3), np.float32)
    leaf = flatten({"w": cairn.Shard(piece, (8, 3), (4, 0))})[0]
    assert leaf.name == "w" and leaf.value is piece and leaf.replicated is False
    assert leaf.shard.global_shape == (8, 3) and leaf.shard.offsets == (4, 0)


def test_shard_outside_its_global_shape_is_refused():
    np = pytest.importorskip("numpy")
    with pytest.raises(ValueError, match="dimension 0: offset 7 \\+ size 2 lies outside global size 8"):
        cairn.Shard(np.zeros((2, 3)), (8, 3), (7, 0))
    with pytest.raises(ValueError, match="needs 2 global dims"):
        cairn.Shard(np.zeros((2, 3)), (8,), (0,))


def test_a_replicated_shard_is_refused():
    np = pytest.importorskip("numpy")
    with pytest.raises(ValueError, match="entry 'w': a cairn.Shard cannot be replicated"):
        flatten(cairn.replicated({"w": cairn.Shard(np.zeros(2), (4,), (0,))}))


@pytest.mark.parametrize("key, segment", [("a/b", "a%2Fb"), ("50%", "50%25"), ("", "%00"), (".", "%2E"),
                                          ("..", "%2E%2E"), (3, "3"), ("layer1.weight", "layer1.weight")])
def test_segments_are_escaped_into_valid_entry_names(key, segment):
    assert escape_segment(key) == segment


def test_keys_that_escape_to_the_same_name_are_refused():
    with pytest.raises(ValueError, match="entry '1': two keys map to the same entry name"):
        flatten({1: "a", "1": "b"})


def test_control_characters_in_keys_are_refused():
    with pytest.raises(ValueError, match="control characters"):
        flatten({"a\nb": 1})


def test_non_string_keys_are_refused():
    with pytest.raises(TypeError, match=r"dict key \(1, 2\)"):
        flatten({(1, 2): 1})


def test_the_state_must_be_a_container():
    with pytest.raises(TypeError, match="state must be a dict"):
        flatten(3)
