"""Blockwise and multi-axis quantization: scales and zero points held in other tensors.

``BlockwiseQuantization{scales, zero_points, block_size, block_shape}`` and
``MultiAxisQuantization{scales, zero_points, block_size, quantized_dimensions}``
name tensors of the same subgraph instead of storing values.  Both are turned
into one description here: a *block shape* (the extent of one block along
every axis) and, for the block grid ``shape // block_shape``, one scale and one
zero point per block, in row-major order over the grid.  Real values are
``scale[block] * (q - zero_point[block])``.

Rules, and where they come from (LiteRT unless stated):

* ``block_size`` splits the **last** axis: ``tflite/kernels/fully_connected.cc``
  ``EvalBlockwise4Bit`` (weights ``[O, I]``, ``num_blocks = I / block_size``) and
  ``tflite/kernels/embedding_lookup.cc`` ``EvalBlockwise`` both read the scale
  of (row, block) at ``scale_tensor[row * num_blocks + block]``.  The outer
  ``quantized_dimension`` is passed along by ``InterpreterBuilder::ParseQuantization``
  but no kernel uses it; it is kept as stored and ignored here.
* ``block_shape`` (newer than ``block_size``): one positive entry per axis;
  ``block_size`` is then 0 (``litert/core/model`` verifier).  Each axis must be
  a multiple of its block.
* The scale tensor is FLOAT16 in converter output (the kernels and the Python
  wrapper read it as float16); FLOAT32 occurs too (the GPU delegate accepts
  both, and ``litert/test/testdata/blockwise_quantized.tflite`` has one).  Any
  float type is read; it must hold exactly one value per block.
* Zero points: ``-1`` means none (all 0).  The CPU kernels never read zero
  points (they are symmetric); the GPU delegate reads an INT32 or INT64 tensor
  when the index is ``>= 0``.  The schema gives ``zero_points`` no default, so
  an *absent* field reads as 0 and names tensor 0; writers built on the
  flatbuffers object API (whose default is 0) omit it exactly when they mean
  "no zero points".  So: index 0 is used only when tensor 0 is a constant
  integer tensor with one value per block (or a single value); otherwise it is
  taken as "no zero points", which is what the CPU runtime computes.  Any other
  index that does not name such a tensor is an error.
* MultiAxisQuantization (schema 2026-06, "experimental"): ``block_size == 0``
  is per-channel over several axes (``tflite/core/c/common.h``: "For
  per-channel quantization, blocksize is 0"), i.e. one scale per index of the
  quantized axes, row-major in the tensor's axis order.  No kernel defines
  ``block_size > 0`` for it, so that is refused (:class:`UnsupportedError`).

4-bit weights with an odd last axis: ``EvalBlockwise4Bit`` indexes nibbles as
``(row * k2 + k) / 2`` with ``k2`` the column count rounded up to even, i.e.
each row starts on a byte boundary, while every other reader (DEQUANTIZE,
``get_tensor``, the converter's packer) packs the whole tensor flat.  An odd
last axis needs an odd ``block_size``, which the LiteRT verifier rejects for
4-bit tensors, so this does not occur in valid files; when it does, the rows
are read padded only if the buffer holds exactly ``rows * ceil(cols / 2)``
bytes (the padded size), and flat otherwise (:func:`uses_row_padding`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ClosedModelError, QuantizationError, TFLiteWeightsError, UnsupportedError
from ..format.records import BLOCKWISE, Quantization
from ..format.types import TypeInfo

__all__ = ["Sibling", "BlockParameters", "block_parameters", "dequantize_blocks",
           "uses_row_padding", "unpack_padded_rows", "resolved_fields"]


class Sibling(NamedTuple):
    """Another tensor of the subgraph, as block resolution needs it: its index, name,
    type entry (None for a code the schema lacks) and a callable giving its values."""

    index: int
    name: str
    info: "TypeInfo | None"
    type_name: str
    values: object


class BlockParameters:
    """Resolved block parameters: ``block_shape``, ``scale`` (float32, block grid shape),
    ``zero_point`` (int64, same shape) and the tensor indices they came from."""

    __slots__ = ("block_shape", "scale", "zero_point", "scale_tensor", "zero_point_tensor")

    def __init__(self, block_shape, scale, zero_point, scale_tensor, zero_point_tensor):
        self.block_shape = block_shape
        self.scale = scale
        self.zero_point = zero_point
        self.scale_tensor = scale_tensor
        self.zero_point_tensor = zero_point_tensor


def _block_shape(shape, q: Quantization, what: str) -> "tuple[int, ...]":
    shape = tuple(shape)
    if any(d < 0 for d in shape):
        raise QuantizationError(f"{what} has a negative dimension in {list(shape)}")
    if q.details is None:
        raise QuantizationError(f"{what}: quantization names {q.details_type} but has no "
                                f"details table")
    if q.details_type == BLOCKWISE:
        bw = q.blockwise
        if bw.block_shape:
            bs = tuple(bw.block_shape)
            if len(bs) != len(shape):
                raise QuantizationError(
                    f"{what}: BlockwiseQuantization.block_shape {list(bs)} has rank {len(bs)}, "
                    f"the tensor {list(shape)} rank {len(shape)}")
            if any(b <= 0 for b in bs):
                raise QuantizationError(
                    f"{what}: BlockwiseQuantization.block_shape {list(bs)} must be positive")
        else:
            b = bw.block_size
            if b <= 0:
                raise QuantizationError(
                    f"{what}: BlockwiseQuantization.block_size is {b}; it must be positive "
                    f"(or block_shape given)")
            if not shape:
                raise QuantizationError(f"{what}: a scalar cannot be quantized blockwise")
            bs = (1,) * (len(shape) - 1) + (b,)
        for d, (n, b) in enumerate(zip(shape, bs)):
            if n % b:
                raise QuantizationError(
                    f"{what}: dimension {d} of shape {list(shape)} ({n}) is not a multiple of "
                    f"the block extent {b} (block shape {list(bs)})")
        return bs
    ma = q.multi_axis
    dims = tuple(ma.quantized_dimensions)
    if not dims:
        raise QuantizationError(f"{what}: MultiAxisQuantization.quantized_dimensions is empty")
    if len(set(dims)) != len(dims) or any(not 0 <= d < len(shape) for d in dims):
        raise QuantizationError(
            f"{what}: MultiAxisQuantization.quantized_dimensions {list(dims)} must be distinct "
            f"axes of the rank-{len(shape)} tensor {list(shape)}")
    if ma.block_size < 0:
        raise QuantizationError(
            f"{what}: MultiAxisQuantization.block_size is {ma.block_size}, negative")
    if ma.block_size > 0:
        raise UnsupportedError(
            f"{what}: MultiAxisQuantization with block_size {ma.block_size} has no defined "
            f"layout (the schema and the runtime define only block_size 0, per-channel over "
            f"the quantized dimensions)")
    return tuple(1 if d in dims else max(n, 1) for d, n in enumerate(shape))


def block_parameters(shape, q: Quantization, index: int, count: int, sibling,
                     what: str) -> BlockParameters:
    """Resolve a blockwise or multi-axis quantized tensor's scales and zero points.

    ``index`` is the tensor's own index, ``count`` the subgraph's tensor count and
    ``sibling(i)`` gives the :class:`Sibling` at index ``i``.  Raises
    :class:`QuantizationError` naming the defect (index out of range, a scale tensor
    without data or with the wrong element count, ...).
    """
    if q is None or not q.is_blockwise:
        raise QuantizationError(f"{what} is not blockwise or multi-axis quantized")
    bs = _block_shape(shape, q, what)
    grid = tuple(n // b for n, b in zip(shape, bs))
    nblocks = 1
    for g in grid:
        nblocks *= g
    det = q.details

    si = det.scales
    if not 0 <= si < count:
        raise QuantizationError(f"{what}: the scale tensor index {si} is outside the "
                                f"subgraph's {count} tensors")
    if si == index:
        raise QuantizationError(f"{what}: the scale tensor index {si} names the tensor itself")
    st = sibling(si)
    if st.info is None or not st.info.is_float or st.info.bits < 16:
        raise QuantizationError(f"{what}: its scale tensor {st.index} ({st.name!r}) is "
                                f"{st.type_name}; a float tensor is needed")
    try:
        sv = st.values()
    except ClosedModelError:
        raise
    except TFLiteWeightsError as e:
        raise QuantizationError(f"{what}: its scale tensor {st.index} ({st.name!r}) cannot "
                                f"be read: {e}") from e
    if sv.size != nblocks:
        raise QuantizationError(
            f"{what}: shape {list(shape)} with blocks {list(bs)} has {nblocks} blocks, but its "
            f"scale tensor {st.index} ({st.name!r}) holds {sv.size} values")
    scale = sv.astype(np.float32).reshape(grid)
    scale.flags.writeable = False

    zp_index = det.zero_points
    zero_point = None
    zp_tensor = None
    if zp_index < -1:
        raise QuantizationError(f"{what}: zero_points tensor index {zp_index} is invalid "
                                f"(-1 means none)")
    if zp_index >= 0:
        problem = None
        if zp_index >= count:
            problem = f"the subgraph has only {count} tensors"
        elif zp_index == index:
            problem = "it names the tensor itself"
        else:
            zt = sibling(zp_index)
            # whole-byte integers only (no zero-point tensor is sub-byte in any writer)
            if zt.info is None or not zt.info.is_integer or not zt.info.itemsize or \
                    zt.info.bits == 64 and not zt.info.signed:
                problem = f"it is {zt.type_name}, not a whole-byte integer tensor"
            else:
                try:
                    zv = zt.values()
                except ClosedModelError:
                    raise
                except TFLiteWeightsError as e:
                    problem = f"it cannot be read ({e})"
                else:
                    if zv.size not in (1, nblocks):
                        problem = f"it holds {zv.size} values for {nblocks} blocks"
                    else:
                        zero_point = np.broadcast_to(zv.astype(np.int64).reshape(-1),
                                                     (nblocks,)).reshape(grid)
                        zp_tensor = zt.index
        if problem is not None and zp_index != 0:
            raise QuantizationError(f"{what}: zero-point tensor {zp_index} is unusable: "
                                    f"{problem}")
    if zero_point is None:
        zero_point = np.zeros(grid, np.int64)
    zero_point = np.ascontiguousarray(zero_point)
    zero_point.flags.writeable = False
    return BlockParameters(bs, scale, zero_point, st.index, zp_tensor)


def dequantize_blocks(values: np.ndarray, block_shape, scale: np.ndarray,
                      zero_point: np.ndarray) -> np.ndarray:
    """``float32(scale[block] * (values - zero_point[block]))`` without expanding the
    scales: each axis is split into (blocks, extent) and the parameters broadcast.

    The result is the correctly rounded float32 of the exact product (the
    runtime's float32 product): 8- and 16-bit values go through float32, where
    ``q - zp`` is exact and one multiplication rounds once (4 bytes per value);
    wider values through float64, rounded once at the end.
    """
    values = np.asarray(values)
    shape = values.shape
    split = []
    pshape = []
    for n, b in zip(shape, block_shape):
        split += [n // b if b else 0, b]
        pshape += [n // b if b else 0, 1]
    z = np.asarray(zero_point, np.int64).reshape(pshape)
    with np.errstate(over="ignore", invalid="ignore"):  # inf/nan scales give inf/nan
        return _dequantize_split(values, shape, split, pshape, scale, z)


def _dequantize_split(values, shape, split, pshape, scale, z):
    if values.dtype.itemsize <= 2 and (z.size == 0 or int(np.abs(z).max()) < (1 << 16)):
        # q - zp is exact in float32 and one float32 product is correctly rounded,
        # so this equals the float64 route at half the memory (4 bytes per value)
        v = values.reshape(split).astype(np.float32)
        v -= z.astype(np.float32)
        v *= np.asarray(scale, np.float32).reshape(pshape)
        return v.reshape(shape)
    v = values.astype(np.int64).reshape(split)
    s = np.asarray(scale, np.float64).reshape(pshape)
    out = ((v - z) * s).astype(np.float32).reshape(shape)
    return out


def resolved_fields(p: BlockParameters) -> dict:
    """The Quantization fields of resolved block parameters: ``block_shape``,
    ``block_scale``, ``block_zero_point``."""
    return {"block_shape": p.block_shape, "block_scale": p.scale,
            "block_zero_point": p.zero_point}


def uses_row_padding(shape, info: TypeInfo, q: "Quantization | None", length: int) -> bool:
    """True when a 4-bit blockwise tensor with an odd last axis stores each row from a
    byte boundary (its buffer holds exactly ``rows * ceil(cols / 2)`` bytes and that
    differs from the flat size)."""
    if len(shape) < 2 or info.bits != 4 or not info.is_integer:
        return False
    if q is None or q.details_type != BLOCKWISE:
        return False
    cols = shape[-1]
    if cols <= 0 or cols % 2 == 0:
        return False
    size = 1
    for d in shape:
        size *= max(d, 0)
    rows = size // cols
    padded = rows * ((cols + 1) // 2)
    return length == padded and padded != -(-size // 2)


def unpack_padded_rows(raw: np.ndarray, shape, signed: bool) -> np.ndarray:
    """Unpack 4-bit values stored row by row, each row starting on a byte boundary
    (low nibble first), into int8/uint8 of ``shape``."""
    cols = shape[-1]
    per_row = (cols + 1) // 2
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    b = raw[:rows * per_row].reshape(rows, per_row)
    v = np.stack([b & 0x0F, b >> 4], axis=-1).reshape(rows, 2 * per_row)[:, :cols]
    if signed:
        v = (v << 4).view(np.int8) >> 4
    return np.ascontiguousarray(v).reshape(shape)
