"""Quantization parameters and dequantization: pure numpy, no file access.

The affine rule of the schema is ``real = scale * (q - zero_point)``, with one
(scale, zero point) pair for the whole tensor or one pair per index along
``quantized_dimension`` (per-channel).  The runtime computes a per-tensor
dequantization in double precision and rounds once to float32
(``reference_ops::Dequantize``); we do the same for both cases, so int8 and
int16 values come out identical to the runtime's, and int32 ones at least as
exact.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from .errors import QuantizationError

_EMPTY_F32 = np.empty(0, np.float32)
_EMPTY_F32.flags.writeable = False

__all__ = [
    "Quantization",
    "BlockwiseDetails",
    "MultiAxisDetails",
    "dequantize_affine",
]


@dataclass(frozen=True)
class BlockwiseDetails:
    """BlockwiseQuantization: scales and zero points live in other tensors.

    ``scales`` and ``zero_points`` are tensor indices in the same subgraph
    (``zero_points == -1`` means all zero points are 0).  ``block_size``
    splits the quantized axis into blocks.
    """

    scales: int
    zero_points: int
    block_size: int
    block_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class MultiAxisDetails:
    """MultiAxisQuantization: like blockwise, over several quantized dimensions."""

    scales: int
    zero_points: int
    block_size: int
    quantized_dimensions: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class Quantization:
    """A tensor's quantization parameters, as stored (arrays are read-only views).

    ``scale`` (float32) and ``zero_point`` (int64) have one entry per tensor or
    one per channel along ``quantized_dimension``.  ``min``/``max`` are kept
    for importing back into TensorFlow and are often empty.  ``details_type``
    names the QuantizationDetails union member ("NONE", "CustomQuantization",
    "BlockwiseQuantization", "MultiAxisQuantization"); ``custom``,
    ``blockwise`` and ``multi_axis`` hold its contents.

    For BlockwiseQuantization and MultiAxisQuantization the scales live in
    other tensors of the subgraph; ``scale`` and ``zero_point`` then stay the
    stored (usually empty) vectors, and the resolved parameters are:

    * ``block_shape``: the extent of one block along every axis of the tensor
      (blockwise ``block_size`` b on a rank-2 tensor gives ``(1, b)``; a
      multi-axis per-channel tensor has 1 on each quantized axis and the full
      extent elsewhere);
    * ``block_scale`` (float32) and ``block_zero_point`` (int64): one entry per
      block, shaped like the block grid ``shape // block_shape`` (for a rank-2
      blockwise tensor ``[rows, num_blocks]``, entry ``[r, b]`` being
      ``scale_tensor[r * num_blocks + b]``);
    * ``block_size``: the stored ``block_size`` (0 for other schemes).

    ``block_scale`` is None when the scale tensor cannot be resolved;
    :meth:`Tensor.dequantize` then raises the reason.  See
    :mod:`tflite_weights.blockwise`.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    min: np.ndarray = field(default_factory=lambda: _EMPTY_F32)
    max: np.ndarray = field(default_factory=lambda: _EMPTY_F32)
    details_type: str = "NONE"
    custom: bytes | None = None
    blockwise: BlockwiseDetails | None = None
    multi_axis: MultiAxisDetails | None = None
    block_size: int = 0
    block_shape: tuple[int, ...] = ()
    block_scale: np.ndarray | None = None
    block_zero_point: np.ndarray | None = None

    @property
    def is_blockwise(self) -> bool:
        """True for BlockwiseQuantization and MultiAxisQuantization (scales in tensors)."""
        return self.details_type in ("BlockwiseQuantization", "MultiAxisQuantization")

    @classmethod
    def _from_fields(cls, scale, zero_point, quantized_dimension):
        """Plain affine parameters, built without the frozen-dataclass ``__init__``
        (which costs several microseconds; models have thousands of tensors)."""
        q = object.__new__(cls)
        d = q.__dict__  # the other fields read their defaults from the class
        d["scale"] = scale
        d["zero_point"] = zero_point
        d["quantized_dimension"] = quantized_dimension
        return q

    @property
    def is_per_channel(self) -> bool:
        """True when there is more than one scale (one per index of the quantized axis)."""
        return self.scale.size > 1

    @property
    def is_affine(self) -> bool:
        """True when ``scale``/``zero_point`` describe the values (no details union)."""
        return self.details_type in ("NONE", "CustomQuantization") and self.scale.size > 0

    def summary(self) -> str:
        """One short line: ``scale=0.0123 zp=-5`` or ``per-channel(8) axis=0``."""
        if self.details_type == "BlockwiseQuantization" and self.blockwise is not None:
            return f"blockwise(block={self.blockwise.block_size})"
        if self.details_type == "MultiAxisQuantization" and self.multi_axis is not None:
            return f"multi-axis(axes={list(self.multi_axis.quantized_dimensions)})"
        if self.scale.size == 0:
            return self.details_type
        if self.is_per_channel:
            return f"per-channel({self.scale.size}) axis={self.quantized_dimension}"
        zp = int(self.zero_point[0]) if self.zero_point.size else "?"
        return f"scale={float(self.scale[0]):.6g} zp={zp}"

    def __repr__(self) -> str:
        return f"Quantization({self.summary()})"

    def to_dict(self) -> dict:
        """JSON-ready parameters (floats as Python floats, exact for float32)."""
        d = {
            "scale": [float(x) for x in self.scale],
            "zero_point": [int(x) for x in self.zero_point],
            "quantized_dimension": int(self.quantized_dimension),
            "min": [float(x) for x in self.min],
            "max": [float(x) for x in self.max],
            "details_type": self.details_type,
        }
        if self.custom is not None:
            d["custom"] = self.custom.hex()
        if self.blockwise is not None:
            d["blockwise"] = {"scales": self.blockwise.scales,
                              "zero_points": self.blockwise.zero_points,
                              "block_size": self.blockwise.block_size,
                              "block_shape": list(self.blockwise.block_shape)}
        if self.multi_axis is not None:
            d["multi_axis"] = {"scales": self.multi_axis.scales,
                               "zero_points": self.multi_axis.zero_points,
                               "block_size": self.multi_axis.block_size,
                               "quantized_dimensions": list(self.multi_axis.quantized_dimensions)}
        if self.block_shape:
            d["block_shape"] = list(self.block_shape)
        return d


#: values of the optional fields, for ``Quantization._from_fields``
# Every optional field's default as a class attribute (dataclasses keep those of
# plain defaults, not of factories), so that ``_from_fields`` can leave them out.
for _f in fields(Quantization):
    if _f.default is MISSING and _f.default_factory is not MISSING:
        setattr(Quantization, _f.name, _f.default_factory())
del _f


def check_affine(shape: tuple[int, ...], scale: np.ndarray, zero_point: np.ndarray,
                 axis: int, what: str = "tensor") -> None:
    """Raise :class:`QuantizationError` unless the parameters fit a tensor of ``shape``.

    The rules are the runtime's (``InterpreterBuilder::ParseQuantization``), with
    one convenience: a single zero point is broadcast over every channel.
    """
    n = scale.size
    if n == 0:
        raise QuantizationError(f"{what} has no quantization scale")
    if zero_point.size == 0:
        raise QuantizationError(f"{what} has {n} scale(s) but no zero point")
    if zero_point.size not in (1, n):
        raise QuantizationError(
            f"{what} has {n} scale(s) but {zero_point.size} zero points (expected 1 or {n})")
    if n == 1:
        return
    rank = len(shape)
    if not 0 <= axis < rank:
        raise QuantizationError(
            f"{what} of shape {list(shape)} (rank {rank}) has {n} per-channel scales on "
            f"quantized_dimension {axis}, outside [0, {rank})")
    if shape[axis] != n:
        raise QuantizationError(
            f"{what} of shape {list(shape)} has {n} per-channel scales, but dimension {axis} "
            f"has {shape[axis]} entries")


def dequantize_affine(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray,
                      axis: int = 0, what: str = "tensor") -> np.ndarray:
    """``float32(scale * (values - zero_point))``, per tensor or along ``axis``.

    Computed in float64 and rounded once to float32, as the runtime's
    per-tensor DEQUANTIZE does.  A scale too large for float32 gives infinities
    (and an infinite scale times zero NaN), without a numpy warning.
    """
    values = np.asarray(values)
    scale = np.asarray(scale, dtype=np.float32)
    zero_point = np.asarray(zero_point, dtype=np.int64)
    check_affine(values.shape, scale, zero_point, axis, what)
    s = scale.astype(np.float64)
    z = zero_point
    if scale.size > 1 or zero_point.size > 1:
        bshape = [1] * values.ndim
        bshape[axis] = -1
        s = s.reshape(bshape) if s.size > 1 else s
        z = z.reshape(bshape) if z.size > 1 else z
    with np.errstate(over="ignore", invalid="ignore"):
        out = (values.astype(np.int64) - z) * s
        return out.astype(np.float32)
