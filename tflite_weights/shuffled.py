"""Shuffled fully-connected weights (``FullyConnectedOptions.weights_format ==
SHUFFLED4x16INT8``).

A FULLY_CONNECTED operator with this weights format (uint8 input and
weights, int16 output) does not store its ``[output_depth, accum_depth]``
weight matrix row by row.  The layout is fixed by the reference kernel,
``tflite/kernels/internal/reference/fully_connected.h`` ``ShuffledFullyConnected``
(LiteRT), which walks the buffer with one pointer::

    for c in range(0, output_depth, 4):          # a block of 4 output rows
        for d in range(0, accum_depth, 16):      # a 16-wide chunk of the input depth
            for i in range(4):                   # row c + i
                for j in range(16):              # column d + j
                    stored[k] = W[c + i, d + j] ^ 0x80;  k += 1

so the buffer is a sequence of 4x16 tiles, tiles ordered by row block then
by column chunk, each tile row-major.  Each byte has its sign bit flipped
(``^ 0x80``): the kernel reads the bytes as int8, which for uint8 weights with
zero point 128 "implements for free the subtraction of the zero_point value
128" (kernel comment).  The kernel requires ``accum_depth % 16 == 0`` and
``output_depth % 4 == 0``.

:func:`unshuffle_fc_weights` undoes both: it returns the ``[output, input]``
matrix in the tensor's own type (uint8, as the kernel requires), with the
original byte values, so the tensor's quantization (usually zero point 128)
applies to it unchanged; :func:`dequantize_fc_weights` applies it.
:meth:`Tensor.numpy` keeps returning the bytes as stored.
"""

from __future__ import annotations

import numpy as np

from .dtypes import element_count
from .errors import InvalidModelError, QuantizationError, UnsupportedError

__all__ = ["SHUFFLED_FORMAT", "shuffle_4x16", "unshuffle_4x16", "shuffled_fc_operators",
           "is_shuffled_fc_weights", "unshuffle_fc_weights", "dequantize_fc_weights"]

#: the FullyConnectedOptionsWeightsFormat name of the shuffled layout
SHUFFLED_FORMAT = "SHUFFLED4x16INT8"
_ROWS, _COLS = 4, 16


def _check_dims(rows: int, cols: int, where: str) -> None:
    if rows < 0 or cols < 0 or rows % _ROWS or cols % _COLS:
        raise InvalidModelError(
            f"{where}: shuffled 4x16 weights need an output depth that is a multiple of 4 "
            f"and an input depth that is a multiple of 16, not [{rows}, {cols}]")


def unshuffle_4x16(stored, rows: int, cols: int, where: str = "weights") -> np.ndarray:
    """The ``[rows, cols]`` uint8 matrix whose shuffled form is ``stored`` (bytes in
    4x16 tiles, sign bit flipped): the inverse of :func:`shuffle_4x16`."""
    _check_dims(rows, cols, where)
    b = np.asarray(stored).reshape(-1).view(np.uint8)
    if b.size < rows * cols:
        raise InvalidModelError(f"{where}: [{rows}, {cols}] shuffled weights need "
                                f"{rows * cols} bytes, the data has {b.size}")
    tiles = b[:rows * cols].reshape(rows // _ROWS, cols // _COLS, _ROWS, _COLS)
    return np.ascontiguousarray(tiles.transpose(0, 2, 1, 3)).reshape(rows, cols) ^ np.uint8(0x80)


def shuffle_4x16(matrix) -> np.ndarray:
    """The stored form (flat uint8) of a ``[rows, cols]`` uint8/int8 matrix in the
    SHUFFLED4x16INT8 layout."""
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"shuffle_4x16 takes a 2-D matrix, not shape {m.shape}")
    rows, cols = m.shape
    _check_dims(rows, cols, "matrix")
    u = m.view(np.uint8) if m.dtype.itemsize == 1 else m.astype(np.uint8)
    tiles = u.reshape(rows // _ROWS, _ROWS, cols // _COLS, _COLS).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(tiles).reshape(-1) ^ np.uint8(0x80)


def shuffled_fc_operators(tensor) -> tuple:
    """The FULLY_CONNECTED operators that read ``tensor`` as their shuffled weights
    (input 1 with ``weights_format == SHUFFLED4x16INT8``)."""
    out = []
    for op in tensor.consumers:
        if op.opcode != "FULLY_CONNECTED":
            continue
        ins = op.inputs
        if len(ins) < 2 or ins[1] != tensor.index:
            continue
        if op.options_type == "FullyConnectedOptions" and \
                op.options.get("weights_format") == SHUFFLED_FORMAT:
            out.append(op)
    return tuple(out)


def is_shuffled_fc_weights(tensor) -> bool:
    """True when a FULLY_CONNECTED operator reads ``tensor`` as SHUFFLED4x16INT8 weights."""
    return bool(shuffled_fc_operators(tensor))


def unshuffle_fc_weights(tensor, *, force: bool = False) -> np.ndarray:
    """The ``[output, input]`` weight matrix of a shuffled FULLY_CONNECTED weight tensor,
    in the tensor's dtype (uint8), sign bit restored.

    Raises :class:`UnsupportedError` when no operator reads the tensor as shuffled
    weights (pass ``force=True`` to unshuffle anyway), and :class:`InvalidModelError`
    when its shape does not tile into 4x16 blocks or its buffer is too short.
    Operators reading the same tensor both shuffled and plainly are refused.
    """
    where = f"{tensor._where} ({tensor.name!r})"
    if not force:
        ops = shuffled_fc_operators(tensor)
        if not ops:
            raise UnsupportedError(
                f"{where} is not read as {SHUFFLED_FORMAT} weights by any FULLY_CONNECTED "
                f"operator (pass force=True to unshuffle it anyway)")
        plain = [op for op in tensor.consumers if op not in ops and op.opcode ==
                 "FULLY_CONNECTED" and len(op.inputs) > 1 and op.inputs[1] == tensor.index]
        if plain:
            raise InvalidModelError(
                f"{where} is read both as shuffled and as plain FULLY_CONNECTED weights")
    if tensor.type not in ("UINT8", "INT8"):
        raise UnsupportedError(f"{where} is {tensor.type}; shuffled weights are 8-bit "
                               f"(the kernel takes UINT8)")
    shape = tensor.shape
    if len(shape) < 2:
        raise InvalidModelError(f"{where}: weights of shape {list(shape)} are not a matrix")
    element_count(shape, where)
    rows = element_count(shape[:-1], where)
    cols = shape[-1]
    out = unshuffle_4x16(tensor.raw(), rows, cols, where).view(tensor.dtype).reshape(shape)
    out.flags.writeable = False
    return out


def dequantize_fc_weights(tensor, *, force: bool = False) -> np.ndarray:
    """Unshuffled weights as float32, ``scale * (w - zero_point)`` with the tensor's
    own (per-tensor or per-row) quantization."""
    from .quantization import dequantize_affine
    w = unshuffle_fc_weights(tensor, force=force)
    q = tensor.quantization
    if q is None or q.scale.size == 0:
        raise QuantizationError(f"{tensor._where} ({tensor.name!r}) has no quantization")
    out = dequantize_affine(w, q.scale, q.zero_point, q.quantized_dimension,
                            f"{tensor._where} ({tensor.name!r})")
    out.flags.writeable = False
    return out
