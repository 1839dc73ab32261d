import pytest

from cairn._dtypes import ITEMSIZE, itemsize, numpy_name, numpy_storage_dtype, torch_dtype, torch_name


def test_itemsizes_of_the_protocol_dtypes():
    assert itemsize("float32") == 4 and itemsize("bfloat16") == 2 and itemsize("complex128") == 16
    assert itemsize("json") == 1 and itemsize("bytes") == 1
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        itemsize("float8")


def test_numpy_names_ignore_byte_order_and_refuse_non_numeric():
    np = pytest.importorskip("numpy")
    assert numpy_name(np.dtype(">f4")) == "float32"
    assert numpy_name(np.dtype("<i8")) == "int64"
    assert numpy_name(np.dtype("?")) == "bool"
    for bad in ("O", "U3", "S2", "M8[s]", [("a", "i4")]):
        assert numpy_name(np.dtype(bad)) is None


def test_every_numeric_numpy_dtype_maps_to_itself_with_the_same_itemsize():
    np = pytest.importorskip("numpy")
    for name, size in ITEMSIZE.items():
        if name in ("bytes", "json", "bfloat16"):
            continue
        assert numpy_name(np.dtype(name)) == name
        assert numpy_storage_dtype(name).itemsize == size
        assert numpy_storage_dtype(name).byteorder in ("<", "|", "=")


def test_torch_dtypes_map_both_ways():
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.uint8, torch.complex64):
        name = torch_name(dtype)
        assert torch_dtype(name) is dtype
        assert itemsize(name) == torch.empty((), dtype=dtype).element_size()
    assert torch_name(torch.quint8) is None
    with pytest.raises(ValueError, match="torch has no dtype 'uint32'"):
        torch_dtype("uint32")
