"""The TensorType table: one row per type code, and every fact the package needs of it.

Everything that depends on a tensor's type looks its row up here, never its
name: the numpy dtype of what ``Tensor.numpy()`` returns, how many bits one
element takes in the file and how the bytes are laid out, what kind of number
it is (which decides how it dequantizes), the C type and the ``.npz`` form its
stored values are written in, and what the LiteRT Python wrapper reports for
it.  Sources: ``ConvertTensorType()`` in ``tflite/core/api/flatbuffer_conversions.cc``
(LiteRT), sizes in ``tflite/util.cc``, the wrapper's ``TfLiteTypeToPyArrayType``
in ``tflite/python/interpreter_wrapper/numpy.cc``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ..errors import InvalidModelError, UnsupportedError
from .schema import TENSOR_TYPES

__all__ = ["TypeInfo", "TYPES", "type_info", "type_name", "type_names", "element_count", "check_shape",
           "shape_text", "MAX_RANK", "FIXED", "PACKED", "STRING", "NONE"]

# layouts
FIXED = "fixed"      # ``bits`` per element, little-endian, viewed as ``dtype`` without a copy
PACKED = "packed"    # ``bits`` per element, several per byte, low bits first
STRING = "string"    # TFLite's string buffer
NONE = "none"        # no values (RESOURCE, VARIANT)


@dataclass(frozen=True)
class TypeInfo:
    """How one TensorType is stored, returned, dequantized and exported.

    ``kind`` is ``"float"``, ``"signed"``, ``"unsigned"`` (integers, packed ones
    included), ``"bool"``, ``"complex"``, ``"string"`` or ``"none"``.
    ``ctype`` is the C element type of the stored values as a C array holds them
    (bit patterns in an unsigned type for the float types C has no type for;
    packed types as their bytes; complex as pairs of ``ctype``).  ``bit_pattern``
    is the unsigned numpy dtype that stands for the values where a format has no
    such type (``.npy`` and C: BFLOAT16, FLOAT8), else None.
    ``interpreter_dtype`` is the numpy dtype name the LiteRT Python wrapper
    reports (None where it reports no comparable one).
    """

    code: int
    name: str
    dtype: "np.dtype | None"
    bits: int
    layout: str
    kind: str
    ctype: "str | None" = None
    bit_pattern: "np.dtype | None" = None
    interpreter_dtype: "str | None" = None
    note: "str | None" = None

    @property
    def itemsize(self) -> int:
        """Bytes per element for fixed-width types (0 for the others)."""
        return self.bits // 8 if self.layout == FIXED else 0

    @property
    def signed(self) -> bool:
        return self.kind == "signed"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("signed", "unsigned")

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def has_values(self) -> bool:
        return self.layout != NONE

    @property
    def dequantizes_to_itself(self) -> bool:
        """FLOAT32 and FLOAT64: ``dequantize()`` returns the stored values unchanged."""
        return self.kind == "float" and self.bits >= 32

    def stored_bytes(self, count: int) -> int:
        """Bytes ``count`` elements take in the file (fixed and packed layouts)."""
        return -(-count * self.bits // 8)


def _row(name: str, dtype, bits: int, layout: str, kind: str, ctype=None, bit_pattern=None,
         interpreter=None, note=None) -> TypeInfo:
    dt = None if dtype is None else np.dtype(dtype)
    if interpreter is None and dt is not None and layout == FIXED:
        interpreter = dt.name
    return TypeInfo(TENSOR_TYPES.index(name), name, dt, bits, layout, kind, ctype,
                    None if bit_pattern is None else np.dtype(bit_pattern), interpreter, note)


_ROWS = [
    _row("FLOAT32", "<f4", 32, FIXED, "float", "float"),
    _row("FLOAT16", "<f2", 16, FIXED, "float", "uint16_t",
         note="IEEE 754 binary16 bit patterns"),
    _row("INT32", "<i4", 32, FIXED, "signed", "int32_t"),
    _row("UINT8", "u1", 8, FIXED, "unsigned", "uint8_t"),
    _row("INT64", "<i8", 64, FIXED, "signed", "int64_t"),
    _row("STRING", object, 8, STRING, "string", interpreter="bytes"),
    _row("BOOL", np.bool_, 8, FIXED, "bool", "uint8_t", note="bool as 0/1 bytes"),
    _row("INT16", "<i2", 16, FIXED, "signed", "int16_t"),
    _row("COMPLEX64", "<c8", 64, FIXED, "complex", "float",
         note="(real, imaginary) float pairs: 2 x COUNT values"),
    _row("INT8", "i1", 8, FIXED, "signed", "int8_t"),
    _row("FLOAT64", "<f8", 64, FIXED, "float", "double"),
    _row("COMPLEX128", "<c16", 128, FIXED, "complex", "double",
         note="(real, imaginary) double pairs: 2 x COUNT values"),
    _row("UINT64", "<u8", 64, FIXED, "unsigned", "uint64_t"),
    _row("RESOURCE", None, 0, NONE, "none", interpreter="object"),
    _row("VARIANT", None, 0, NONE, "none", interpreter="object"),
    _row("UINT32", "<u4", 32, FIXED, "unsigned", "uint32_t"),
    _row("UINT16", "<u2", 16, FIXED, "unsigned", "uint16_t"),
    _row("INT4", "i1", 4, PACKED, "signed", "uint8_t", interpreter="int8"),
    # the wrapper reports NPY_USERDEF for BFLOAT16: nothing to compare with
    _row("BFLOAT16", ml_dtypes.bfloat16, 16, FIXED, "float", "uint16_t", "<u2",
         interpreter="", note="bfloat16 bit patterns (the upper 16 bits of a float32)"),
    _row("INT2", "i1", 2, PACKED, "signed", "uint8_t", interpreter="int8"),
    _row("UINT4", "u1", 4, PACKED, "unsigned", "uint8_t", interpreter="uint8"),
    _row("FLOAT8_E4M3FN", ml_dtypes.float8_e4m3fn, 8, FIXED, "float", "uint8_t", "u1",
         interpreter="int8", note="float8 e4m3fn bit patterns"),
    _row("FLOAT8_E5M2", ml_dtypes.float8_e5m2, 8, FIXED, "float", "uint8_t", "u1",
         interpreter="int8", note="float8 e5m2 bit patterns"),
]

#: type code -> TypeInfo, for all 23 codes of the newest schema
TYPES: "dict[int, TypeInfo]" = {row.code: row for row in _ROWS}
assert sorted(TYPES) == list(range(len(TENSOR_TYPES)))


def type_info(code: int) -> TypeInfo:
    """The row of a type code; :class:`UnsupportedError` for a code the schema lacks."""
    try:
        return TYPES[code]
    except KeyError:
        raise UnsupportedError(
            f"tensor type code {code} is not in the schema (known codes: 0-{len(TYPES) - 1})"
        ) from None


_NAMES = {code: info.name for code, info in TYPES.items()}


def type_name(code: int) -> str:
    """The TensorType name of ``code``, or ``"<code>"`` for one the schema lacks."""
    name = _NAMES.get(code)
    return name if name is not None else f"<{code}>"


def type_names(codes: "list[int]") -> "list[str]":
    """:func:`type_name` of every code (one dictionary lookup each)."""
    names = list(map(_NAMES.get, codes))
    if None in names:
        names = [n if n is not None else f"<{c}>" for n, c in zip(names, codes)]
    return names


#: numpy refuses an array whose non-zero dimensions times the item size reach this
#: (``npy_intp``), even when another dimension is 0
_MAX_INDEXABLE = 1 << 63
#: the most dimensions an array may have: numpy 1.x stops at 32 (2.x at 64); a
#: shape is checked against the smaller, so a model reads alike under both
MAX_RANK = 32


def check_shape(shape, itemsize: int, where: str) -> int:
    """The element count of ``shape`` (1 for a scalar), refusing with
    :class:`InvalidModelError` a negative dimension or a shape numpy cannot hold
    with ``itemsize``-byte elements (more than :data:`MAX_RANK` dimensions, or
    dimensions whose non-zero product times the item size overflows, which numpy
    refuses even when another dimension is 0)."""
    if len(shape) > MAX_RANK:
        raise InvalidModelError(f"{where} has {len(shape)} dimensions; arrays hold at most "
                                f"{MAX_RANK}")
    count = 1
    nominal = max(itemsize, 1)
    for d in shape:
        if d < 0:
            raise InvalidModelError(f"{where} has a negative dimension in its shape {list(shape)}")
        count *= d
        nominal *= d or 1
    if nominal >= _MAX_INDEXABLE:
        raise InvalidModelError(f"{where} has shape {list(shape)}, which multiplies past what "
                                f"an array can index")
    return count


def shape_text(shape, most: int = 16, sep: str = ", ") -> str:
    """A shape for messages and listings, its middle elided past ``most`` dimensions
    (a damaged or hostile shape can have millions)."""
    if len(shape) <= most:
        return "[" + sep.join(map(str, shape)) + "]"
    return (f"[{sep.join(map(str, shape[:8]))}{sep}... ({len(shape)} dimensions) ...{sep}"
            f"{sep.join(map(str, shape[-4:]))}]")


def element_count(shape, where: str) -> int:
    """:func:`check_shape` for 8-byte elements, the widest any result takes."""
    return check_shape(shape, 8, where)
