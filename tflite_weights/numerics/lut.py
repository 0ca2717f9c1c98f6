"""TFLite Micro look-up-table compression (``COMPRESSION_METADATA``).

A model compressed for TFLite Micro carries a ``Model.metadata`` entry named
``COMPRESSION_METADATA`` whose buffer is a flatbuffer of
``tensorflow/lite/micro/compression/metadata.fbs`` (tensorflow/tflite-micro)::

    table Metadata  { schema_version:uint = 1; subgraphs:[Subgraph]; }
    table Subgraph  { lut_tensors:[LutTensor]; }   // indexed by subgraph index
    table LutTensor { tensor:int; value_buffer:uint; index_bitwidth:uint8; }

For each listed tensor, the tensor's own buffer no longer holds its values but
``index_bitwidth``-wide unsigned indices, packed **most significant bit
first** (big-endian bit order), in the tensor's element order, the last byte
padded with zero bits.  ``value_buffer`` names a buffer holding the value
table(s), encoded in the tensor's type.  A per-channel quantized tensor
(more than one ``scale``) has one table per channel along
``quantized_dimension``, all of the same length (``value_table_channel_stride``
= table elements / channels, short tables zero-padded), concatenated; an
element's index is looked up in its channel's table.  Sources:
``tensorflow/lite/micro/docs/compression.md`` and ``compression.h``
(``LookupTableData``: bit widths 1 to 7, channel stride up to 128).  TFLM
implements the channel on the first axis or, for ``quantized_dimension`` 3
(depthwise), the last; here the channel is the index along
``quantized_dimension`` whatever the axis, which is the same in those cases.

:meth:`Tensor.numpy` returns the decoded values for such tensors (so
:meth:`Tensor.dequantize` applies the tensor's quantization to them as usual);
:meth:`Tensor.raw` still returns the stored, compressed bytes, and
:attr:`Tensor.compression` describes the compression.  A schema version above 1
is refused with :class:`UnsupportedError` rather than guessed at.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidModelError, UnsupportedError
from ..format.nested import COMPRESSION_METADATA, COMPRESSION_SCHEMA_VERSION, LutTensor
from ..format.types import FIXED, TypeInfo, element_count

__all__ = ["MAX_INDEX_BITWIDTH", "unpack_indices", "decompress"]

#: largest index width decoded (TFLM itself stops at 7)
MAX_INDEX_BITWIDTH = 16


def unpack_indices(raw: np.ndarray, count: int, bits: int) -> np.ndarray:
    """``count`` unsigned ``bits``-wide integers packed most significant bit first."""
    need = -(-count * bits // 8)
    if raw.size < need:
        raise InvalidModelError(
            f"{count} {bits}-bit indices need {need} bytes, the data has {raw.size}")
    bitarr = np.unpackbits(raw[:need], bitorder="big")[:count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    return bitarr.astype(np.int64) @ weights if count else np.zeros(0, np.int64)


def decompress(lt: LutTensor, info: TypeInfo, shape, indices: np.ndarray,
               table_bytes: np.ndarray, channels: int, axis: int, where: str,
               holder: str = "the buffer") -> np.ndarray:
    """The values of a LUT-compressed tensor of type ``info`` and ``shape``:
    ``indices`` are its stored bytes, ``table_bytes`` the value-table buffer,
    ``channels`` the number of per-channel tables along ``axis`` (1: one table)."""
    if lt.schema_version > COMPRESSION_SCHEMA_VERSION:
        raise UnsupportedError(
            f"{where}: {COMPRESSION_METADATA} schema_version {lt.schema_version} is newer than "
            f"the version {COMPRESSION_SCHEMA_VERSION} this reader decodes")
    if info.layout != FIXED:
        raise UnsupportedError(f"{where}: a compressed {info.name} tensor cannot be decoded "
                               f"(value tables hold fixed-width values)")
    bits = lt.index_bitwidth
    if not 1 <= bits <= MAX_INDEX_BITWIDTH:
        raise InvalidModelError(f"{where}: {COMPRESSION_METADATA} gives index_bitwidth {bits}; "
                                f"1 to {MAX_INDEX_BITWIDTH} are decodable (TFLM uses 1 to 7)")
    shape = tuple(shape)
    count = element_count(shape, where)
    if table_bytes.size % info.itemsize:
        raise InvalidModelError(
            f"{where}: value table buffer {lt.value_buffer} holds {table_bytes.size} bytes, "
            f"not a whole number of {info.itemsize}-byte {info.name} values")
    table = table_bytes.view(info.dtype)
    if table.size == 0 or table.size % channels:
        raise InvalidModelError(
            f"{where}: value table buffer {lt.value_buffer} holds {table.size} values, which "
            f"do not split into {channels} equal non-empty table(s)")
    stride = table.size // channels
    need = -(-count * bits // 8)
    if need > indices.size:
        raise InvalidModelError(
            f"{where}: {count} {bits}-bit indices need {need} bytes, {holder} holds "
            f"{indices.size}")
    idx = unpack_indices(indices[:need], count, bits)
    if count and int(idx.max()) >= stride:
        raise InvalidModelError(
            f"{where}: index {int(idx.max())} lies beyond the {stride}-entry value table")
    if channels > 1:
        inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
        channel = (np.arange(count, dtype=np.int64) // inner) % channels
        idx = idx + channel * stride
    out = table[idx].reshape(shape)
    out.flags.writeable = False
    return out
