"""One decoder per table of the schema, each turning bytes into a small frozen record.

This is the only module that knows which slot of a table holds which field
(the slots come from :mod:`.schema`, looked up once here) and the only place a
rule of the format about a table's fields is written:

* a buffer's bytes are its ``data`` vector when present, else ``offset``/``size``
  from the start of the file when ``offset > 1``, else none
  (:func:`buffer_location`, the runtime's ``get_readonly_data``);
* an operator's code is ``max(builtin_code, deprecated_builtin_code)``
  (:func:`builtin_code`, LiteRT ``schema_utils.cc::GetBuiltinCode``);
* a quantization without scales and without details is no quantization
  (:func:`decode_quantization`).

Each table has a per-table decoder (``decode_*``: one table, every field, the
precise error of a damaged field) and, for the tables a model has thousands of
(tensors, buffers), a columnar decoder beside it (``*_columns``: every entry of a
vector with a few vectorised reads).  A columnar entry whose table fails any
check is marked not ``ok`` and left to the per-table decoder, which raises the
precise error; the tests hold the two variants equal on every tensor of every
model at hand and on damaged copies.

Columnar decoders decode what is shared once: tables referenced many times,
vectors shared by many tables (names, shapes, scales) are read once and the
results shared, so their cost is bounded by the bytes of the file, whatever
the number of references.  Records hold plain values, tuples and read-only
numpy views over the file; nothing here holds a model.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from ..errors import InvalidModelError
from . import schema
from .flatbuffer import Bulk, FlatBuffer, Table, TableVector, empty_array
from .types import MAX_RANK, TYPES

__all__ = [
    "ModelHeader", "decode_model_header",
    "BufferRecord", "decode_buffer", "buffer_location", "BufferColumns", "buffer_columns",
    "TensorRecord", "decode_tensor", "tensor_quantization", "tensor_sparsity",
    "tensor_shape_signature", "tensor_is_variable", "tensor_has_rank", "TensorColumns", "tensor_columns", "UNREAD",
    "Quantization", "BlockwiseDetails", "MultiAxisDetails", "decode_quantization",
    "SparsityParameters", "DimensionMetadata", "decode_sparsity",
    "OperatorCodeRecord", "decode_operator_code", "builtin_code",
    "OperatorRecord", "decode_operator", "OPTIONS_UNIONS",
    "SubgraphRecord", "decode_subgraph", "subgraph_vector",
    "SignatureRecord", "decode_signature", "decode_tensor_maps",
    "MetadataRecord", "decode_metadata",
    "ExternalBufferGroup", "ExternalBuffer", "decode_external_buffer_group",
    "decode_external_buffer",
    "table_to_dict", "table_defaults", "vector",
]

_S = schema.slots

# -- Model ---------------------------------------------------------------------------------

(_M_VERSION, _M_OPCODES, _M_SUBGRAPHS, _M_DESCRIPTION, _M_BUFFERS, _M_METADATA,
 _M_SIGNATURES, _M_GROUPS, _M_EXTERNAL) = _S(
    "Model", "version", "operator_codes", "subgraphs", "description", "buffers", "metadata",
    "signature_defs", "external_buffer_groups", "external_buffers")

#: the Model's vectors of tables, by field name
_MODEL_VECTORS = {"operator_codes": _M_OPCODES, "subgraphs": _M_SUBGRAPHS,
                  "buffers": _M_BUFFERS, "metadata": _M_METADATA,
                  "signature_defs": _M_SIGNATURES, "external_buffer_groups": _M_GROUPS,
                  "external_buffers": _M_EXTERNAL}


@dataclass(frozen=True)
class ModelHeader:
    """The root table: ``version``, and the root table itself for its vectors."""

    version: int
    root: Table


def decode_model_header(fb: FlatBuffer) -> ModelHeader:
    """The root table behind the ``TFL3`` identifier, with ``Model.version`` checked
    (:class:`InvalidModelError` for a file that is not a TFLite flatbuffer, or of
    another schema version)."""
    root = fb.root(schema.FILE_IDENTIFIER)
    version = root.scalar(_M_VERSION, "u32", 0, "version")
    if version != schema.SCHEMA_VERSION:
        raise InvalidModelError(
            f"{fb.label}: Model.version is {version}; only schema version "
            f"{schema.SCHEMA_VERSION} is defined for TFLite files")
    return ModelHeader(version, root)


def model_version(root: Table) -> int:
    return root.scalar(_M_VERSION, "u32", 0, "version")


def model_version_pos(root: Table) -> int:
    """Where ``Model.version`` is (the root table's position when it is absent)."""
    return root.field_pos(_M_VERSION) or root.pos


def model_description(root: Table) -> "str | None":
    return root.string(_M_DESCRIPTION, "description")


def vector(root: Table, name: str) -> "TableVector | None":
    """One of the Model's vectors of tables by field name (None when absent)."""
    return root.tables(_MODEL_VECTORS[name], name)


# -- Buffer --------------------------------------------------------------------------------

_B_DATA, _B_OFFSET, _B_SIZE = _S("Buffer", "data", "offset", "size")


@dataclass(frozen=True)
class BufferRecord:
    """One ``Model.buffers`` entry.  ``location`` is ``"inline"`` (the ``data``
    vector), ``"offset"`` (``offset``/``size`` from the start of the file) or None
    (no data); ``start`` and ``length`` are the byte range in the file (0, 0 for
    none).  ``stored_offset``/``stored_size`` are the fields as stored."""

    index: int
    location: "str | None"
    start: int
    length: int
    stored_offset: int
    stored_size: int


def buffer_location(data: "tuple[int, int] | None", offset: int, size: int, file_size: int
                    ) -> "tuple[str | None, int, int, str | None]":
    """The runtime's rule (``InterpreterBuilder::ParseTensors``, ``get_readonly_data``):
    ``data`` wins when present; otherwise ``offset > 1`` locates ``size`` bytes from
    the start of the file, which must lie inside it; otherwise there is no data.
    Returns ``(location, start, length, problem)``; ``problem`` says why an offset
    buffer is unusable (location None then), else None."""
    if data is not None:
        return "inline", data[0], data[1], None
    if offset > 1:
        if offset + size > file_size:
            return None, 0, 0, (f"offset {offset} + size {size} = {offset + size} lies beyond "
                                f"the end of the file ({file_size} bytes)")
        return "offset", offset, size, None
    return None, 0, 0, None


def read_buffer(table: Table) -> "tuple[tuple[int, int] | None, int, int]":
    """A Buffer table's fields: ``(data vector (start, count) or None, offset, size)``."""
    return (table.vector(_B_DATA, 1, "data"), table.scalar(_B_OFFSET, "u64", 0, "offset"),
            table.scalar(_B_SIZE, "u64", 0, "size"))


def decode_buffer(table: Table, index: int, file_size: int, label: str) -> BufferRecord:
    data, offset, size = read_buffer(table)
    loc, start, length, problem = buffer_location(data, offset, size, file_size)
    if problem is not None:
        raise InvalidModelError(f"{label}: buffers[{index}]: {problem}")
    return BufferRecord(index, loc, start, length, offset, size)


@dataclass(frozen=True, eq=False)
class BufferColumns:
    """Every buffer's ``start``, ``length`` and ``status`` as int64 arrays: status 1
    (bytes at ``start``), 0 (no data) or -1 (the entry fails a check: decode it with
    :func:`decode_buffer`, which raises the reason)."""

    start: np.ndarray
    length: np.ndarray
    status: np.ndarray


def buffer_columns(fb: FlatBuffer, vec: "TableVector | None", file_size: int) -> BufferColumns:
    """:func:`buffer_location` for every buffer at once (the same rule, vectorised)."""
    n = 0 if vec is None else len(vec)
    if n == 0:
        z = np.zeros(0, np.int64)
        return BufferColumns(z, z, z)
    bulk = Bulk(fb)
    ok = np.ones(n, bool)
    _, f = bulk.tables(vec.start + 4 * np.arange(n, dtype=np.int64), ok,
                       (_B_DATA, _B_OFFSET, _B_SIZE))
    start, count = bulk.vectors(f[:, _B_DATA], ok, 1)
    off = bulk.scalar(f[:, _B_OFFSET], ok, "u64", 0).astype(np.uint64)
    size = bulk.scalar(f[:, _B_SIZE], ok, "u64", 0).astype(np.uint64)
    inline = start >= 0
    outside = ~inline & (off > 1)
    fsize = np.uint64(file_size)
    fits = (off <= fsize) & (size <= fsize - np.minimum(off, fsize))
    ok &= ~outside | fits
    begin = np.where(inline, start, np.where(outside & fits, off, 0).astype(np.int64))
    length = np.where(inline, count, np.where(outside & fits, size, 0).astype(np.int64))
    status = np.where(ok, (inline | outside).astype(np.int64), -1)
    return BufferColumns(begin, length, status)


# -- QuantizationParameters ------------------------------------------------------------------

_Q_MIN, _Q_MAX, _Q_SCALE, _Q_ZERO_POINT, _Q_DETAILS, _Q_DIM = _S(
    "QuantizationParameters", "min", "max", "scale", "zero_point", "details",
    "quantized_dimension")
_BW_SCALES, _BW_ZERO_POINTS, _BW_BLOCK_SIZE, _BW_BLOCK_SHAPE = _S(
    "BlockwiseQuantization", "scales", "zero_points", "block_size", "block_shape")
_MA_SCALES, _MA_ZERO_POINTS, _MA_BLOCK_SIZE, _MA_DIMS = _S(
    "MultiAxisQuantization", "scales", "zero_points", "block_size", "quantized_dimensions")
_CQ_CUSTOM = _S("CustomQuantization", "custom")[0]
_EMPTY_F32 = empty_array(np.float32)


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
    block_shape: "tuple[int, ...]" = ()


@dataclass(frozen=True)
class MultiAxisDetails:
    """MultiAxisQuantization: like blockwise, over several quantized dimensions."""

    scales: int
    zero_points: int
    block_size: int
    quantized_dimensions: "tuple[int, ...]" = ()


BLOCKWISE = "BlockwiseQuantization"
MULTI_AXIS = "MultiAxisQuantization"
CUSTOM = "CustomQuantization"


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
    ``Tensor.dequantize()`` then raises the reason.  See
    :mod:`tflite_weights.numerics.blockwise`.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    min: np.ndarray = field(default_factory=lambda: _EMPTY_F32)
    max: np.ndarray = field(default_factory=lambda: _EMPTY_F32)
    details_type: str = "NONE"
    custom: "bytes | None" = None
    blockwise: "BlockwiseDetails | None" = None
    multi_axis: "MultiAxisDetails | None" = None
    block_size: int = 0
    block_shape: "tuple[int, ...]" = ()
    block_scale: "np.ndarray | None" = None
    block_zero_point: "np.ndarray | None" = None

    @property
    def is_blockwise(self) -> bool:
        """True for BlockwiseQuantization and MultiAxisQuantization (scales in tensors)."""
        return self.details_type in (BLOCKWISE, MULTI_AXIS)

    @property
    def details(self) -> "BlockwiseDetails | MultiAxisDetails | None":
        """The blockwise or multi-axis details (None for the other schemes)."""
        return self.blockwise if self.blockwise is not None else self.multi_axis

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
        return self.details_type in ("NONE", CUSTOM) and self.scale.size > 0

    def summary(self) -> str:
        """One short line: ``scale=0.0123 zp=-5`` or ``per-channel(8) axis=0``."""
        if self.details_type == BLOCKWISE and self.blockwise is not None:
            return f"blockwise(block={self.blockwise.block_size})"
        if self.details_type == MULTI_AXIS and self.multi_axis is not None:
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


# Every optional field's default as a class attribute (dataclasses keep those of
# plain defaults, not of factories), so that ``_from_fields`` can leave them out.
for _f in fields(Quantization):
    if _f.default is MISSING and _f.default_factory is not MISSING:
        setattr(Quantization, _f.name, _f.default_factory())
del _f


def decode_quantization(q: "Table | None") -> "Quantization | None":
    """A QuantizationParameters table as a :class:`Quantization`; None when the table
    is absent, or has no scale and no details (the runtime's "no quantization")."""
    if q is None:
        return None
    scale = q.array(_Q_SCALE, "f32", "scale")
    code, details = q.union(_Q_DETAILS - 1, _Q_DETAILS, "details")
    if scale.size == 0 and code == 0:
        return None
    dname = schema.union_member("QuantizationDetails", code) or "NONE"
    custom = blockwise = multi_axis = None
    if details is not None:
        if dname == CUSTOM:
            custom = details.string_bytes(_CQ_CUSTOM, "custom") or b""
        elif dname == BLOCKWISE:
            blockwise = BlockwiseDetails(
                details.scalar(_BW_SCALES, "i32", 0, "scales"),
                details.scalar(_BW_ZERO_POINTS, "i32", 0, "zero_points"),
                details.scalar(_BW_BLOCK_SIZE, "i32", 0, "block_size"),
                details.ints(_BW_BLOCK_SHAPE, "i32", "block_shape") or ())
        elif dname == MULTI_AXIS:
            multi_axis = MultiAxisDetails(
                details.scalar(_MA_SCALES, "i32", 0, "scales"),
                details.scalar(_MA_ZERO_POINTS, "i32", 0, "zero_points"),
                details.scalar(_MA_BLOCK_SIZE, "i32", 0, "block_size"),
                details.ints(_MA_DIMS, "i32", "quantized_dimensions") or ())
    return Quantization(
        scale=scale,
        zero_point=q.array(_Q_ZERO_POINT, "i64", "zero_point"),
        quantized_dimension=q.scalar(_Q_DIM, "i32", 0, "quantized_dimension"),
        min=q.array(_Q_MIN, "f32", "min"),
        max=q.array(_Q_MAX, "f32", "max"),
        details_type=dname,
        custom=custom,
        blockwise=blockwise,
        multi_axis=multi_axis,
        block_size=(blockwise.block_size if blockwise is not None else
                    multi_axis.block_size if multi_axis is not None else 0),
    )


def quantization_details_pos(q: Table) -> int:
    """Where the details table is (the parameters' position when it is absent)."""
    d = q.table(_Q_DETAILS, "details")
    return q.pos if d is None else d.pos


def quantization_has_zero_point(q: Table) -> bool:
    """Whether the ``zero_point`` field is present (the runtime refuses scales without)."""
    return q.has(_Q_ZERO_POINT)


# -- SparsityParameters ------------------------------------------------------------------------

_SP_TRAVERSAL, _SP_BLOCK_MAP, _SP_DIM_METADATA = _S(
    "SparsityParameters", "traversal_order", "block_map", "dim_metadata")
_DM_FORMAT, _DM_DENSE_SIZE, _DM_SEGMENTS, _DM_INDICES = _S(
    "DimensionMetadata", "format", "dense_size", "array_segments", "array_indices")
_INDEX_KINDS = {schema.union_code("SparseIndexVector", m): k for m, k in
                (("Int32Vector", "i32"), ("Uint16Vector", "u16"), ("Uint8Vector", "u8"))}
_VALUES = 0  # slot of ``values`` in Int32Vector / Uint16Vector / Uint8Vector
DENSE = "DENSE"
SPARSE_CSR = "SPARSE_CSR"


def _listed(a: "np.ndarray | None") -> "list | None":
    return None if a is None else a.tolist()


@dataclass(frozen=True, eq=False)
class DimensionMetadata:
    """One traversal level: ``format`` is "DENSE" or "SPARSE_CSR"; the index vectors
    are None when the file leaves them out (a damaged SPARSE_CSR level)."""

    format: str
    dense_size: int
    array_segments: "np.ndarray | None" = None
    array_indices: "np.ndarray | None" = None


@dataclass(frozen=True, eq=False)
class SparsityParameters:
    traversal_order: "tuple[int, ...]"
    block_map: "tuple[int, ...]"
    dim_metadata: "tuple[DimensionMetadata, ...]"

    def to_dict(self) -> dict:
        return {
            "traversal_order": list(self.traversal_order),
            "block_map": list(self.block_map),
            "dim_metadata": [
                {"format": d.format, "dense_size": d.dense_size} if d.format == DENSE else
                {"format": d.format,
                 "array_segments": _listed(d.array_segments),
                 "array_indices": _listed(d.array_indices)}
                for d in self.dim_metadata],
        }


def _index_vector(t: Table, slot: int, name: str) -> "np.ndarray | None":
    code, vec = t.union(slot - 1, slot, name)
    if code == 0 or vec is None:
        return None
    kind = _INDEX_KINDS.get(code)
    if kind is None:
        raise t.error(name, f"unknown SparseIndexVector type {code}")
    return vec.array(_VALUES, kind, f"{name}.values")


def sparsity_levels(table: Table) -> "tuple[bool, bool, TableVector | None]":
    """``(has traversal_order, has dim_metadata, the dim_metadata vector)``."""
    return (table.has(_SP_TRAVERSAL), table.has(_SP_DIM_METADATA),
            table.tables(_SP_DIM_METADATA, "dim_metadata"))


def decode_dimension(d: Table) -> DimensionMetadata:
    fmt = schema.enum_name("DimensionType", d.scalar(_DM_FORMAT, "i8", 0, "format"))
    if fmt == DENSE:
        return DimensionMetadata(DENSE, d.scalar(_DM_DENSE_SIZE, "i32", 0, "dense_size"))
    if fmt == SPARSE_CSR:
        return DimensionMetadata(
            SPARSE_CSR, d.scalar(_DM_DENSE_SIZE, "i32", 0, "dense_size"),
            _index_vector(d, _DM_SEGMENTS, "array_segments"),
            _index_vector(d, _DM_INDICES, "array_indices"))
    raise d.error("format", f"unknown DimensionType {fmt.strip('<>')}")


def dimension_problems(d: Table) -> "list[tuple[str, str]]":
    """What a DimensionMetadata table lacks, as ``(field, text)`` pairs: an unknown
    format, or a SPARSE_CSR level without one of its index vectors (the runtime
    refuses both; :func:`decode_dimension` raises the first)."""
    fmt = schema.enum_name("DimensionType", d.scalar(_DM_FORMAT, "i8", 0, "format"))
    if fmt == DENSE:
        return []
    if fmt != SPARSE_CSR:
        return [("format", f"unknown dimension format {fmt.strip('<>')}")]
    out = []
    for slot, fname in ((_DM_SEGMENTS, "array_segments"), (_DM_INDICES, "array_indices")):
        code = d.scalar(slot - 1, "u8", 0, fname + "_type")
        if code not in _INDEX_KINDS or d.table(slot, fname) is None:
            out.append((fname, f"a SPARSE_CSR dimension needs {fname}"))
    return out


def decode_sparsity(table: "Table | None") -> "SparsityParameters | None":
    """A SparsityParameters table (index vectors stay views over the file)."""
    if table is None:
        return None
    traversal = table.ints(_SP_TRAVERSAL, "i32", "traversal_order") or ()
    block_map = table.ints(_SP_BLOCK_MAP, "i32", "block_map") or ()
    vec = table.tables(_SP_DIM_METADATA, "dim_metadata")
    dims = tuple(decode_dimension(vec[i]) for i in range(0 if vec is None else len(vec)))
    return SparsityParameters(traversal, block_map, dims)


# -- Tensor ---------------------------------------------------------------------------------------

(_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_IS_VARIABLE, _T_SPARSITY,
 _T_SHAPE_SIGNATURE, _T_HAS_RANK, _T_EXTERNAL) = _S(
    "Tensor", "shape", "type", "buffer", "name", "quantization", "is_variable", "sparsity",
    "shape_signature", "has_rank", "external_buffer")


def _text(raw: bytes) -> str:
    """A string field as text: UTF-8, undecodable bytes kept as backslash escapes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class TensorRecord:
    """The fields of one Tensor table that say what it is and where its values are
    (the fields the columnar decoder reads too), and the table, from which the others
    are read when asked (:func:`tensor_shape_signature`, :func:`tensor_is_variable`,
    :func:`tensor_has_rank`, :func:`tensor_quantization`, :func:`tensor_sparsity`), so
    that a damaged one fails alone.  ``has_sparsity`` says whether that field is set.
    (The record belongs to the table, not to a place in a vector: a table named by
    many entries is one record.)"""

    name: str
    shape: "tuple[int, ...]"
    type_code: int
    buffer: int
    external_buffer: int
    has_sparsity: bool
    table: Table


def decode_tensor(table: Table) -> TensorRecord:
    name = table.string_bytes(_T_NAME, "name")
    return TensorRecord(
        name="" if name is None else _text(name),
        shape=table.ints(_T_SHAPE, "i32", "shape") or (),
        type_code=table.scalar(_T_TYPE, "i8", 0, "type"),
        buffer=table.scalar(_T_BUFFER, "u32", 0, "buffer"),
        external_buffer=table.scalar(_T_EXTERNAL, "u32", 0, "external_buffer"),
        has_sparsity=table.has(_T_SPARSITY),
        table=table,
    )


def tensor_shape_signature(rec: TensorRecord) -> "tuple[int, ...] | None":
    return rec.table.ints(_T_SHAPE_SIGNATURE, "i32", "shape_signature")


def tensor_is_variable(rec: TensorRecord) -> bool:
    return bool(rec.table.scalar(_T_IS_VARIABLE, "bool", 0, "is_variable"))


def tensor_has_rank(rec: TensorRecord) -> bool:
    return bool(rec.table.scalar(_T_HAS_RANK, "bool", 0, "has_rank"))


def tensor_quantization(rec: TensorRecord) -> "Table | None":
    """The tensor's QuantizationParameters table (None when absent)."""
    return rec.table.table(_T_QUANT, "quantization")


def tensor_sparsity(rec: TensorRecord) -> "Table | None":
    """The tensor's SparsityParameters table (None when absent)."""
    return rec.table.table(_T_SPARSITY, "sparsity")


#: a quantization entry of the columns not decoded yet (the table is read on its own)
UNREAD = object()

#: bytes per element of each fixed-width type code (0 for the others)
_FIXED_ITEMSIZE = np.array([TYPES[c].itemsize for c in sorted(TYPES)], dtype=np.int64)
#: element counts are capped here: larger ones cannot fit any buffer, and int64
#: arithmetic on them stays exact
NUMEL_CAP = 1 << 40


class TensorColumns:
    """A vector of tensors decoded at once: per entry ``names``, ``shapes``,
    ``types``, ``buffers`` (lists), ``quants`` (a :class:`Quantization`, None, or
    :data:`UNREAD` for parameters that need the per-table decoder: details,
    ``min``/``max``, or a table the bulk pass could not read), ``plain`` (no
    sparsity and no external buffer) and ``ok`` (False: the tensor's table failed a
    check, decode it with :func:`decode_tensor`).  ``counts`` (element counts,
    capped), ``usable`` (ok, plain, rank within bounds) and ``type_codes``/``buffer_ids``
    are int64 arrays for vectorised passes; ``positions`` the tables' positions."""

    __slots__ = ("n", "start", "ok", "names", "shapes", "types", "buffers", "plain",
                 "quants", "usable", "type_codes", "buffer_ids", "counts", "positions")

    def __len__(self) -> int:
        return self.n


def _distinct(pos: np.ndarray) -> "tuple[np.ndarray, np.ndarray | None]":
    """``(distinct positions, inverse)``; the inverse is None when every position is
    distinct (writers lay a vector's targets out in order: checking that is a single
    pass, sorting is not needed then)."""
    if pos.size < 2:
        return pos, None
    d = np.diff(pos)
    if (d > 0).all() or (d < 0).all():
        return pos, None
    u, inv = np.unique(pos, return_inverse=True)
    return u, inv.reshape(-1)


def _shared(bulk: Bulk, pos: np.ndarray, ok: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """``(distinct positions, inverse)`` of the readable entries (others map to -1)."""
    u, inv = _distinct(np.where(ok, pos, -1))
    return u, (np.arange(pos.size) if inv is None else inv)


def tensor_columns(fb: FlatBuffer, vec: "TableVector | None") -> TensorColumns:
    """Decode every tensor of ``vec``; tables, names, shapes, scales and zero points
    shared by many tensors are read once (the cost is bounded by the bytes of the file,
    however many times the vector names one table)."""
    c = TensorColumns()
    n = c.n = 0 if vec is None else len(vec)
    c.start = 0 if vec is None else vec.start
    if n == 0:
        c.ok = c.names = c.shapes = c.types = c.buffers = c.plain = c.quants = []
        z = np.zeros(0, np.int64)
        c.usable, c.type_codes, c.buffer_ids, c.counts, c.positions = z.astype(bool), z, z, z, z
        return c
    bulk = Bulk(fb)
    ok_all = np.ones(n, bool)
    upos = c.start + 4 * np.arange(n, dtype=np.int64)
    tpos = upos + bulk.u32(upos, ok_all)
    # one decode per distinct table: a vector naming one table many times costs one
    tables, inverse = _shared(bulk, tpos, ok_all)
    m = tables.size
    ok = tables >= 0
    # the tables' positions are known: decode them from a synthetic "offset" 0 away
    _, f = bulk.tables_at(np.where(ok, tables, 0), ok, (
        _T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_SPARSITY, _T_EXTERNAL))
    ttype = bulk.scalar(f[:, _T_TYPE], ok, "i8", 0)
    tbuf = bulk.scalar(f[:, _T_BUFFER], ok, "u32", 0)
    name_start, name_len = bulk.vectors(f[:, _T_NAME], ok, 1)
    shape_start, shape_len = bulk.vectors(f[:, _T_SHAPE], ok, 4)
    plain = ok & (f[:, _T_SPARSITY] == 0) & (f[:, _T_EXTERNAL] == 0)
    # quantization: plain affine parameters only; anything else is read on its own
    qok = ok.copy()
    qpos, qf = bulk.tables(f[:, _T_QUANT], qok, (_Q_MIN, _Q_MAX, _Q_SCALE, _Q_ZERO_POINT,
                                                  _Q_DETAILS - 1, _Q_DIM))
    has_q = qpos >= 0
    sc_start, sc_len = bulk.vectors(qf[:, _Q_SCALE], qok, 4)
    zp_start, zp_len = bulk.vectors(qf[:, _Q_ZERO_POINT], qok, 8)
    qdim = bulk.scalar(qf[:, _Q_DIM], qok, "i32", 0)
    dtype_ = bulk.scalar(qf[:, _Q_DETAILS - 1], qok, "u8", 0)
    fast_q = (qok & has_q & (dtype_ == 0) & (sc_len > 0)
              & (qf[:, _Q_MIN] == 0) & (qf[:, _Q_MAX] == 0))
    no_q = qok & (~has_q | ((sc_len == 0) & (dtype_ == 0)))

    names = _strings(bulk, name_start, np.where(ok, name_len, 0))
    shapes, counts = _shapes(bulk, shape_start, np.where(ok, shape_len, 0))
    scales = _runs_by_length(bulk, sc_start, np.where(fast_q, sc_len, 0), "<f4")
    zps = _runs_by_length(bulk, zp_start, np.where(fast_q, zp_len, 0), "<i8")
    quants: list = [None if q else UNREAD for q in no_q.tolist()]
    make = Quantization._from_fields
    fq = np.flatnonzero(fast_q)
    for i, qd in zip(fq.tolist(), qdim[fq].tolist()):
        quants[i] = make(scales[i], zps[i], qd)

    # back from distinct tables to vector entries
    inv = inverse.tolist()
    ok_e = ok[inverse] & ok_all
    c.ok = ok_e.tolist()
    if m == n and np.array_equal(inverse, np.arange(n)):
        c.names, c.shapes, c.quants = names, shapes, quants
        c.types, c.buffers, c.plain = ttype.tolist(), tbuf.tolist(), plain.tolist()
    else:
        c.names = [names[i] for i in inv]
        c.shapes = [shapes[i] for i in inv]
        c.quants = [quants[i] for i in inv]
        c.types = ttype[inverse].tolist()
        c.buffers = tbuf[inverse].tolist()
        c.plain = plain[inverse].tolist()
    c.type_codes = ttype[inverse]
    c.buffer_ids = tbuf[inverse]
    c.counts = counts[inverse]
    # a shape of more than MAX_RANK dimensions takes the per-table path, which refuses it
    c.usable = ok_e & plain[inverse] & (shape_len[inverse] <= MAX_RANK)
    c.positions = tpos
    return c


def _strings(bulk: Bulk, start: np.ndarray, length: np.ndarray) -> list:
    """Each (start, length) byte run as text, distinct runs read once and split from
    one gather (one decode when all the text is ASCII)."""
    # a run's start decides its length (a vector's count sits before it): runs are
    # distinct by start
    ustart, inverse = _distinct(np.where(length > 0, start, -1))
    if inverse is None:
        ulen = length
    else:
        ulen = np.zeros(ustart.size, np.int64)
        ulen[inverse] = length
    blob, end = _gather_runs(bulk, ustart, ulen, "u1")
    ends, lens = end.tolist(), ulen.tolist()
    raw = blob.tobytes()
    if raw.isascii():  # one decode; character offsets equal byte offsets
        text = raw.decode("ascii")
        texts = [text[e - k:e] for e, k in zip(ends, lens)]
    else:
        texts = [_text(raw[e - k:e]) for e, k in zip(ends, lens)]
    if inverse is None:
        return texts
    return [texts[i] for i in inverse.tolist()]


def _shapes(bulk: Bulk, start: np.ndarray, rank: np.ndarray) -> "tuple[list, np.ndarray]":
    """Every shape (a tuple of ints) and element count (0 when a dimension is not
    positive, capped at ``NUMEL_CAP``), distinct vectors read once, the tuples made by
    zip (in C) over one matrix per rank."""
    ustart, inverse = _distinct(np.where(rank > 0, start, -1))
    if inverse is None:
        urank = rank
    else:
        urank = np.zeros(ustart.size, np.int64)
        urank[inverse] = rank
    dims, end = _gather_runs(bulk, ustart, urank, "<i4")
    begin = end - urank
    out = np.empty(urank.size, object)
    out.fill(())
    for k in np.unique(urank).tolist():  # shapes of one rank: rows of one matrix
        if k:
            idx = np.flatnonzero(urank == k)
            mat = dims[begin[idx][:, None] + np.arange(k)]
            out[idx] = np.fromiter(zip(*mat.T.tolist()), object, idx.size)
    # element counts: one product per run (runs are contiguous in ``dims``, in order); a
    # zero dimension gives 0, and products past the cap are capped (in float64 they
    # stay exact below 2**53, and the partial products of dimensions >= 1 only grow)
    counts = np.ones(urank.size, np.int64)
    live = urank > 0
    if live.any():
        d = np.clip(dims.astype(np.int64), 0, NUMEL_CAP).astype(np.float64)
        starts = begin[live]
        with np.errstate(over="ignore"):  # past the cap: inf, then capped
            prod = np.multiply.reduceat(d, starts)
        zero = np.minimum.reduceat(d, starts) == 0
        counts[live] = np.where(zero, 0, np.minimum(prod, NUMEL_CAP)).astype(np.int64)
    if inverse is None:
        return out.tolist(), counts
    return out[inverse].tolist(), counts[inverse]


def _runs_by_length(bulk: Bulk, start: np.ndarray, count: np.ndarray, dtype: str) -> list:
    """Per entry, the ``count[i]`` values of ``dtype`` at ``start[i]`` as a read-only
    array (an empty one when the count is 0), read once per distinct run.  The arrays
    are copies, not views of the file, so that closing a model releases its mapping
    however many parameters were read: runs of one length are gathered together as
    the rows of one array, long aligned runs copied as slices."""
    n = count.size
    out = np.empty(n, object)
    out.fill(empty_array(dtype))
    live = count > 0
    if not live.any():
        return out.tolist()
    dt = np.dtype(dtype)
    k = dt.itemsize
    ustart, inverse = _distinct(start[live])
    if inverse is None:
        ucount = count[live]
        inverse = np.arange(ustart.size)
    else:
        ucount = np.zeros(ustart.size, np.int64)
        ucount[inverse] = count[live]
    rows = np.empty(ustart.size, object)
    long_runs = (ucount >= _LONG_RUN) & (ustart % k == 0)
    if long_runs.any():
        view = bulk.view(dt.str)
        for i in np.flatnonzero(long_runs).tolist():
            s0, c0 = int(ustart[i]) // k, int(ucount[i])
            a = view[s0:s0 + c0].copy()
            a.flags.writeable = False
            rows[i] = a
    short = ~long_runs
    for length in np.unique(ucount[short]).tolist():
        sel = np.flatnonzero(short & (ucount == length))
        pos = (ustart[sel][:, None] + k * np.arange(length)).reshape(-1)
        mat = bulk.gather(pos, dt.str).reshape(-1, length)
        mat.flags.writeable = False
        rows[sel] = np.fromiter(mat, object, sel.size)  # row views of one gathered copy
    out[np.flatnonzero(live)] = rows[inverse.reshape(-1)]
    return out.tolist()


#: runs this long (and aligned) are copied as slices rather than gathered element-wise
_LONG_RUN = 64


def _gather_runs(bulk: Bulk, start: np.ndarray, count: np.ndarray, dtype: str):
    """Concatenate the runs ``[start[i], start[i] + count[i] * itemsize)`` into one
    array of ``dtype``; returns it (read-only) and each run's end index."""
    dt = np.dtype(dtype)
    end = np.cumsum(count)
    total = int(end[-1]) if end.size else 0
    if total == 0:
        return empty_array(dt), end
    run_first = np.repeat(end - count, count)
    pos = np.repeat(start, count) + dt.itemsize * (np.arange(total) - run_first)
    out = bulk.gather(pos, dt.str)
    out.flags.writeable = False
    return out, end


# -- OperatorCode, Operator --------------------------------------------------------------------

_OC_DEPRECATED, _OC_CUSTOM, _OC_VERSION, _OC_BUILTIN = _S(
    "OperatorCode", "deprecated_builtin_code", "custom_code", "version", "builtin_code")
(_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS, _OP_CUSTOM, _OP_CUSTOM_FORMAT,
 _OP_MUTATING, _OP_INTERMEDIATES, _OP_LARGE_OFFSET, _OP_LARGE_SIZE, _OP_OPTIONS_2,
 _OP_DEBUG) = _S(
    "Operator", "opcode_index", "inputs", "outputs", "builtin_options", "custom_options",
    "custom_options_format", "mutating_variable_inputs", "intermediates",
    "large_custom_options_offset", "large_custom_options_size", "builtin_options_2",
    "debug_metadata_index")

#: the two options unions of Operator: (value slot, field name, union name)
OPTIONS_UNIONS = (
    (_OP_OPTIONS, "builtin_options", "BuiltinOptions"),
    (_OP_OPTIONS_2, "builtin_options_2", "BuiltinOptions2"),
)
CUSTOM_CODE = schema.enum_value("BuiltinOperator", "CUSTOM")
PLACEHOLDER_CODE = schema.enum_value("BuiltinOperator", "PLACEHOLDER_FOR_GREATER_OP_CODES")


def builtin_code(builtin: int, deprecated: int) -> int:
    """An operator code's builtin operator: ``max(builtin_code, deprecated_builtin_code)``
    (files from before ``builtin_code`` leave it 0; codes above 127 store the
    placeholder 127 in the deprecated byte)."""
    return max(builtin, deprecated)


@dataclass(frozen=True)
class OperatorCodeRecord:
    """One ``Model.operator_codes`` entry; ``code`` is the builtin operator
    (:func:`builtin_code`), ``name`` its BuiltinOperator name (``"<code>"`` when the
    schema lacks it)."""

    index: int
    code: int
    name: str
    custom_code: "str | None"
    version: int
    builtin_code: int
    deprecated_builtin_code: int
    has_custom_code: bool
    has_builtin_code: bool
    has_deprecated_builtin_code: bool


def decode_operator_code(table: Table, index: int) -> OperatorCodeRecord:
    dep = table.scalar(_OC_DEPRECATED, "i8", 0, "deprecated_builtin_code")
    builtin = table.scalar(_OC_BUILTIN, "i32", 0, "builtin_code")
    code = builtin_code(builtin, dep)
    custom = table.string_bytes(_OC_CUSTOM, "custom_code")
    return OperatorCodeRecord(
        index, code, schema.enum_name("BuiltinOperator", code),
        None if custom is None else _text(custom),
        table.scalar(_OC_VERSION, "i32", 1, "version"), builtin, dep,
        custom is not None, table.has(_OC_BUILTIN), table.has(_OC_DEPRECATED))


@dataclass(frozen=True)
class OperatorRecord:
    """One Operator table.  ``options_union``/``options_code``/``options`` name the
    first options union that is set (``builtin_options``, else
    ``builtin_options_2``): the union's name, its type code and its table (None
    when absent).  ``custom_options`` is the vector's bytes (None when absent);
    ``large_custom_options`` the ``(offset, size)`` of options stored outside the
    flatbuffer (used when the offset is greater than 1)."""

    index: int
    opcode_index: int
    inputs: "tuple[int, ...]"
    outputs: "tuple[int, ...]"
    intermediates: "tuple[int, ...]"
    mutating_variable_inputs: "tuple[bool, ...]"
    options_union: "str | None"
    options_code: int
    options: "Table | None"
    custom_options: "bytes | None"
    custom_options_format: str
    large_custom_options: "tuple[int, int]"
    debug_metadata_index: int


def decode_operator(table: Table, index: int) -> OperatorRecord:
    union, code, options = None, 0, None
    for slot, fname, uname in OPTIONS_UNIONS:
        c = table.scalar(slot - 1, "u8", 0, fname + "_type")
        if c:
            union, code, options = uname, c, table.table(slot, fname)
            break
    return OperatorRecord(
        index=index,
        opcode_index=table.scalar(_OP_OPCODE, "u32", 0, "opcode_index"),
        inputs=table.ints(_OP_INPUTS, "i32", "inputs") or (),
        outputs=table.ints(_OP_OUTPUTS, "i32", "outputs") or (),
        intermediates=table.ints(_OP_INTERMEDIATES, "i32", "intermediates") or (),
        mutating_variable_inputs=tuple(
            bool(x) for x in table.ints(_OP_MUTATING, "bool", "mutating_variable_inputs") or ()),
        options_union=union, options_code=code, options=options,
        custom_options=table.string_bytes(_OP_CUSTOM, "custom_options"),
        custom_options_format=schema.enum_name("CustomOptionsFormat", table.scalar(
            _OP_CUSTOM_FORMAT, "i8", 0, "custom_options_format")),
        large_custom_options=(
            table.scalar(_OP_LARGE_OFFSET, "u64", 0, "large_custom_options_offset"),
            table.scalar(_OP_LARGE_SIZE, "u64", 0, "large_custom_options_size")),
        debug_metadata_index=table.scalar(_OP_DEBUG, "i32", -1, "debug_metadata_index"),
    )


def options_member(record: OperatorRecord) -> "str | None":
    """The options table's name (``"Conv2DOptions"``, ``"<n>"`` for a code newer than
    the schema), or None when the operator has no options."""
    if record.options_union is None:
        return None
    return schema.union_member(record.options_union, record.options_code)


# -- SubGraph -----------------------------------------------------------------------------------

_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS, _SG_NAME = _S(
    "SubGraph", "tensors", "inputs", "outputs", "operators", "name")


@dataclass(frozen=True)
class SubgraphRecord:
    """One SubGraph table: its name, inputs and outputs, and the table itself, whose
    two vectors of tables :func:`subgraph_vector` reads when asked (a damaged vector
    fails alone)."""

    index: int
    name: str
    inputs: "tuple[int, ...]"
    outputs: "tuple[int, ...]"
    table: Table


def decode_subgraph(table: Table, index: int) -> SubgraphRecord:
    name = table.string_bytes(_SG_NAME, "name")
    return SubgraphRecord(
        index, "" if name is None else _text(name),
        table.ints(_SG_INPUTS, "i32", "inputs") or (),
        table.ints(_SG_OUTPUTS, "i32", "outputs") or (),
        table)


_SUBGRAPH_VECTORS = {"tensors": _SG_TENSORS, "operators": _SG_OPERATORS}


def subgraph_vector(table: Table, name: str) -> "TableVector | None":
    """A subgraph's ``tensors`` or ``operators`` vector (None when absent)."""
    return table.tables(_SUBGRAPH_VECTORS[name], name)


# -- SignatureDef -------------------------------------------------------------------------------

_SD_INPUTS, _SD_OUTPUTS, _SD_KEY, _SD_TAG, _SD_SUBGRAPH = _S(
    "SignatureDef", "inputs", "outputs", "signature_key", "deprecated_tag", "subgraph_index")
_TM_NAME, _TM_INDEX = _S("TensorMap", "name", "tensor_index")


@dataclass(frozen=True)
class SignatureRecord:
    """One SignatureDef: ``key`` (None when absent, which the runtime refuses),
    ``subgraph``, ``deprecated_tag``, and the table, whose ``inputs`` and
    ``outputs`` :func:`decode_tensor_maps` reads when asked."""

    index: int
    key: "str | None"
    subgraph: int
    deprecated_tag: "str | None"
    table: Table


def decode_signature(table: Table, index: int) -> SignatureRecord:
    key = table.string_bytes(_SD_KEY, "signature_key")
    tag = table.string_bytes(_SD_TAG, "deprecated_tag")
    return SignatureRecord(index, None if key is None else _text(key),
                           table.scalar(_SD_SUBGRAPH, "u32", 0, "subgraph_index"),
                           None if tag is None else _text(tag), table)


_MAP_SLOTS = {"inputs": _SD_INPUTS, "outputs": _SD_OUTPUTS}


def signature_map_tables(table: Table, side: str) -> "TableVector | None":
    """A SignatureDef's ``inputs`` or ``outputs`` vector of TensorMap tables."""
    return table.tables(_MAP_SLOTS[side], side)


def decode_tensor_map(t: Table) -> "tuple[str, int]":
    n = t.string_bytes(_TM_NAME, "name")
    return "" if n is None else _text(n), t.scalar(_TM_INDEX, "u32", 0, "tensor_index")


def decode_tensor_maps(table: Table, side: str) -> "tuple[tuple[str, int], ...]":
    """A SignatureDef's ``inputs`` or ``outputs``: ``(name, tensor index)`` pairs in
    file order (repeated names kept)."""
    return tuple(decode_tensor_map(t) for t in signature_map_tables(table, side) or ())


# -- Metadata, external buffers ---------------------------------------------------------------

_MD_NAME, _MD_BUFFER = _S("Metadata", "name", "buffer")
_G_NAME = _S("ExternalBufferGroup", "name")[0]
_E_ID, _E_GROUP, _E_OFFSET, _E_LENGTH, _E_PACKING = _S(
    "ExternalBuffer", "id", "group", "offset", "length", "packing")


@dataclass(frozen=True)
class MetadataRecord:
    """One ``Model.metadata`` entry: its name (None when absent) and buffer index."""

    index: int
    name: "str | None"
    buffer: int


def decode_metadata(table: Table, index: int) -> MetadataRecord:
    name = table.string_bytes(_MD_NAME, "name")
    return MetadataRecord(index, None if name is None else _text(name),
                          table.scalar(_MD_BUFFER, "u32", 0, "buffer"))


@dataclass(frozen=True)
class ExternalBufferGroup:
    """One entry of ``Model.external_buffer_groups``: a file, by ``name``."""

    index: int
    name: str


@dataclass(frozen=True)
class ExternalBuffer:
    """One entry of ``Model.external_buffers``: ``length`` bytes at ``offset`` of the
    file of group ``group``; tensors refer to it by ``id``."""

    index: int
    id: int
    group: int
    offset: int
    length: int
    packing: str


def decode_external_buffer_group(table: Table, index: int) -> ExternalBufferGroup:
    return ExternalBufferGroup(index, table.string(_G_NAME, "name") or "")


def decode_external_buffer(table: Table, index: int) -> ExternalBuffer:
    return ExternalBuffer(
        index, table.scalar(_E_ID, "u32", 0, "id"), table.scalar(_E_GROUP, "u32", 0, "group"),
        table.scalar(_E_OFFSET, "u64", 0, "offset"), table.scalar(_E_LENGTH, "u64", 0, "length"),
        table.string(_E_PACKING, "packing") or "")


# -- any table, from the schema ---------------------------------------------------------------


def _scalar(f, v, enums):
    if f.elem == "bool":
        return bool(v)
    if f.elem in ("f32", "f64"):
        return float(v)
    if f.enum is not None:
        return enums[f.enum].get(v, f"<{v}>")
    return v


def table_to_dict(table: Table, tdef, tables=None, enums=None, unions=None,
                  visit=None) -> dict:
    """Every field of ``table`` (described by a schema ``TableDef``) as a dict: the
    generic decoder of option tables and of the flatbuffers nested in models.

    Scalars take their schema default when absent; enums give their name
    (``"<n>"`` when unknown to the schema); vectors give lists and strings
    ``str`` (None when absent); nested tables give dicts; a union gives the
    member's name under ``<field>_type`` and its table under ``<field>``.
    ``visit()``, when given, is called before each nested table is decoded (a
    budget that raises when a decode outgrows the bytes it reads).
    """
    tables = schema.TABLES if tables is None else tables
    enums = schema.ENUMS if enums is None else enums
    unions = schema.UNIONS if unions is None else unions
    out: dict = {}
    for f in tdef.fields:
        kind, name, slot = f.kind, f.name, f.slot
        if kind == "scalar":
            out[name] = _scalar(f, table.scalar(slot, f.elem, f.default, name), enums)
        elif kind == "vector":
            if not table.has(slot):
                out[name] = None
            else:
                vals = table.array(slot, f.elem, name).tolist()
                if f.elem == "bool":
                    out[name] = [bool(x) for x in vals]
                elif f.enum is not None:
                    out[name] = [enums[f.enum].get(x, f"<{x}>") for x in vals]
                else:
                    out[name] = vals
        elif kind == "string":
            out[name] = table.string(slot, name)
        elif kind == "vector_string":
            out[name] = table.strings(slot, name)
        elif kind == "table":
            sub = table.table(slot, name)
            if sub is not None and visit is not None:
                visit()
            out[name] = None if sub is None else table_to_dict(sub, tables[f.elem], tables,
                                                               enums, unions, visit)
        elif kind == "vector_table":
            vec = table.tables(slot, name)
            out[name] = None if vec is None else [
                _visited(visit) or table_to_dict(t, tables[f.elem], tables, enums, unions, visit)
                for t in vec]
        elif kind == "union":
            code, sub = table.union(slot - 1, slot, name)
            members = unions.get(f.elem, ())
            if code == 0:
                out[name + "_type"], out[name] = None, None
            elif code <= len(members):
                member = members[code - 1]
                out[name + "_type"] = member
                if sub is not None and visit is not None:
                    visit()
                out[name] = None if sub is None else table_to_dict(sub, tables[member], tables,
                                                                   enums, unions, visit)
            else:
                out[name + "_type"], out[name] = f"<{code}>", None
    return out


def _visited(visit) -> None:
    if visit is not None:
        visit()


def table_defaults(tdef, enums=None) -> dict:
    """The dict :func:`table_to_dict` gives for a table that sets no field."""
    enums = schema.ENUMS if enums is None else enums
    out: dict = {}
    for f in tdef.fields:
        if f.kind == "scalar":
            out[f.name] = _scalar(f, f.default, enums)
        elif f.kind == "union":
            out[f.name + "_type"], out[f.name] = None, None
        else:
            out[f.name] = None
    return out
