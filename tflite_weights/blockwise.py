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

import numpy as np

from .errors import ClosedModelError, QuantizationError, TFLiteWeightsError, UnsupportedError

__all__ = ["BlockParameters", "block_parameters", "dequantize_blocks",
           "dequantize_blockwise", "uses_row_padding", "unpack_padded_rows"]

_FLOAT_SCALES = ("FLOAT16", "FLOAT32", "BFLOAT16", "FLOAT64")
_INT_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
              "INT4", "UINT4", "INT2")
# zero points: whole-byte integers only (no zero-point tensor is sub-byte in any writer)
_ZP_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32")


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


def _block_shape(tensor, q) -> tuple[int, ...]:
    shape = tuple(tensor.shape)
    what = f"{tensor._where} ({tensor.name!r})"
    if any(d < 0 for d in shape):
        raise QuantizationError(f"{what} has a negative dimension in {list(shape)}")
    if _details(q) is None:
        raise QuantizationError(f"{what}: quantization names {q.details_type} but has no "
                                f"details table")
    if q.details_type == "BlockwiseQuantization":
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


def _details(q):
    return q.blockwise if q.details_type == "BlockwiseQuantization" else q.multi_axis


def _sibling(tensor, index: int, role: str):
    sg = tensor._model.subgraphs[tensor.subgraph]
    n = len(sg.tensors)
    if not 0 <= index < n:
        raise QuantizationError(
            f"{tensor._where} ({tensor.name!r}): the {role} tensor index {index} is outside "
            f"the subgraph's {n} tensors")
    if index == tensor.index:
        raise QuantizationError(
            f"{tensor._where} ({tensor.name!r}): the {role} tensor index {index} names the "
            f"tensor itself")
    return sg.tensors[index]


def block_parameters(tensor, q=None) -> BlockParameters:
    """Resolve a blockwise or multi-axis quantized tensor's scales and zero points.

    Raises :class:`QuantizationError` naming the defect (index out of range, a
    scale tensor without data or with the wrong element count, ...).
    """
    if q is None:
        q = tensor.quantization
    if q is None or not q.is_blockwise:
        raise QuantizationError(
            f"{tensor._where} ({tensor.name!r}) is not blockwise or multi-axis quantized")
    what = f"{tensor._where} ({tensor.name!r})"
    bs = _block_shape(tensor, q)
    shape = tuple(tensor.shape)
    grid = tuple(n // b for n, b in zip(shape, bs))
    nblocks = 1
    for g in grid:
        nblocks *= g
    det = _details(q)

    st = _sibling(tensor, det.scales, "scale")
    if st.type not in _FLOAT_SCALES:
        raise QuantizationError(
            f"{what}: its scale tensor {st.index} ({st.name!r}) is {st.type}; a float "
            f"tensor is needed")
    try:
        sv = st.numpy()
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
        tensors = tensor._model.subgraphs[tensor.subgraph].tensors
        problem = None
        if zp_index >= len(tensors):
            problem = f"the subgraph has only {len(tensors)} tensors"
        elif zp_index == tensor.index:
            problem = "it names the tensor itself"
        elif tensors[zp_index].type not in _ZP_TYPES:
            problem = f"it is {tensors[zp_index].type}, not a whole-byte integer tensor"
        else:
            zt = tensors[zp_index]
            try:
                zv = zt.numpy()
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


def dequantize_blockwise(tensor) -> np.ndarray:
    """Real values of a blockwise or multi-axis quantized integer tensor (float32)."""
    info = tensor.type
    if info not in _INT_TYPES:
        raise QuantizationError(
            f"{tensor._where} ({tensor.name!r}) is a {info} tensor; blockwise quantization "
            f"applies to integer tensors")
    p = block_parameters(tensor)
    out = dequantize_blocks(tensor.numpy(), p.block_shape, p.scale, p.zero_point)
    out.flags.writeable = False
    return out


def resolved_fields(tensor, q) -> dict:
    """The Quantization fields for a blockwise tensor: ``block_shape``,
    ``block_scale``, ``block_zero_point`` (None when they cannot be resolved)."""
    try:
        p = block_parameters(tensor, q)
    except TFLiteWeightsError:
        return {}
    return {"block_shape": p.block_shape, "block_scale": p.scale,
            "block_zero_point": p.zero_point}


def uses_row_padding(tensor, length: int) -> bool:
    """True when a 4-bit blockwise tensor with an odd last axis stores each row from a
    byte boundary (its buffer holds exactly ``rows * ceil(cols / 2)`` bytes and that
    differs from the flat size)."""
    shape = tensor.shape
    if len(shape) < 2 or tensor.type not in ("INT4", "UINT4"):
        return False
    q = tensor.quantization
    if q is None or q.details_type != "BlockwiseQuantization":
        return False
    cols = shape[-1]
    if cols <= 0 or cols % 2 == 0:
        return False
    rows = tensor.size // cols
    padded = rows * ((cols + 1) // 2)
    return length == padded and padded != -(-tensor.size // 2)


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
