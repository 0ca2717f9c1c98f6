"""An independent reader: what the schema's generated bindings say a file holds.

The bindings (``ai_edge_litert.schema_py_generated``, the newest, and the older
``tflite`` package) follow offsets without bounds checks, so on a damaged file
they may raise anything or read garbage.  :func:`describe` returns their view of
every tensor, or None for a part they cannot read; tests compare the reader
with it wherever the reader succeeds.  The numpy type of each tensor type is
written here from the schema's comments, not taken from the package.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

#: TensorType name -> the numpy dtype its stored bytes are (little-endian, row-major)
STORED_DTYPES = {
    "FLOAT32": "<f4", "FLOAT16": "<f2", "INT32": "<i4", "UINT8": "u1", "INT64": "<i8",
    "BOOL": "?", "INT16": "<i2", "COMPLEX64": "<c8", "INT8": "i1", "FLOAT64": "<f8",
    "COMPLEX128": "<c16", "UINT64": "<u8", "UINT32": "<u4", "UINT16": "<u2",
    "BFLOAT16": ml_dtypes.bfloat16, "FLOAT8_E4M3FN": ml_dtypes.float8_e4m3fn,
    "FLOAT8_E5M2": ml_dtypes.float8_e5m2,
}


def _names(enum_cls) -> "dict[int, str]":
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _guard(fn):
    try:
        return fn()
    except Exception:  # the bindings do not check bounds: any error means unreadable
        return None


def _ints(has_len, as_numpy) -> "tuple[int, ...]":
    return tuple(as_numpy().tolist()) if has_len() else ()


def describe_tensor(S, model, rsg, index: int) -> "dict | None":
    """The bindings' view of one tensor (None when they cannot read it)."""
    types = _names(S.TensorType)

    def read():
        rt = rsg.Tensors(index)
        d = {
            "name": (rt.Name() or b""),
            "shape": _ints(rt.ShapeLength, rt.ShapeAsNumpy),
            "type_code": rt.Type(),
            "type": types.get(rt.Type()),
            "buffer": rt.Buffer(),
            "is_variable": bool(rt.IsVariable()),
            "quantization": None,
            "data": None,
            "sparse": rt.Sparsity() is not None,
        }
        rq = rt.Quantization()
        if rq is not None and (rq.ScaleLength() or rq.DetailsType()):
            d["quantization"] = {
                "scale": np.asarray(rq.ScaleAsNumpy() if rq.ScaleLength() else [], np.float32),
                "zero_point": np.asarray(rq.ZeroPointAsNumpy() if rq.ZeroPointLength() else [],
                                         np.int64),
                "quantized_dimension": rq.QuantizedDimension(),
                "min": np.asarray(rq.MinAsNumpy() if rq.MinLength() else [], np.float32),
                "max": np.asarray(rq.MaxAsNumpy() if rq.MaxLength() else [], np.float32),
                "details_type": rq.DetailsType(),
            }
        b = rt.Buffer()
        if b and b < model.BuffersLength():
            rb = model.Buffers(b)
            if rb.DataLength():
                d["data"] = rb.DataAsNumpy().tobytes()
        return d
    return _guard(read)


def values_from_bytes(type_name: str, shape, stored: bytes) -> "np.ndarray | None":
    """The values of a fixed-width tensor from its stored bytes, by the schema's rules
    (None for other types, or when the bytes are too few)."""
    dt = STORED_DTYPES.get(type_name)
    if dt is None:
        return None
    dt = np.dtype(dt)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n * dt.itemsize > len(stored):
        return None
    return np.frombuffer(stored, dt, n).reshape(shape)


def same_values(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Equal dtype (byte order included), shape and bit patterns (NaN payloads too)."""
    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        return False
    k = ours.dtype.itemsize
    a = np.ascontiguousarray(ours).reshape(-1).view(np.uint8).reshape(-1, k)
    b = np.ascontiguousarray(theirs).reshape(-1).view(np.uint8).reshape(-1, k)
    return bool(np.array_equal(a, b))
