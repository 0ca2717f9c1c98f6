"""The TensorType table: one row per type code, and sub-byte unpacking.

Everything that depends on a tensor's type looks it up here: its name, the
numpy dtype of what :meth:`Tensor.numpy` returns, how many bits one element
takes in the file, and how the bytes are laid out (fixed width, packed
sub-byte, the STRING layout, or no data at all).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ._schema import TENSOR_TYPES
from .errors import InvalidModelError, UnsupportedError

__all__ = ["TypeInfo", "TYPES", "type_info", "element_count", "unpack_bits", "pack_bits"]


@dataclass(frozen=True)
class TypeInfo:
    """How one TensorType is stored and returned.

    ``layout`` is ``"fixed"`` (``bits`` per element, little-endian, read as
    ``storage`` and returned as ``dtype`` without copying), ``"packed"``
    (``bits`` per element, several per byte, low bits first, unpacked into one
    ``dtype`` element per value), ``"string"`` (TFLite's string buffer) or
    ``"none"`` (RESOURCE, VARIANT: no values).
    """

    code: int
    name: str
    dtype: np.dtype | None
    bits: int
    layout: str
    signed: bool = False

    @property
    def itemsize(self) -> int:
        return self.bits // 8


def _t(code: str, dtype, bits: int, layout: str = "fixed", signed: bool = False) -> TypeInfo:
    return TypeInfo(TENSOR_TYPES.index(code), code, None if dtype is None else np.dtype(dtype),
                    bits, layout, signed)


_ROWS = [
    _t("FLOAT32", "<f4", 32),
    _t("FLOAT16", "<f2", 16),
    _t("INT32", "<i4", 32),
    _t("UINT8", "u1", 8),
    _t("INT64", "<i8", 64),
    _t("STRING", object, 8, "string"),
    _t("BOOL", np.bool_, 8),
    _t("INT16", "<i2", 16),
    _t("COMPLEX64", "<c8", 64),
    _t("INT8", "i1", 8),
    _t("FLOAT64", "<f8", 64),
    _t("COMPLEX128", "<c16", 128),
    _t("UINT64", "<u8", 64),
    _t("RESOURCE", None, 0, "none"),
    _t("VARIANT", None, 0, "none"),
    _t("UINT32", "<u4", 32),
    _t("UINT16", "<u2", 16),
    _t("INT4", "i1", 4, "packed", signed=True),
    _t("BFLOAT16", ml_dtypes.bfloat16, 16),
    _t("INT2", "i1", 2, "packed", signed=True),
    _t("UINT4", "u1", 4, "packed"),
    _t("FLOAT8_E4M3FN", ml_dtypes.float8_e4m3fn, 8),
    _t("FLOAT8_E5M2", ml_dtypes.float8_e5m2, 8),
]

#: type code -> TypeInfo, for all 23 codes of the newest schema
TYPES: dict[int, TypeInfo] = {row.code: row for row in _ROWS}
assert sorted(TYPES) == list(range(len(TENSOR_TYPES)))


def type_info(code: int) -> TypeInfo:
    try:
        return TYPES[code]
    except KeyError:
        raise UnsupportedError(
            f"tensor type code {code} is not in the schema (known codes: 0-{len(TYPES) - 1})"
        ) from None


#: numpy refuses a shape whose non-zero dimensions multiply to this or more, even
#: when another dimension is 0
_MAX_INDEXABLE = 1 << 62
#: the most dimensions an array may have: numpy 1.x stops at 32 (2.x at 64); a
#: shape is checked against the smaller, so a model reads alike under both
MAX_RANK = 32


def element_count(shape, where: str) -> int:
    """The number of elements of ``shape`` (1 for a scalar), refusing with
    :class:`InvalidModelError` a negative dimension or a shape numpy cannot index
    (more than :data:`MAX_RANK` dimensions, or too many elements)."""
    if len(shape) > MAX_RANK:
        raise InvalidModelError(f"{where} has {len(shape)} dimensions; arrays hold at most "
                                f"{MAX_RANK}")
    count = nominal = 1
    for d in shape:
        if d < 0:
            raise InvalidModelError(f"{where} has a negative dimension in its shape {list(shape)}")
        count *= d
        nominal *= d or 1
    if nominal >= _MAX_INDEXABLE:
        raise InvalidModelError(f"{where} has shape {list(shape)}, which multiplies past what "
                                f"an array can index")
    return count


def unpack_bits(raw: np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    """Unpack ``count`` ``bits``-wide integers packed low bits first into ``raw`` (uint8).

    Element *i* sits in byte ``i * bits // 8`` at bit ``(i % (8 // bits)) * bits``,
    over the whole tensor in row-major order (no per-row padding).  Signed
    values are two's complement.  Returns a new int8 (signed) or uint8 array.
    """
    per = 8 // bits
    need = -(-count // per)
    if raw.size < need:
        raise InvalidModelError(
            f"{count} packed {bits}-bit values need {need} bytes, the data has {raw.size}"
        )
    raw = raw[:need]
    mask = (1 << bits) - 1
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    values = ((raw[:, None] >> shifts) & mask).reshape(-1)[:count]
    if signed:
        # sign-extend: move the field's top bit to bit 7, then shift back arithmetically
        return (values << (8 - bits)).view(np.int8) >> (8 - bits)
    return values


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Inverse of :func:`unpack_bits`: pack integers low bits first (last byte zero-padded)."""
    per = 8 // bits
    v = np.asarray(values).reshape(-1).astype(np.int64) & ((1 << bits) - 1)
    pad = (-v.size) % per
    v = np.concatenate([v, np.zeros(pad, np.int64)]).reshape(-1, per)
    shifts = np.arange(0, 8, bits, dtype=np.int64)
    return (v << shifts).sum(axis=1).astype(np.uint8).tobytes()
