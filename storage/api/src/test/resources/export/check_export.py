"""Independent reader of a cairn export: checks FILE against what the test expected.

usage: check_export.py FILE safetensors|npz EXPECTED_DIR

EXPECTED_DIR/expected.json is {"tensors": [{"name", "dtype", "shape", "file"}], "metadata": {str: str}}:
every tensor's real dtype (NumPy name, plus "bfloat16"/"bytes"), shape and raw little-endian C-order
bytes in EXPECTED_DIR/<file>, written by the test from the original arrays (not by the exporter).
The safetensors header is parsed here, by hand; npz members are read with numpy.load.
Exit 0 when every tensor's every element and the metadata match, 1 naming the first difference.
"""
import json
import os
import struct
import sys
import zipfile

import numpy as np

SAFETENSORS_DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "U32": "<u4", "I32": "<i4",
    "U64": "<u8", "I64": "<i8", "F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8",
}
NUMPY = {
    "bool": "|b1", "uint8": "|u1", "int8": "|i1", "uint16": "<u2", "int16": "<i2", "uint32": "<u4",
    "int32": "<i4", "uint64": "<u8", "int64": "<i8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
    "complex64": "<c8", "complex128": "<c16",
}


def fail(message):
    print("MISMATCH: " + message)
    sys.exit(1)


def expected_array(spec, directory):
    raw = open(os.path.join(directory, spec["file"]), "rb").read()
    dtype = {"bfloat16": "<u2", "bytes": "|u1"}.get(spec["dtype"], NUMPY.get(spec["dtype"]))
    return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(spec["shape"])


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if (8 + n) % 8 != 0:
        fail("header length %d does not pad the data start to 8 bytes" % n)
    text = data[8:8 + n].decode("utf-8")
    header = json.loads(text.rstrip(" "))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    spans = sorted((tuple(h["data_offsets"]), name) for name, h in header.items())
    at = 0
    for (b, e), name in spans:
        if b != at:
            fail("tensor %s starts at %d, previous ended at %d" % (name, b, at))
        at = e
    if at != len(body):
        fail("tensors end at %d, the data has %d bytes" % (at, len(body)))
    tensors = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        stored = np.frombuffer(body[b:e], dtype=np.dtype(SAFETENSORS_DTYPES[h["dtype"]])).reshape(h["shape"])
        real = metadata.get("cairn.dtype." + name)
        if real in ("complex64", "complex128"):
            if stored.shape[-1] != 2:
                fail("complex tensor %s is not stored with a last dimension of 2" % name)
            stored = np.ascontiguousarray(stored).view(NUMPY[real])[..., 0]
        tensors[name] = (h["dtype"], stored)
    return tensors, metadata


def read_npz(path):
    with zipfile.ZipFile(path) as z:
        metadata = json.loads(z.read("__metadata__.json").decode("utf-8"))
    npz = np.load(path)
    tensors = {}
    for member in npz.files:
        if member == "__metadata__.json":
            continue
        a = npz[member]
        tensors[member] = (a.dtype.str, a)
    return tensors, metadata


def main():
    path, fmt, directory = sys.argv[1:4]
    expected = json.load(open(os.path.join(directory, "expected.json")))
    tensors, metadata = read_safetensors(path) if fmt == "safetensors" else read_npz(path)
    names = [t["name"] for t in expected["tensors"]]
    if sorted(tensors) != sorted(names):
        fail("tensors %s, expected %s" % (sorted(tensors), sorted(names)))
    for spec in expected["tensors"]:
        stored_type, got = tensors[spec["name"]]
        want = expected_array(spec, directory)
        if list(got.shape) != list(spec["shape"]):
            fail("%s has shape %s, expected %s" % (spec["name"], list(got.shape), spec["shape"]))
        if got.dtype.str != want.dtype.str:
            fail("%s has dtype %s (%s), expected %s" % (spec["name"], got.dtype.str, stored_type, want.dtype.str))
        # every element: bitwise (NaN payloads and -0.0 included), then by value where values compare
        if not np.array_equal(got.view(np.uint8) if got.ndim else got.reshape(1).view(np.uint8),
                              want.view(np.uint8) if want.ndim else want.reshape(1).view(np.uint8)):
            fail("%s: elements differ" % spec["name"])
    if metadata != expected["metadata"]:
        fail("metadata %s, expected %s" % (metadata, expected["metadata"]))
    print("ok: %d tensors, %d metadata keys" % (len(names), len(metadata)))


if __name__ == "__main__":
    main()
