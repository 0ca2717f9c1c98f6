"""Quantization: the affine rule, its fit to a tensor, and dequantization.

The affine rule of the schema is ``real = scale * (q - zero_point)``, with one
(scale, zero point) pair for the whole tensor or one pair per index along
``quantized_dimension`` (per-channel).  The runtime computes a per-tensor
dequantization in double precision and rounds once to float32
(``reference_ops::Dequantize``); we do the same for both cases, so int8 and
int16 values come out identical to the runtime's, and int32 ones at least as
exact.

:func:`affine_findings` is the one statement of when affine parameters fit a
shape (the runtime's ``InterpreterBuilder::ParseQuantization``, and what this
reader can apply): ``verify`` reports every finding with its severity, and
:func:`dequantize` refuses a tensor with a finding marked ``fatal``.  Where the
two differ on purpose: several scales with one zero point (the interpreter
refuses it; TFLite Micro applies the zero point to every channel, and so does
this reader), and a rank-1 tensor whose axis is out of range (TFLite Micro
ignores the axis; this reader refuses to guess it).

The parameters themselves are :class:`~tflite_weights.format.records.Quantization`
records; blockwise and multi-axis schemes are in :mod:`.blockwise`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import QuantizationError
from ..format.types import TypeInfo

__all__ = ["Finding", "affine_findings", "check_affine", "dequantize_affine", "dequantize"]

_INT32 = 1 << 31


class Finding(NamedTuple):
    """One thing wrong with quantization parameters: ``rule`` (verify's id),
    ``severity`` ("error": the interpreter refuses it, or "warning"), ``fatal``
    (``dequantize()`` refuses the tensor) and ``text`` (the message after the
    tensor's label, starting with its separator: " has ..." or ": ...")."""

    rule: str
    severity: str
    fatal: bool
    text: str


def affine_findings(shape, scale: np.ndarray, zero_point: np.ndarray, axis: int,
                    has_zero_point: "bool | None" = None) -> "list[Finding]":
    """Every finding about affine parameters for a tensor of ``shape`` (empty: they
    fit).  ``has_zero_point`` says whether the field is present (default: whether the
    vector has entries)."""
    out: list[Finding] = []
    n = scale.size
    if n == 0:
        return out
    if has_zero_point is None:
        has_zero_point = zero_point.size > 0
    if not has_zero_point:
        out.append(Finding("quantization-zero-point-missing", "error", True,
                           f" has {n} scales but no zero_point (the interpreter refuses it)"))
        return out
    z = zero_point.size
    if z == 1 and n > 1:
        out.append(Finding("quantization-one-zero-point", "warning", False,
                           f" has {n} scales and one zero point; the interpreter refuses this, "
                           f"TFLite Micro applies the zero point to every channel"))
    elif z != n:
        out.append(Finding("quantization-zero-point-count", "error", True,
                           f" has {n} scales and {z} zero points; the interpreter requires as "
                           f"many of each"))
        return out
    rank = len(shape)
    per_channel = n > 1
    if axis < 0:
        out.append(Finding("quantization-dimension-negative", "error", per_channel,
                           f": quantized_dimension {axis} is negative"))
        return out
    if rank and axis >= rank:
        if rank == 1 and n in (1, shape[0]):
            # e.g. TFLite Micro's person_detect: per-channel bias scales on a rank-1
            # tensor with quantized_dimension 3.  The interpreter refuses it; TFLite
            # Micro's kernels read the scales without looking at the axis.
            out.append(Finding("quantization-dimension-rank-1", "warning", per_channel,
                               f" of shape {list(shape)} has quantized_dimension {axis}, "
                               f"outside [0, {rank}); the interpreter refuses this, TFLite "
                               f"Micro ignores it, and the {n} scale(s) can only apply along "
                               f"axis 0"))
        else:
            out.append(Finding("quantization-dimension-out-of-range", "error", per_channel,
                               f" of shape {list(shape)} has quantized_dimension {axis}, "
                               f"outside [0, {rank}) (the interpreter refuses it)"))
            return out
    elif per_channel and rank and n != shape[axis]:
        out.append(Finding("quantization-scale-count", "error", True,
                           f" of shape {list(shape)} has {n} scales; dimension "
                           f"{axis} has {shape[axis]} entries (the interpreter refuses it)"))
        return out
    elif per_channel and not rank:
        out.append(Finding("quantization-per-channel-scalar", "warning", True,
                           f" is a scalar with {n} scales (the interpreter accepts it; they "
                           f"cannot apply to one value)"))
    finite = np.isfinite(scale)
    if not finite.all() or np.any(scale < 0):
        rule, bad = (("quantization-scale-not-finite", scale[~finite]) if not finite.all()
                     else ("quantization-scale-negative", scale[scale < 0]))
        out.append(Finding(rule, "error", False,
                           f" has a scale that is negative or not finite ({float(bad[0])!r}) "
                           f"(stricter than the interpreter, whose kernels abort on it)"))
    elif np.any(scale == 0):
        out.append(Finding("quantization-scale-zero", "warning", False,
                           " has a zero scale: every value dequantizes to 0"))
    if z and (zero_point.min() < -_INT32 or zero_point.max() >= _INT32):
        out.append(Finding("quantization-zero-point-beyond-int32", "warning", False,
                           " has zero points outside the int32 range, which the runtime "
                           "truncates"))
    return out


def check_affine(shape, scale: np.ndarray, zero_point: np.ndarray, axis: int,
                 what: str = "tensor") -> None:
    """Raise :class:`QuantizationError` when :func:`affine_findings` has a fatal
    finding (the parameters cannot be applied to a tensor of ``shape``)."""
    if scale.size == 0:
        raise QuantizationError(f"{what} has no quantization scale")
    for f in affine_findings(shape, scale, zero_point, axis):
        if f.fatal:
            refuse = "; dequantize() does not guess the axis" if f.severity == "warning" else ""
            raise QuantizationError(f"{what}{f.text}{refuse}")


#: elements computed at a time: the float64 and int64 temporaries stay this small
CHUNK = 1 << 16


def dequantize_affine(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray,
                      axis: int = 0, what: str = "tensor") -> np.ndarray:
    """``float32(scale * (values - zero_point))``, per tensor or along ``axis``.

    Computed in float64 and rounded once to float32, as the runtime's
    per-tensor DEQUANTIZE does.  A scale too large for float32 gives infinities
    (and an infinite scale times zero NaN), without a numpy warning.  The work is
    done :data:`CHUNK` elements at a time into the result, so the only large
    allocation is the float32 result itself.
    """
    values = np.asarray(values)
    scale = np.asarray(scale, dtype=np.float32)
    zero_point = np.asarray(zero_point, dtype=np.int64)
    check_affine(values.shape, scale, zero_point, axis, what)
    s = scale.astype(np.float64)
    z = zero_point
    out = np.empty(values.shape, np.float32)
    flat_in = np.ascontiguousarray(values).reshape(-1)
    flat_out = out.reshape(-1)
    n = flat_in.size
    per_channel = scale.size > 1 or zero_point.size > 1
    if per_channel:
        channels = max(scale.size, zero_point.size)
        inner = 1
        for d in values.shape[axis + 1:]:
            inner *= d
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            v = flat_in[start:stop].astype(np.int64)
            if per_channel:
                ch = (np.arange(start, stop, dtype=np.int64) // inner) % channels
                sc = s[ch] if s.size > 1 else s
                zc = z[ch] if z.size > 1 else z
            else:
                sc, zc = s, z
            v -= zc
            flat_out[start:stop] = v * sc
    return out


def dequantize(values, info: "TypeInfo | None", q, what: str, block=None,
               type_name: str = "") -> np.ndarray:
    """Real values of a tensor, dispatched on its type entry and quantization scheme.

    ``values()`` returns the stored values (called only when they are needed);
    ``q`` is the :class:`~tflite_weights.format.records.Quantization` record (or
    None); ``block`` the resolved :class:`~.blockwise.BlockParameters` of a
    blockwise or multi-axis tensor (a callable giving them, so that an unusable
    scale tensor raises its reason here).  FLOAT32 and FLOAT64 come back as stored,
    narrower floats widened to float32, integers by the affine rule or by blocks;
    other types raise :class:`QuantizationError`.
    """
    from .blockwise import dequantize_blocks
    if q is not None and q.is_blockwise:
        if info is None or not info.is_integer:
            raise QuantizationError(
                f"{what} is a {info.name if info else type_name} tensor; blockwise "
                f"quantization applies to integer tensors")
        p = block()
        out = dequantize_blocks(values(), p.block_shape, p.scale, p.zero_point)
        out.flags.writeable = False
        return out
    if info is not None and info.dequantizes_to_itself:
        return values()
    if info is not None and info.is_float:
        out = values().astype(np.float32)
        out.flags.writeable = False
        return out
    if info is None or not info.is_integer:
        raise QuantizationError(f"{what} is a {info.name if info else type_name} tensor; "
                                f"only integer and float tensors dequantize")
    if q is None or q.scale.size == 0:
        raise QuantizationError(f"{what} is a {info.name} tensor without quantization "
                                f"parameters")
    out = dequantize_affine(values(), q.scale, q.zero_point, q.quantized_dimension, what)
    out.flags.writeable = False
    return out
