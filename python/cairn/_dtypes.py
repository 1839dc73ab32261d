"""Entry dtype names (NumPy's), their item sizes, and the NumPy/torch types behind them."""

from __future__ import annotations

from typing import Any, Dict, Optional

ITEMSIZE: Dict[str, int] = {
    "bool": 1,
    "int8": 1, "int16": 2, "int32": 4, "int64": 8,
    "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8,
    "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
    "complex64": 8, "complex128": 16,
    "bytes": 1, "json": 1,
}

# torch dtypes by their attribute name in the torch module -> entry dtype name.
_TORCH_NAMES: Dict[str, str] = {
    "bool": "bool",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8",
    "float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
    "complex64": "complex64", "complex128": "complex128",
}


def itemsize(dtype: str) -> int:
    """Bytes per element of an entry dtype; ValueError for an unknown name."""
    try:
        return ITEMSIZE[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}") from None


def numpy_name(np_dtype: Any) -> Optional[str]:
    """The entry dtype name of a NumPy dtype (any byte order), or None when it has none
    (object, string, structured, datetime arrays)."""
    if np_dtype.fields is not None or np_dtype.subdtype is not None:
        return None
    name = np_dtype.newbyteorder("=").name
    if name in ITEMSIZE and name not in ("bytes", "json"):
        return name
    return None


def numpy_storage_dtype(dtype: str) -> Any:
    """The little-endian NumPy dtype that holds an entry's elements. bfloat16, which NumPy lacks,
    is held as little-endian ``int16`` bit patterns (torch can view those as bfloat16);
    ``bytes``/``json`` as ``uint8``."""
    import numpy as np

    if dtype == "bfloat16":
        return np.dtype("<i2")
    if dtype in ("bytes", "json"):
        return np.dtype("u1")
    if dtype == "bool":
        return np.dtype("?")
    return np.dtype(dtype).newbyteorder("<")


def torch_name(torch_dtype: Any) -> Optional[str]:
    """The entry dtype name of a torch dtype, or None when it has none (quantized types, ...)."""
    return _TORCH_NAMES.get(str(torch_dtype).rpartition(".")[2])


def torch_dtype(dtype: str) -> Any:
    """The torch dtype of an entry dtype name; ValueError when torch has none (uint16..uint64)."""
    import torch

    if dtype not in _TORCH_NAMES.values():
        raise ValueError(f"torch has no dtype {dtype!r}")
    return getattr(torch, dtype)


def torch_same_size_int(dtype: str) -> Any:
    """An integer torch dtype of the same item size, to move bfloat16 bits through NumPy."""
    import torch

    return {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[itemsize(dtype)]
