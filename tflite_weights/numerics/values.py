"""A tensor's values from its stored bytes, by the layout of its type.

* fixed-width types: a read-only view of the bytes as the type's dtype, no copy;
* INT4, UINT4, INT2: packed flat over the whole row-major tensor, low bits first
  (element *i* in byte ``i * bits // 8`` at bit ``(i % (8 // bits)) * bits``), the
  buffer holding ``ceil(n * bits / 8)`` bytes (``tflite/util.cc::BytesRequired``;
  the converter's ``StreamPackLowBitValues8Bit``); signed values two's complement;
* STRING: ``int32 n | int32 offset[0..n] | bytes``, offsets from the start of the
  buffer, string *i* at ``[offset[i], offset[i + 1])`` (``tflite/string_util.h``).

:func:`stored_values` dispatches on the type entry; every function takes the
stored bytes as a uint8 array and returns a read-only array.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidModelError, UnsupportedError
from ..format.types import FIXED, PACKED, STRING, TypeInfo, check_shape

__all__ = ["stored_values", "unpack_bits", "pack_bits", "decode_strings",
           "string_findings", "packed_values"]


#: packed bytes unpacked at a time: the temporaries stay this small
CHUNK = 1 << 16


def unpack_bits(raw: np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    """Unpack ``count`` ``bits``-wide integers packed low bits first into ``raw`` (uint8).

    Returns a new int8 (signed) or uint8 array, filled :data:`CHUNK` bytes at a time
    (the result is the only large allocation).
    """
    per = 8 // bits
    need = -(-count // per)
    if raw.size < need:
        raise InvalidModelError(
            f"{count} packed {bits}-bit values need {need} bytes, the data has {raw.size}"
        )
    out = np.empty(count, np.int8 if signed else np.uint8)
    mask = (1 << bits) - 1
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    for start in range(0, need, CHUNK):
        stop = min(start + CHUNK, need)
        values = ((raw[start:stop, None] >> shifts) & mask).reshape(-1)
        first = start * per
        values = values[:count - first]
        if signed:
            # sign-extend: move the field's top bit to bit 7, then shift back arithmetically
            values = (values << (8 - bits)).view(np.int8) >> (8 - bits)
        out[first:first + values.size] = values
    return out


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Inverse of :func:`unpack_bits`: pack integers low bits first (last byte zero-padded)."""
    per = 8 // bits
    v = np.asarray(values).reshape(-1).astype(np.int64) & ((1 << bits) - 1)
    pad = (-v.size) % per
    v = np.concatenate([v, np.zeros(pad, np.int64)]).reshape(-1, per)
    shifts = np.arange(0, 8, bits, dtype=np.int64)
    return (v << shifts).sum(axis=1).astype(np.uint8).tobytes()


def string_findings(raw: np.ndarray, count: int, shape) -> "list[tuple[str, str]]":
    """What is wrong with a string buffer meant to hold ``count`` strings of ``shape``:
    ``(rule, text)`` pairs (empty: it is sound).  The one statement of the layout's
    rules, for the reader (which refuses the first) and for verify (which reports all;
    the rules are its identifiers)."""
    size = raw.size
    if size < 4:
        return [("string-buffer-too-short",
                 f"a string buffer needs at least 4 bytes, it has {size}")]
    n = int(raw[:4].view("<i4")[0])
    header = 4 * (n + 2)
    if n < 0 or header > size:
        return [("string-header-outside-buffer",
                 f"{n} strings need a {max(header, 4)}-byte header, the buffer has {size} bytes")]
    out = []
    if n != count:
        out.append(("string-count-mismatch",
                    f"the buffer holds {n} strings, the shape {list(shape)} needs {count}"))
    offsets = raw[4:header].view("<i4")
    if offsets[0] < header or offsets[-1] > size or np.any(np.diff(offsets) < 0):
        out.append(("string-offsets-not-rising",
                    f"string offsets must rise from {header} to at most {size}"))
    return out


def decode_strings(raw: np.ndarray, shape, count: int, where: str) -> np.ndarray:
    """The strings of a string buffer as a read-only object array of ``bytes``."""
    findings = string_findings(raw, count, shape)
    if findings:
        raise InvalidModelError(f"{where}: {findings[0][1]}")
    n = count
    header = 4 * (n + 2)
    offsets = raw[4:header].view("<i4").tolist()
    out = np.empty(n, dtype=object)
    data = raw.tobytes() if n else b""
    for i in range(n):
        out[i] = data[offsets[i]:offsets[i + 1]]
    out = out.reshape(shape)
    out.flags.writeable = False
    return out


def packed_values(raw: np.ndarray, info: TypeInfo, shape, count: int, where: str, *,
                  padded_rows: bool = False) -> np.ndarray:
    """Unpack a packed tensor: flat over the tensor, or (``padded_rows``) each row of
    the last axis starting on a byte boundary (see :mod:`.blockwise`)."""
    if padded_rows:
        from .blockwise import unpack_padded_rows
        values = unpack_padded_rows(raw, shape, info.signed)
    else:
        need = info.stored_bytes(count)
        values = unpack_bits(raw[:need], count, info.bits, info.signed).reshape(shape)
    values.flags.writeable = False
    return values


def stored_values(raw: np.ndarray, info: TypeInfo, shape, where: str, *,
                  padded_rows: bool = False, holder: str = "the buffer") -> np.ndarray:
    """The values of a tensor of type ``info`` and ``shape`` whose buffer is ``raw``
    (uint8, read-only): a view for fixed-width types, unpacked for packed ones, an
    object array of bytes for strings.  Raises :class:`InvalidModelError` when the
    bytes do not cover the shape."""
    layout = info.layout
    if layout == STRING:
        count = check_shape(shape, 8, where)
        return decode_strings(raw, shape, count, where)
    if layout not in (FIXED, PACKED):
        raise UnsupportedError(f"{where} is a {info.name} tensor, which has no values")
    count = check_shape(shape, max(info.itemsize, 1), where)
    need = info.stored_bytes(count)
    if need > raw.size and not padded_rows:
        if layout == FIXED:
            raise InvalidModelError(f"{where}: {info.name} shape {list(shape)} needs {need} "
                                    f"bytes, {holder} holds {raw.size}")
        raise InvalidModelError(f"{where}: {count} {info.name} values need {need} bytes, "
                                f"{holder} holds {raw.size}")
    if layout == FIXED:
        if count == 0:
            out = np.empty(shape, info.dtype)
            out.flags.writeable = False
            return out
        return raw[:need].view(info.dtype).reshape(shape)
    return packed_values(raw, info, shape, count, where, padded_rows=padded_rows)
