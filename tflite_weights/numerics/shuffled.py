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

:func:`unshuffle_matrix` undoes both: it returns the ``[output, input]``
matrix in the tensor's own type (uint8, as the kernel requires), with the
original byte values, so the tensor's quantization (usually zero point 128)
applies to it unchanged.  ``Tensor.unshuffle()`` finds the operators that read a
tensor this way (:mod:`tflite_weights.operators`); ``Tensor.numpy()`` keeps
returning the bytes as stored.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidModelError, UnsupportedError
from ..format.types import TypeInfo, element_count

__all__ = ["SHUFFLED_FORMAT", "shuffle_4x16", "unshuffle_4x16", "unshuffle_matrix"]

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


def unshuffle_matrix(stored: np.ndarray, info: TypeInfo, shape, where: str) -> np.ndarray:
    """The weights of ``shape`` (``[output, ..., input]``) in their own dtype, unshuffled
    from the stored bytes: refuses types other than 8-bit integers and shapes that
    are not matrices or do not tile into 4x16 blocks."""
    if not (info.is_integer and info.bits == 8):
        raise UnsupportedError(f"{where} is {info.name}; shuffled weights are 8-bit "
                               f"(the kernel takes UINT8)")
    if len(shape) < 2:
        raise InvalidModelError(f"{where}: weights of shape {list(shape)} are not a matrix")
    element_count(shape, where)
    rows = element_count(shape[:-1], where)
    cols = shape[-1]
    out = unshuffle_4x16(stored, rows, cols, where).view(info.dtype).reshape(shape)
    out.flags.writeable = False
    return out
