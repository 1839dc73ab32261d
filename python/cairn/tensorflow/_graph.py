"""A trackable's object graph as a Cairn state: every variable reachable from the root, named by
its object-graph path (the names ``tf.train.list_variables`` shows, without
``/.ATTRIBUTES/VARIABLE_VALUE``), mirrored when it is a distributed variable."""

from __future__ import annotations

import sys
from collections import deque
from typing import Any, Dict, List, Optional, Tuple

from .._tree import Replicated
from ..errors import UnsupportedLeaf


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _keras_variable_type() -> Optional[type]:
    keras = sys.modules.get("keras")
    variable = getattr(keras, "Variable", None) if keras is not None else None
    return variable if isinstance(variable, type) else None


def is_variable(obj: Any) -> bool:
    """A ``tf.Variable`` (any kind) or a ``keras.Variable``."""
    keras_variable = _keras_variable_type()
    return isinstance(obj, _tf().Variable) or (keras_variable is not None and isinstance(obj, keras_variable))


def tf_variable(obj: Any) -> Any:
    """The TensorFlow variable behind ``obj`` (a keras.Variable's ``_value``)."""
    keras_variable = _keras_variable_type()
    if keras_variable is not None and isinstance(obj, keras_variable):
        return getattr(obj, "_value", obj)
    return obj


def is_distributed(obj: Any) -> bool:
    """A ``MirroredVariable`` or ``SyncOnReadVariable`` (the same value on every worker, as TF reads it)."""
    return isinstance(tf_variable(obj), _tf().distribute.DistributedValues)


def _is_optimizer(obj: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.optimizers.Optimizer)


# A Keras optimizer's references to the variables it updates (the model's), not its own state: a
# path through them would name a model's kernel "optimizer/_trainable_variables/0" once the
# optimizer is built and "model/..." before, so a checkpoint saved before the first step would not
# restore after it.
_OPTIMIZER_REFERENCES = ("_trainable_variables", "_trainable_variables_indices")


def objects(root: Any) -> List[Tuple[str, Tuple[str, ...], Any]]:
    """(path, path segments, object) of every object reachable from ``root``, breadth first along
    the checkpoint dependencies ``tf.train.Checkpoint`` follows (shortest path first, children in
    TF's order), skipping a Keras optimizer's references to the variables it updates."""
    from tensorflow.python.checkpoint import graph_view

    view = graph_view.ObjectGraphView(root)
    seen = {id(root)}
    queue: "deque[Tuple[Tuple[str, ...], Any]]" = deque([((), root)])
    out: List[Tuple[str, Tuple[str, ...], Any]] = []
    while queue:
        segments, obj = queue.popleft()
        skip = _OPTIMIZER_REFERENCES if _is_optimizer(obj) else ()
        for ref in view.list_children(obj):
            child = ref.ref
            if ref.name in skip or id(child) in seen:
                continue
            seen.add(id(child))
            path = segments + (ref.name,)
            out.append(("/".join(path), path, child))
            queue.append((path, child))
    return out


def variables(root: Any) -> List[Tuple[str, Tuple[str, ...], Any]]:
    """The variables of ``root``'s object graph; UnsupportedLeaf for an object that holds state
    TensorFlow serializes itself but that is no variable (a tf.data iterator, a lookup table)."""
    from tensorflow.python.training.saving import saveable_object_util

    out = []
    for path, segments, obj in objects(root):
        if is_variable(obj):
            out.append((path, segments, obj))
        elif saveable_object_util.trackable_has_serialize_to_tensor(obj):
            raise UnsupportedLeaf(
                f"entry '{path}': a {type(obj).__module__}.{type(obj).__qualname__} holds state that only TensorFlow can "
                "serialize; keep its position in a tf.Variable (e.g. the step a data pipeline is a function of)")
    return out


def state_of(root: Any) -> Tuple[Dict[str, Any], int]:
    """The nested state of ``root``'s variables (distributed ones marked mirrored) and their count."""
    state: Dict[str, Any] = {}
    found = variables(root)
    for path, segments, var in found:
        node = state
        for segment in segments[:-1]:
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                raise UnsupportedLeaf(f"entry '{path}': its parent is itself a variable")
            node = child
        node[segments[-1]] = Replicated(var) if is_distributed(var) else var
    return state, len(found)


def strategy_of(root: Any) -> Any:
    """The ``tf.distribute`` strategy of the first distributed variable of the graph, or None."""
    for _, _, var in objects(root):
        if not is_variable(var):
            continue
        inner = tf_variable(var)
        if isinstance(inner, _tf().distribute.DistributedValues):
            return getattr(inner, "distribute_strategy", None)
    return None


def unbuilt_optimizers(root: Any) -> List[Tuple[str, Any]]:
    """Keras optimizers of the graph that have no variables yet (before their first step)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return []
    return [(path, obj) for path, _, obj in objects(root)
            if _is_optimizer(obj) and not getattr(obj, "built", True)]


def trainable_variables(root: Any) -> List[Any]:
    """The trainable variables of the Keras models/layers directly under ``root``, in graph order:
    what a custom loop's ``apply_gradients(zip(grads, model.trainable_variables))`` builds with."""
    keras = sys.modules.get("keras")
    out: List[Any] = []
    seen = set()
    if keras is None:
        return out
    for _, segments, obj in objects(root):
        if len(segments) == 1 and isinstance(obj, keras.layers.Layer):
            for var in obj.trainable_variables:
                if id(var) not in seen:
                    seen.add(id(var))
                    out.append(var)
    return out
