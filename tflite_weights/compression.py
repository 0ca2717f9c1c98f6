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

from dataclasses import dataclass

import numpy as np

from . import _schema
from ._flatbuffer import FlatBuffer
from .dtypes import element_count
from .errors import ClosedModelError, InvalidModelError, TFLiteWeightsError, UnsupportedError

__all__ = ["METADATA_NAME", "SCHEMA_VERSION", "LutTensor", "read_compression_metadata",
           "lut_tensor", "decompress", "unpack_indices"]

#: the Model.metadata name of the compression flatbuffer
METADATA_NAME = "COMPRESSION_METADATA"
#: the newest metadata schema version this reader decodes
SCHEMA_VERSION = 1

_TABLES = _schema.parse_tables("""
Metadata: schema_version:u32=1 subgraphs:[Subgraph]
Subgraph: lut_tensors:[LutTensor]
LutTensor: tensor:i32 value_buffer:u32 index_bitwidth:u8
""")
_MD_VERSION, _MD_SUBGRAPHS = (_TABLES["Metadata"].slot(n) for n in ("schema_version",
                                                                     "subgraphs"))
_SG_LUTS = _TABLES["Subgraph"].slot("lut_tensors")
_LT_TENSOR, _LT_VALUES, _LT_BITS = (_TABLES["LutTensor"].slot(n) for n in
                                    ("tensor", "value_buffer", "index_bitwidth"))

#: largest index width decoded (TFLM itself stops at 7)
MAX_INDEX_BITWIDTH = 16


@dataclass(frozen=True)
class LutTensor:
    """One compressed tensor: where it is, its value-table buffer, its index width."""

    subgraph: int
    tensor: int
    value_buffer: int
    index_bitwidth: int
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"scheme": "lut", "subgraph": self.subgraph, "tensor": self.tensor,
                "value_buffer": self.value_buffer, "index_bitwidth": self.index_bitwidth,
                "schema_version": self.schema_version}


def _metadata_window(model) -> "FlatBuffer | None":
    """A bounds-checked window over the COMPRESSION_METADATA entry's bytes (the first
    entry of that name; no copy), or None when there is none.  An empty entry gives
    an empty window, which is refused as damaged metadata."""
    from .metadata import metadata_entry
    e = metadata_entry(model, METADATA_NAME)
    if e is None:
        return None
    return FlatBuffer(model._fb.data, base=e.offset, size=e.size,
                      label=f"metadata {METADATA_NAME!r}")


def read_compression_metadata(model) -> "dict[tuple[int, int], LutTensor]":
    """``(subgraph, tensor) -> LutTensor`` for every compressed tensor (empty when the
    model has no COMPRESSION_METADATA).  Raises :class:`InvalidModelError` when the
    metadata is damaged, naming the field."""
    fb = _metadata_window(model)
    if fb is None:
        return {}
    root = fb.root()
    version = root.scalar(_MD_VERSION, "u32", 1, "schema_version")
    out: dict[tuple[int, int], LutTensor] = {}
    sgs = root.tables(_MD_SUBGRAPHS, "subgraphs")
    n_sg = len(model.subgraphs)
    for s in range(0 if sgs is None else len(sgs)):
        luts = sgs[s].tables(_SG_LUTS, "lut_tensors")
        for j in range(0 if luts is None else len(luts)):
            lt = luts[j]
            t = lt.scalar(_LT_TENSOR, "i32", 0, "tensor")
            entry = LutTensor(s, t, lt.scalar(_LT_VALUES, "u32", 0, "value_buffer"),
                              lt.scalar(_LT_BITS, "u8", 0, "index_bitwidth"), version)
            if s >= n_sg or not 0 <= t < len(model.subgraphs[s].tensors):
                raise InvalidModelError(
                    f"{fb.label}: subgraphs[{s}].lut_tensors[{j}] names tensor {t} of "
                    f"subgraph {s}, which does not exist")
            if (s, t) in out:
                raise InvalidModelError(
                    f"{fb.label}: tensor {t} of subgraph {s} is listed twice")
            out[(s, t)] = entry
    return out


def _table(model):
    cache = model.__dict__.get("_lut_tensors")
    if cache is None:
        model._check_open()
        try:
            cache = read_compression_metadata(model)
        except TFLiteWeightsError as e:
            cache = e
        model.__dict__["_lut_tensors"] = cache
    return cache


def lut_tensor(tensor) -> "LutTensor | None":
    """The tensor's compression entry, or None when it is stored plainly.

    Raises the metadata's error when COMPRESSION_METADATA exists but cannot be
    read (then no tensor's stored bytes can be trusted to be its values).
    """
    cache = _table(tensor._model)
    if isinstance(cache, Exception):
        raise InvalidModelError(
            f"{tensor._where} ({tensor.name!r}): the model's {METADATA_NAME} cannot be "
            f"read, so whether this tensor is compressed is unknown: {cache}") from cache
    if not cache:
        return None
    return cache.get((tensor.subgraph, tensor.index))


def unpack_indices(raw: np.ndarray, count: int, bits: int) -> np.ndarray:
    """``count`` unsigned ``bits``-wide integers packed most significant bit first."""
    need = -(-count * bits // 8)
    if raw.size < need:
        raise InvalidModelError(
            f"{count} {bits}-bit indices need {need} bytes, the data has {raw.size}")
    bitarr = np.unpackbits(raw[:need], bitorder="big")[:count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    return bitarr.astype(np.int64) @ weights if count else np.zeros(0, np.int64)


def decompress(tensor) -> np.ndarray:
    """The decoded values of a LUT-compressed tensor, shaped and typed as the tensor."""
    lt = lut_tensor(tensor)
    where = f"{tensor._where} ({tensor.name!r})"
    if lt is None:
        raise UnsupportedError(f"{where} is not compressed")
    if lt.schema_version > SCHEMA_VERSION:
        raise UnsupportedError(
            f"{where}: {METADATA_NAME} schema_version {lt.schema_version} is newer than the "
            f"version {SCHEMA_VERSION} this reader decodes")
    info = tensor._value_type()
    if info.layout != "fixed":
        raise UnsupportedError(f"{where}: a compressed {info.name} tensor cannot be decoded "
                               f"(value tables hold fixed-width values)")
    bits = lt.index_bitwidth
    if not 1 <= bits <= MAX_INDEX_BITWIDTH:
        raise InvalidModelError(f"{where}: {METADATA_NAME} gives index_bitwidth {bits}; "
                                f"1 to {MAX_INDEX_BITWIDTH} are decodable (TFLM uses 1 to 7)")
    shape = tuple(tensor.shape)
    count = element_count(shape, where)
    model = tensor._model
    try:
        table_bytes = model.buffer(lt.value_buffer).array()
    except ClosedModelError:
        raise
    except TFLiteWeightsError as e:
        raise InvalidModelError(f"{where}: its value table (buffer {lt.value_buffer}) cannot be "
                                f"read: {e}") from e
    if table_bytes.size % info.itemsize:
        raise InvalidModelError(
            f"{where}: value table buffer {lt.value_buffer} holds {table_bytes.size} bytes, "
            f"not a whole number of {info.itemsize}-byte {info.name} values")
    table = table_bytes.view(info.dtype)

    channels, axis = 1, 0
    q = tensor.quantization
    if q is not None and q.scale.size > 1:
        axis = q.quantized_dimension
        if not 0 <= axis < len(shape) or shape[axis] != q.scale.size:
            raise InvalidModelError(
                f"{where}: {q.scale.size} per-channel scales do not fit axis {axis} of shape "
                f"{list(shape)}, so the value tables cannot be assigned to channels")
        channels = q.scale.size
    if table.size == 0 or table.size % channels:
        raise InvalidModelError(
            f"{where}: value table buffer {lt.value_buffer} holds {table.size} values, which "
            f"do not split into {channels} equal non-empty table(s)")
    stride = table.size // channels

    r = tensor._data_range()
    if r is None:
        raise InvalidModelError(f"{where} is listed in {METADATA_NAME} but stores no indices")
    fb, start, length = r
    need = -(-count * bits // 8)
    if need > length:
        raise InvalidModelError(
            f"{where}: {count} {bits}-bit indices need {need} bytes, buffer "
            f"{tensor.buffer} holds {length}")
    idx = unpack_indices(fb.array(start, np.uint8, need, tensor._where), count, bits)
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
