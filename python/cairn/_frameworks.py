"""Framework leaves the core stores as typed arrays: a ``tf.Variable`` (a ``ResourceVariable``, a
``MirroredVariable``'s value, a ``SyncOnRead`` variable's aggregated value), a TensorFlow
``EagerTensor``, a ``keras.Variable`` (any backend) and a ``jax.Array``.

The frameworks are found through ``sys.modules`` only: nothing here imports TensorFlow, Keras or
JAX, so a leaf of one of them exists only when the trainer imported it. On save each becomes a NumPy
array read at copy time (dtype/shape by their NumPy names; bfloat16 through ``ml_dtypes`` as the
core's bfloat16 entries). On restore a variable is assigned in place (``assign``); an immutable
value (an ``EagerTensor``, a ``jax.Array``) is replaced in its container by a new value of the same
kind on the same device (for JAX: the same sharding)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._dtypes import ITEMSIZE, itemsize, numpy_name
from ._shm import SharedFile
from .errors import RestoreError, UnsupportedLeaf

KERAS_VARIABLE, TF_VARIABLE, TF_TENSOR, JAX_ARRAY = "keras.Variable", "tf.Variable", "tf.Tensor", "jax.Array"


def kind(value: Any) -> Optional[str]:
    """Which framework leaf ``value`` is, or None."""
    keras = sys.modules.get("keras")
    if keras is not None:
        variable = getattr(keras, "Variable", None)
        if isinstance(variable, type) and isinstance(value, variable):
            return KERAS_VARIABLE
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        if isinstance(value, getattr(tf, "Variable", ())):
            return TF_VARIABLE
        if isinstance(value, getattr(tf, "Tensor", ())) and hasattr(value, "numpy"):
            return TF_TENSOR
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(value, getattr(jax, "Array", ())):
        return JAX_ARRAY
    return None


def _dtype_name(value: Any, what: str) -> Optional[str]:
    """The entry dtype name of a framework leaf's dtype, or None when it has none."""
    import numpy as np

    dtype = getattr(value, "dtype", None)
    if what in (TF_VARIABLE, TF_TENSOR) and hasattr(dtype, "as_numpy_dtype"):
        dtype = dtype.as_numpy_dtype
    if isinstance(dtype, str):  # keras.Variable: "float32", "bfloat16", ...
        return dtype if dtype in ITEMSIZE and dtype not in ("bytes", "json") else None
    try:
        return numpy_name(np.dtype(dtype))
    except TypeError:
        return None


def _keras_numpy(value: Any) -> Any:
    import numpy as np

    inner = getattr(value, "value", value)
    if hasattr(inner, "numpy"):
        return np.asarray(inner.numpy())
    return np.asarray(inner)


def to_numpy(value: Any, what: str) -> Any:
    """The value's elements as a NumPy array (a TF variable's read value: for a SyncOnRead
    variable, its aggregate; under a strategy, the primary copy of a mirrored one)."""
    import numpy as np

    if what == KERAS_VARIABLE:
        return _keras_numpy(value)
    if what in (TF_VARIABLE, TF_TENSOR):
        return np.asarray(value.numpy())
    if not getattr(value, "is_fully_addressable", True):
        raise UnsupportedLeaf("a jax.Array that is not fully addressable from this process cannot be stored whole; "
                              "save this process's shards as cairn.Shard leaves")
    return np.asarray(value)


def entry_type(value: Any, what: str, name: str) -> Tuple[str, Tuple[int, ...]]:
    """(entry dtype name, shape) of a framework leaf, without reading its elements."""
    dtype = _dtype_name(value, what)
    if dtype is None:
        raise UnsupportedLeaf(f"entry '{name}': a {what} of dtype {getattr(value, 'dtype', '?')} cannot be stored "
                              "(numeric and bool only)")
    shape = getattr(value, "shape", ())
    if any(d is None for d in shape):
        raise UnsupportedLeaf(f"entry '{name}': a {what} of unknown shape {list(shape)} cannot be stored")
    return dtype, tuple(int(d) for d in shape)


def leaf_items(name: str, value: Any, rep: bool, item_type: Any) -> Optional[List[Any]]:
    """The one entry of a framework leaf (its elements read when they are copied), or None when
    ``value`` is no framework leaf. ``item_type`` is the core's ``Item``."""
    what = kind(value)
    if what is None:
        return None
    import numpy as np

    dtype, shape = entry_type(value, what, name)
    length = itemsize(dtype) * int(np.prod(shape, dtype=np.int64))

    def write(shm: SharedFile, off: int) -> None:
        if not length:
            return
        try:
            arr = to_numpy(value, what)
        except UnsupportedLeaf as e:
            raise UnsupportedLeaf(f"entry '{name}': {e}") from None
        if numpy_name(arr.dtype) != dtype or tuple(arr.shape) != shape:
            raise UnsupportedLeaf(f"entry '{name}': the {what} changed to {arr.dtype}{list(arr.shape)} while saved")
        if dtype == "bfloat16":
            arr = arr.view(np.int16)
        np.copyto(shm.array(off, dtype, shape), arr, casting="equiv")

    return [item_type(name, dtype, shape, length, rep, None, write)]


def _decoded(view: Any, dtype: str) -> Any:
    """A fresh NumPy copy of an entry's elements in their own dtype (bfloat16 via ml_dtypes)."""
    import numpy as np

    arr = np.array(view, copy=True)
    if dtype == "bfloat16":
        import ml_dtypes

        arr = arr.view(ml_dtypes.bfloat16)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _new_value(old: Any, what: str, arr: Any) -> Any:
    if what == TF_TENSOR:
        import tensorflow as tf

        with tf.device(old.device):
            return tf.identity(tf.convert_to_tensor(arr, dtype=old.dtype))
    import jax

    sharding = getattr(old, "sharding", None)
    return jax.device_put(arr, sharding) if sharding is not None else jax.device_put(arr)


def plan(name: str, value: Any, entries: Dict[str, Dict[str, Any]], need: Callable[..., bool],
         view: Callable[[Dict[str, Any], int], Any], replace: Callable[[Any], None]) -> bool:
    """Plans the restore of a framework leaf: checks its dtype/shape against the checkpoint's entry
    and registers how to fill it. False when ``value`` is no framework leaf."""
    what = kind(value)
    if what is None:
        return False
    dtype, shape = entry_type(value, what, name)
    meta = entries.get(name)
    if meta is not None:
        have = (str(meta.get("dtype")), tuple(int(d) for d in meta.get("shape") or ()))
        if have != (dtype, shape):
            raise RestoreError(f"entry '{name}': checkpoint has {have[0]}{list(have[1])}, state has {dtype}{list(shape)}")

    def fill(meta: Dict[str, Any], off: int) -> None:
        arr = _decoded(view(meta, off), dtype)
        if what in (TF_VARIABLE, KERAS_VARIABLE):
            value.assign(arr)
        else:
            replace(_new_value(value, what, arr))

    need(name, fill)
    return True
