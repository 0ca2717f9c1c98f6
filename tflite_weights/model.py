"""The domain: Model, Subgraph, Tensor and Buffer, read lazily from one mapping.

``open()`` maps the file (or wraps the caller's bytes), checks the header and
the root table, and stops.  Subgraphs, tensors, names, shapes and quantization
are decoded the first time they are asked for; tensor values are numpy views
over the mapping, never copies (sub-byte types, strings and sparse tensors,
which must be decoded, are the exceptions and say so).
"""

from __future__ import annotations

import dataclasses
import difflib
import mmap
import os
import sys
import threading
from itertools import repeat
from typing import Iterator

import numpy as np

from . import _schema
from ._flatbuffer import FlatBuffer, Table, empty_array
from .dtypes import MAX_RANK, TYPES, TypeInfo, element_count, type_info, unpack_bits
from .errors import (
    ClosedModelError,
    InvalidModelError,
    NoDataError,
    QuantizationError,
    TensorNotFoundError,
    UnsupportedError,
)
from .quantization import (
    BlockwiseDetails,
    MultiAxisDetails,
    Quantization,
    dequantize_affine,
)

__all__ = ["open", "Model", "Subgraph", "Tensor", "Buffer", "SCHEMA_VERSION"]

#: the only schema version the runtime accepts (TFLITE_SCHEMA_VERSION)
SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"

# field slots, looked up once
_M_VERSION, _M_SUBGRAPHS, _M_DESCRIPTION, _M_BUFFERS = _schema.slots(
    "Model", "version", "subgraphs", "description", "buffers")
_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_NAME = _schema.slots(
    "SubGraph", "tensors", "inputs", "outputs", "name")
(_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_IS_VARIABLE, _T_SPARSITY,
 _T_SHAPE_SIGNATURE, _T_HAS_RANK, _T_EXTERNAL) = _schema.slots(
    "Tensor", "shape", "type", "buffer", "name", "quantization", "is_variable", "sparsity",
    "shape_signature", "has_rank", "external_buffer")
_Q_MIN, _Q_MAX, _Q_SCALE, _Q_ZERO_POINT, _Q_DETAILS, _Q_DIM = _schema.slots(
    "QuantizationParameters", "min", "max", "scale", "zero_point", "details",
    "quantized_dimension")
_B_DATA, _B_OFFSET, _B_SIZE = _schema.slots("Buffer", "data", "offset", "size")
_BW_SCALES, _BW_ZERO_POINTS, _BW_BLOCK_SIZE, _BW_BLOCK_SHAPE = _schema.slots(
    "BlockwiseQuantization", "scales", "zero_points", "block_size", "block_shape")
_MA_SCALES, _MA_ZERO_POINTS, _MA_BLOCK_SIZE, _MA_DIMS = _schema.slots(
    "MultiAxisQuantization", "scales", "zero_points", "block_size", "quantized_dimensions")
_CQ_CUSTOM = _schema.slots("CustomQuantization", "custom")[0]
_DETAILS = ("NONE",) + _schema.UNIONS["QuantizationDetails"]
_EMPTY_F32 = empty_array(np.float32)
_TYPE_NAMES = {code: info.name for code, info in TYPES.items()}


def _type_name(code: int) -> str:
    """The TensorType name of ``code``, or ``"<code>"`` for one the schema lacks."""
    name = _TYPE_NAMES.get(code)
    return name if name is not None else f"<{code}>"


#: bytes per element of each fixed-width type code (0 for the others)
_FIXED_ITEMSIZE = np.array([TYPES[c].itemsize if TYPES[c].layout == "fixed" else 0
                            for c in sorted(TYPES)], dtype=np.int64)
#: numpy dtype of each type code, indexable by an array of codes
_DTYPE_TABLE = np.array([TYPES[c].dtype for c in sorted(TYPES)], dtype=object)
# where a tensor's values are (see _Columns.locate)
_GENERAL, _NONE, _DATA, _VIEW = -1, 0, 1, 2


def open(source, *, external_data_dir: "str | os.PathLike | None" = None) -> "Model":
    """Open a ``.tflite`` model lazily.

    ``source`` is a path (``str`` or path-like), or bytes-like data (``bytes``,
    ``bytearray``, ``memoryview``, ``mmap``) that must stay unchanged while the
    model is in use.  A path is mapped read-only; nothing more than the header
    and the root table is read until asked for.  ``external_data_dir`` is where
    external weight files are looked for (default: the model file's folder).

    Raises :class:`InvalidModelError` when the data is not a TFLite flatbuffer,
    and ``OSError`` when the file cannot be read.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with _builtin_open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise InvalidModelError(f"{path}: the file is empty (0 bytes)")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ, **_MMAP_OPTIONS)
        try:
            return Model(mm, path=path, _mapping=mm, external_data_dir=external_data_dir)
        except BaseException:
            mm.close()
            raise
    try:
        view = memoryview(source)
    except TypeError:
        raise TypeError(
            f"open() takes a path or bytes-like data, not {type(source).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return Model(view.toreadonly(), path=None, external_data_dir=external_data_dir)


#: Python 3.13+ can map without keeping a duplicate of the file descriptor: the
#: file is then closed when open() returns, even while arrays keep the mapping
#: alive after close().  Before 3.13 the mapping holds a descriptor until then.
_MMAP_OPTIONS = {"trackfd": False} if sys.version_info >= (3, 13) else {}

_builtin_open = __builtins__["open"] if isinstance(__builtins__, dict) else __builtins__.open


class Model:
    """A TFLite model: subgraphs of tensors, buffers, metadata.

    Acts as a read-only mapping from subgraph 0's tensor names to tensors
    (``model["name"]``, ``"name" in model``, ``model.keys()``); use
    :meth:`tensor` or :attr:`subgraphs` for the others.  A context manager:
    ``with tflite_weights.open(path) as model: ...``.
    """

    def __init__(self, data, *, path: str | None = None, _mapping=None,
                 external_data_dir=None):
        self.path = path
        self._data = data
        self._mapping = _mapping
        self._closed = False
        self._lock = threading.Lock()
        label = os.path.basename(path) if path else "model"
        self._fbuf = FlatBuffer(data, label=label)
        self.size = self._fbuf.size
        self.external_data_dir = (
            os.fspath(external_data_dir) if external_data_dir is not None
            else (os.path.dirname(os.path.abspath(path)) if path else None))
        try:
            self._root = self._fbuf.root(FILE_IDENTIFIER)
            self.version = self._root.scalar(_M_VERSION, "u32", 0, "version")
            if self.version != SCHEMA_VERSION:
                raise InvalidModelError(
                    f"{label}: Model.version is {self.version}; only schema version "
                    f"{SCHEMA_VERSION} is defined for TFLite files")
        except BaseException:
            self._fbuf.close()  # release the view of the data before the caller unmaps it
            raise
        self._subgraphs: tuple[Subgraph, ...] | None = None
        self._buffers_vec = None
        self._buffer_cache: dict[int, Buffer] = {}
        self._buffer_locs: list | None = None
        self._compressed: bool | None = None  # has TFLite Micro COMPRESSION_METADATA
        self._metadata: dict[str, bytes] | None = None
        self._description: str | None = None
        self._description_read = False
        self._signatures = None

    # -- life cycle -------------------------------------------------------------
    def close(self) -> None:
        """Release the mapping and the file.

        Arrays handed out earlier stay valid: while any of them is alive the
        mapping stays open (it is closed when the last view is freed); the
        model itself refuses further use with :class:`ClosedModelError`.
        """
        if self._closed:
            return
        self._closed = True
        self._fbuf.close()
        # Caller's data is only dropped, never released: arrays handed out may view
        # it (through a memoryview they keep), and releasing it would free memory
        # under them.
        self._data = None
        mapping, self._mapping = self._mapping, None
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:  # arrays still view the mapping; it closes with them
                pass
        for ext in getattr(self, "_external_files", {}).values():
            ext.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def _fb(self) -> FlatBuffer:
        if self._closed:
            raise ClosedModelError(f"{self._fbuf.label}: the model is closed")
        return self._fbuf

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedModelError(f"{self._fbuf.label}: the model is closed")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.size} bytes"
        name = os.path.basename(self.path) if self.path else "<bytes>"
        return f"<tflite_weights.Model {name!r} ({state})>"

    # -- model-level fields -----------------------------------------------------
    @property
    def description(self) -> str | None:
        if not self._description_read:
            self._check_open()
            self._description = self._root.string(_M_DESCRIPTION, "description")
            self._description_read = True
        return self._description

    @property
    def subgraphs(self) -> "tuple[Subgraph, ...]":
        sgs = self._subgraphs
        if sgs is None:
            self._check_open()
            try:
                vec = self._root.tables(_M_SUBGRAPHS, "subgraphs")
            except InvalidModelError as e:
                self._subgraphs = _Failed(e)
                raise
            n = 0 if vec is None else len(vec)
            sgs = self._subgraphs = tuple(Subgraph(self, i, vec) for i in range(n))
        elif sgs.__class__ is _Failed:
            self._check_open()
            sgs.reraise()
        return sgs

    @property
    def tensors(self) -> "tuple[Tensor, ...]":
        """Subgraph 0's tensors (empty when the model has no subgraph)."""
        sgs = self.subgraphs
        return sgs[0].tensors if sgs else ()

    def all_tensors(self) -> "Iterator[Tensor]":
        """Every tensor of every subgraph, subgraph by subgraph."""
        for sg in self.subgraphs:
            yield from sg.tensors

    # -- buffers ------------------------------------------------------------------
    def _buffer_table_vector(self):
        vec = self._buffers_vec
        if vec is None:
            self._check_open()
            try:
                vec = self._root.tables(_M_BUFFERS, "buffers")
            except InvalidModelError as e:
                self._buffers_vec = _Failed(e)
                raise
            vec = self._buffers_vec = vec if vec is not None else ()
        elif vec.__class__ is _Failed:
            self._check_open()
            vec.reraise()
        return vec

    def _bulk(self):
        from ._flatbuffer import Bulk
        return Bulk(self._fb)

    def _buffer_location(self, index: int) -> "tuple[int, int] | None":
        """``(file offset, length)`` of a buffer's bytes, or None when it has none.

        Every buffer is located with one vectorised pass the first time; a buffer
        that fails a check there is read on its own, raising its precise error.
        """
        start, length, status = self._buffer_arrays()
        if 0 <= index < status.size:
            st = status[index]
            if st == 1:
                return int(start[index]), int(length[index])
            if st == 0:
                return None
        b = self.buffer(index)
        return None if b.location is None else (b.file_offset, b.size)

    def _buffer_arrays(self) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
        """Every buffer's ``(file offset, length, status)`` as arrays; status is 1
        (bytes at offset), 0 (no data) or -1 (damaged: read it on its own)."""
        locs = self._buffer_locs
        if locs is not None:
            return locs
        vec = self._buffer_table_vector()
        n = len(vec)
        if n == 0:
            z = np.zeros(0, np.int64)
            locs = self._buffer_locs = (z, z, z)
            return locs
        bulk = self._bulk()
        ok = np.ones(n, bool)
        opos = vec.start + 4 * np.arange(n, dtype=np.int64)
        _, f = bulk.tables(opos, ok, (_B_DATA, _B_OFFSET, _B_SIZE))
        start, count = bulk.vectors(f[:, _B_DATA], ok, 1)
        off = bulk.scalar(f[:, _B_OFFSET], ok, "u64", 0).astype(np.uint64)
        size = bulk.scalar(f[:, _B_SIZE], ok, "u64", 0).astype(np.uint64)
        inline = start >= 0
        outside = ~inline & (off > 1)
        fits = (off <= np.uint64(self.size)) & (size <= np.uint64(self.size) - off)
        ok &= ~outside | fits
        offset = np.where(inline, start, np.where(outside & fits, off, 0).astype(np.int64))
        length = np.where(inline, count, np.where(outside & fits, size, 0).astype(np.int64))
        status = np.where(ok, (inline | outside).astype(np.int64), -1)
        locs = self._buffer_locs = (offset, length, status)
        return locs

    @property
    def buffer_count(self) -> int:
        return len(self._buffer_table_vector())

    def buffer(self, index: int) -> "Buffer":
        """The buffer at ``index`` (checked), read once and cached."""
        b = self._buffer_cache.get(index)
        if b is None:
            vec = self._buffer_table_vector()
            if not 0 <= index < len(vec):
                raise InvalidModelError(
                    f"{self._fbuf.label}: buffer {index} does not exist "
                    f"(the model has {len(vec)} buffers)")
            b = self._buffer_cache[index] = Buffer(self, index, vec[index])
        return b

    @property
    def buffers(self) -> "tuple[Buffer, ...]":
        return tuple(self.buffer(i) for i in range(self.buffer_count))

    # -- metadata -------------------------------------------------------------------
    @property
    def metadata(self) -> "dict[str, bytes]":
        """``Model.metadata`` entries: name -> the bytes of its buffer.

        When a name occurs twice, the first entry wins (as in the runtime's
        map).  An entry whose buffer cannot be read raises when the property
        is read.
        """
        if self._metadata is None:
            from .metadata import metadata_entries
            fb = self._fb
            self._metadata = {e.name: fb.bytes_at(e.offset, e.size, f"metadata {e.name!r}")
                              for e in metadata_entries(self)}
        return self._metadata

    # -- tensor lookup ------------------------------------------------------------
    def keys(self) -> "list[str]":
        """Subgraph 0's tensor names, in index order (names may repeat)."""
        return [t.name for t in self.tensors]

    def __iter__(self) -> "Iterator[str]":
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.tensors)

    def __contains__(self, name) -> bool:
        if isinstance(name, str):
            sgs = self.subgraphs
            return bool(sgs) and name in sgs[0]._names()
        return False

    def __getitem__(self, key) -> "Tensor":
        return self.tensor(key)

    def get(self, key, default=None):
        try:
            return self.tensor(key)
        except TensorNotFoundError:
            return default

    def tensor(self, key, subgraph: int = 0) -> "Tensor":
        """A tensor of a subgraph by name or index.

        Raises :class:`TensorNotFoundError` (a ``KeyError``) when no tensor or
        several carry the name, naming the candidates.
        """
        sgs = self.subgraphs
        if not 0 <= subgraph < len(sgs):
            raise TensorNotFoundError(
                f"subgraph {subgraph} does not exist (the model has {len(sgs)})")
        return sgs[subgraph].tensor(key)

    # -- operators, signatures, decoded metadata (see operators.py, signatures.py,
    #    metadata.py) -----------------------------------------------------------------
    @property
    def signatures(self):
        """Signature key -> :class:`~tflite_weights.signatures.Signature` (inputs and
        outputs by name)."""
        if self._signatures is None:
            self._check_open()
            from .signatures import read_signatures
            self._signatures = read_signatures(self)
        return self._signatures

    def weights(self):
        """Yield ``(operator, role, tensor)`` for every weight-like input of every
        operator of every subgraph (see :mod:`tflite_weights.operators`)."""
        from .operators import iter_weights
        return iter_weights(self)

    @property
    def min_runtime_version(self) -> "str | None":
        from .metadata import min_runtime_version
        return min_runtime_version(self)

    @property
    def conversion_metadata(self):
        """The converter's CONVERSION_METADATA (environment and optimization modes),
        or None (see :mod:`tflite_weights.metadata`)."""
        from .metadata import conversion_metadata
        return conversion_metadata(self)

    @property
    def tflite_metadata(self):
        """TFLite Support metadata (TFLITE_METADATA, identifier "M001"), or None."""
        from .metadata import tflite_metadata
        return tflite_metadata(self)

    @property
    def associated_files(self):
        """Files appended to the model as a zip: name -> size, ``read(name)``."""
        from .metadata import associated_files
        return associated_files(self)

    @property
    def buffer_location(self) -> "str | None":
        """The ``buffer_location`` metadata ("outside flatbuffers" for models whose
        buffers follow the flatbuffer), or None."""
        from .metadata import buffer_location
        return buffer_location(self)

    @property
    def has_compression_metadata(self) -> bool:
        """True when TFLite Micro's COMPRESSION_METADATA is present."""
        from .metadata import compression_metadata_present
        return compression_metadata_present(self)

    @property
    def operator_codes(self):
        """The model's OperatorCode table (see :mod:`tflite_weights.operators`)."""
        from .operators import operator_codes
        return operator_codes(self)

    def describe(self) -> dict:
        """All decoded metadata as a JSON-ready dict (see :func:`tflite_weights.metadata.describe`)."""
        from .metadata import describe
        return describe(self)

    # -- external buffers, variables (see external.py, variables.py) ------------------
    @property
    def external_buffer_groups(self):
        from .external import external_buffer_groups
        return external_buffer_groups(self)

    @property
    def external_buffers(self):
        from .external import external_buffers
        return external_buffers(self)

    def resource_variables(self):
        """Resource variable -> its initial value (see :mod:`tflite_weights.variables`)."""
        from .variables import resource_variables
        return resource_variables(self)


class Buffer:
    """One entry of ``Model.buffers``: where its bytes are.

    ``location`` is ``"inline"`` (a ``data`` vector inside the flatbuffer),
    ``"offset"`` (``offset``/``size`` from the start of the file, for models
    over 2 GB) or ``None`` (no data).  ``file_offset`` and ``size`` give the
    byte range in the file.  When both are set, ``data`` wins, as in the runtime.
    """

    __slots__ = ("model", "index", "location", "file_offset", "size", "stored_offset",
                 "stored_size")

    def __init__(self, model: Model, index: int, table: Table):
        self.model = model
        self.index = index
        v = table.vector(_B_DATA, 1, "data")
        self.stored_offset = table.scalar(_B_OFFSET, "u64", 0, "offset")
        self.stored_size = table.scalar(_B_SIZE, "u64", 0, "size")
        if v is not None:
            self.location = "inline"
            self.file_offset, self.size = v
        elif self.stored_offset > 1:
            self.location = "offset"
            self.file_offset, self.size = self.stored_offset, self.stored_size
            if self.file_offset + self.size > model.size:
                raise InvalidModelError(
                    f"{model._fbuf.label}: buffers[{index}]: offset {self.file_offset} + size "
                    f"{self.size} = {self.file_offset + self.size} lies beyond the end of the "
                    f"file ({model.size} bytes)")
        else:
            self.location = None
            self.file_offset, self.size = 0, 0

    @property
    def has_data(self) -> bool:
        return self.location is not None

    def array(self) -> np.ndarray:
        """The buffer's bytes as a read-only uint8 view."""
        if self.location is None:
            return empty_array(np.uint8)
        return self.model._fb.array(self.file_offset, np.uint8, self.size, f"buffers[{self.index}]")

    def tobytes(self) -> bytes:
        return self.array().tobytes()

    def __repr__(self) -> str:
        if self.location is None:
            return f"<Buffer {self.index}: no data>"
        return (f"<Buffer {self.index}: {self.size} bytes {self.location} at byte "
                f"{self.file_offset}>")


class Subgraph:
    """One subgraph: its tensors and the indices of its inputs and outputs."""

    def __init__(self, model: Model, index: int, vec):
        self.model = model
        self.index = index
        self._vec = vec
        self._table: Table | None = None
        self._tensors: tuple[Tensor, ...] | None = None
        self._name_index: dict[str, list[int]] | None = None
        self._operators = None
        self._cols: _Columns | None = None

    @property
    def _t(self) -> Table:
        t = self._table
        if t is None:
            self.model._check_open()
            try:
                t = self._table = self._vec[self.index]
            except InvalidModelError as e:
                self._table = _Failed(e)
                raise
        elif t.__class__ is _Failed:
            self.model._check_open()
            t.reraise()
        return t

    @property
    def name(self) -> str:
        return self._t.string(_SG_NAME, "name") or ""

    @property
    def inputs(self) -> "tuple[int, ...]":
        return self._t.ints(_SG_INPUTS, "i32", "inputs") or ()

    @property
    def outputs(self) -> "tuple[int, ...]":
        return self._t.ints(_SG_OUTPUTS, "i32", "outputs") or ()

    @property
    def tensors(self) -> "tuple[Tensor, ...]":
        ts = self._tensors
        if ts is None:
            try:
                vec = self._t.tables(_SG_TENSORS, "tensors")
            except InvalidModelError as e:
                self._tensors = _Failed(e)
                raise
            c = self._cols = _Columns(self, vec)
            ts = tuple(map(Tensor, repeat(self, c.n), range(c.n), c.names, c.shapes, c.types,
                           map(_type_name, c.types), c.buffers))
            if not all(c.ok):
                # tables the bulk pass could not read: decode (and fail) when used
                ts = tuple(t if c.ok[t.index] else _LazyTensor(self, t.index)
                           for t in ts)
            self._tensors = ts
        elif ts.__class__ is _Failed:
            self.model._check_open()
            ts.reraise()
        return ts

    @property
    def operators(self):
        """The subgraph's operators in execution order (see :mod:`tflite_weights.operators`)."""
        if self._operators is None:
            from .operators import read_operators
            self._operators = read_operators(self)
        return self._operators

    def _names(self) -> "dict[str, list[int]]":
        if self._name_index is None:
            index: dict[str, list[int]] = {}
            for t in self.tensors:
                index.setdefault(t.name, []).append(t.index)
            self._name_index = index
        return self._name_index

    def tensor(self, key) -> "Tensor":
        ts = self.tensors
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key)
            if not 0 <= i < len(ts):
                raise TensorNotFoundError(
                    f"subgraph {self.index} has no tensor {i} (it has {len(ts)} tensors)")
            return ts[i]
        if not isinstance(key, str):
            raise TypeError(f"tensor key must be a name or an index, not {type(key).__name__}")
        hits = self._names().get(key)
        if not hits:
            close = difflib.get_close_matches(key, list(self._names()), n=5)
            hint = f"; close names: {', '.join(map(repr, close))}" if close else ""
            raise TensorNotFoundError(
                f"subgraph {self.index} has no tensor named {key!r}{hint}")
        if len(hits) > 1:
            raise TensorNotFoundError(
                f"subgraph {self.index} has {len(hits)} tensors named {key!r} "
                f"(indices {', '.join(map(str, hits))}); ask for one by index")
        return ts[hits[0]]

    def __getitem__(self, key) -> "Tensor":
        return self.tensor(key)

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self):
        return iter(self.tensors)

    def __repr__(self) -> str:
        return f"<Subgraph {self.index} {self.name!r}: {len(self.tensors)} tensors>"


class Tensor:
    """One tensor of a subgraph: metadata, quantization and values.

    The common fields of all tensors of a subgraph are decoded together the
    first time the subgraph's tensors are asked for; the rest (shape
    signature, sparsity, ...) when read.  ``numpy()`` returns a read-only view
    over the file for fixed-width types; ``raw()`` the stored bytes;
    ``dequantize()`` float32 values.
    """

    __slots__ = ("_sg", "index", "_c", "_t", "name", "shape", "type_code", "type", "buffer")

    #: ``name`` (str), ``shape`` (tuple of int), ``type`` (the schema's TensorType
    #: name, "INT8", ...; "<code>" for a code the schema does not know),
    #: ``type_code`` (int) and ``buffer`` (index) are plain attributes, decoded
    #: for the whole subgraph at once.

    def __init__(self, sg: "Subgraph", index: int, name: str, shape, type_code: int,
                 type_name: str, buffer: int):
        self._sg = sg
        self._c = sg._cols  # the subgraph's decoded columns (shared by its tensors)
        self.index = index
        self._t: Table | None = None
        self.name = name
        self.shape = shape
        self.type_code = type_code
        self.type = type_name
        self.buffer = buffer

    @property
    def subgraph(self) -> int:
        """Index of the tensor's subgraph."""
        return self._sg.index

    @property
    def _model(self) -> "Model":
        return self._sg.model

    # -- decoding -------------------------------------------------------------------
    def _load(self) -> Table:
        """The tensor's table (checked); decodes name, shape, type and buffer into
        the columns when the bulk pass could not."""
        t = self._t
        if t is None:
            self._model._check_open()
            c, i = self._c, self.index
            fb = c.fb
            where = f"subgraphs[{self.subgraph}].tensors[{i}]"
            opos = c.start + 4 * i
            try:
                t = fb.table(opos + fb.u32(opos, where), where)
                if not c.ok[i]:
                    shape = t.ints(_T_SHAPE, "i32", "shape") or ()
                    ttype = t.scalar(_T_TYPE, "i8", 0, "type")
                    buf = t.scalar(_T_BUFFER, "u32", 0, "buffer")
                    name = t.string(_T_NAME, "name")
                    c.shapes[i], c.types[i], c.buffers[i] = shape, ttype, buf
                    c.names[i] = "" if name is None else name
                    c.ok[i] = True
            except InvalidModelError as e:
                self._t = _Failed(e)
                raise
            self._t = t
        elif t.__class__ is _Failed:
            self._model._check_open()
            t.reraise()
        return t

    @property
    def _where(self) -> str:
        return f"tensor {self.index} of subgraph {self.subgraph}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar); 0 when a dimension is not positive."""
        n = 1
        for d in self.shape:
            if d <= 0:
                return 0
            n *= d
        return n

    @property
    def type_info(self) -> TypeInfo:
        return type_info(self.type_code)

    @property
    def dtype(self) -> "np.dtype | None":
        """The numpy dtype of ``numpy()``; None for RESOURCE, VARIANT and unknown types."""
        info = TYPES.get(self.type_code)
        return None if info is None else info.dtype

    @property
    def shape_signature(self) -> "tuple[int, ...]":
        """The shape with -1 for unknown dimensions; ``shape`` when the file stores none
        (or an empty one, as the runtime reads it)."""
        sig = self._load().ints(_T_SHAPE_SIGNATURE, "i32", "shape_signature")
        return sig if sig else self.shape

    @property
    def has_rank(self) -> bool:
        return bool(self._load().scalar(_T_HAS_RANK, "bool", 0, "has_rank"))

    @property
    def is_variable(self) -> bool:
        return bool(self._load().scalar(_T_IS_VARIABLE, "bool", 0, "is_variable"))

    @property
    def external_buffer(self) -> int:
        """Id of the ExternalBuffer holding the values; 0 when ``buffer`` is used."""
        return self._load().scalar(_T_EXTERNAL, "u32", 0, "external_buffer")

    @property
    def is_sparse(self) -> bool:
        return False if self._c.plain[self.index] else self._load().has(_T_SPARSITY)

    @property
    def sparsity(self):
        """The SparsityParameters (see :mod:`tflite_weights.sparsity`), or None."""
        t = self._load().table(_T_SPARSITY, "sparsity")
        if t is None:
            return None
        from .sparsity import read_sparsity
        return read_sparsity(t)

    def sparse_values(self) -> np.ndarray:
        """The values a sparse tensor stores, in traversal order (1-D, as stored)."""
        info = self._value_type()
        r = self._data_range()
        if r is None:
            raise NoDataError(f"{self._where} ({self.name!r}) has no stored data")
        fb, start, length = r
        if info.layout == "fixed":
            return fb.array(start, info.dtype, length // info.itemsize, self._where)
        if info.layout == "packed":
            count = length * 8 // info.bits
            values = unpack_bits(fb.array(start, np.uint8, length, self._where), count,
                                 info.bits, info.signed)
            values.flags.writeable = False
            return values
        raise UnsupportedError(f"{self._where} ({self.name!r}): a sparse {info.name} tensor "
                               f"cannot be densified")

    @property
    def compression(self):
        """The TFLite Micro LUT compression of this tensor
        (:class:`~tflite_weights.compression.LutTensor`), or None.  ``numpy()``
        returns decoded values for compressed tensors; ``raw()`` the stored indices."""
        from .compression import lut_tensor
        return lut_tensor(self)

    def unshuffle(self, *, force: bool = False) -> np.ndarray:
        """The ``[output, input]`` matrix of SHUFFLED4x16INT8 fully-connected weights,
        sign bit restored (see :func:`tflite_weights.shuffled.unshuffle_fc_weights`)."""
        from .shuffled import unshuffle_fc_weights
        return unshuffle_fc_weights(self, force=force)

    # -- graph --------------------------------------------------------------------------
    @property
    def producers(self):
        """Operators of this tensor's subgraph that output it."""
        from .operators import producers_of
        return producers_of(self)

    @property
    def consumers(self):
        """Operators of this tensor's subgraph that take it as an input."""
        from .operators import consumers_of
        return consumers_of(self)

    # -- quantization -------------------------------------------------------------
    @property
    def quantization(self) -> "Quantization | None":
        """The stored quantization parameters, or None when the tensor has no scale
        and no quantization details."""
        quants = self._c.quants
        q = quants[self.index]
        if q is _UNREAD:
            q = quants[self.index] = self._read_quantization()
        return q

    def _read_quantization(self) -> "Quantization | None":
        t = self._load()
        q = t.table(_T_QUANT, "quantization")
        if q is None:
            return None
        scale = q.array(_Q_SCALE, "f32", "scale")
        code, details = q.union(_Q_DETAILS - 1, _Q_DETAILS, "details")
        if scale.size == 0 and code == 0:
            return None
        dname = _DETAILS[code] if code < len(_DETAILS) else f"<{code}>"
        custom = blockwise = multi_axis = None
        if details is not None:
            if dname == "CustomQuantization":
                custom = details.string_bytes(_CQ_CUSTOM, "custom") or b""
            elif dname == "BlockwiseQuantization":
                blockwise = BlockwiseDetails(
                    details.scalar(_BW_SCALES, "i32", 0, "scales"),
                    details.scalar(_BW_ZERO_POINTS, "i32", 0, "zero_points"),
                    details.scalar(_BW_BLOCK_SIZE, "i32", 0, "block_size"),
                    details.ints(_BW_BLOCK_SHAPE, "i32", "block_shape") or ())
            elif dname == "MultiAxisQuantization":
                multi_axis = MultiAxisDetails(
                    details.scalar(_MA_SCALES, "i32", 0, "scales"),
                    details.scalar(_MA_ZERO_POINTS, "i32", 0, "zero_points"),
                    details.scalar(_MA_BLOCK_SIZE, "i32", 0, "block_size"),
                    details.ints(_MA_DIMS, "i32", "quantized_dimensions") or ())
        quant = Quantization(
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
        if blockwise is not None or multi_axis is not None:
            # scales and zero points live in other tensors: resolve them now when
            # possible (dequantize() raises the reason when they cannot be)
            from .blockwise import resolved_fields
            fields = resolved_fields(self, quant)
            if fields:
                quant = dataclasses.replace(quant, **fields)
        return quant

    # -- data ---------------------------------------------------------------------------
    def _data_range(self) -> "tuple[FlatBuffer, int, int] | None":
        """``(flatbuffer window, start, length)`` of the stored bytes, or None."""
        self._model._check_open()  # cached tables must not read a released mapping
        c, i = self._c, self.index
        if not c.plain[i]:
            t = self._load()
            ext = t.scalar(_T_EXTERNAL, "u32", 0, "external_buffer")
            if ext:
                from .external import external_range
                return external_range(self._model, ext, self)
        elif not c.ok[i]:
            self._load()
        buf = c.buffers[i]
        if buf == 0:
            return None
        loc = self._model._buffer_location(buf)
        if loc is None:
            return None
        return self._model._fb, loc[0], loc[1]

    @property
    def has_data(self) -> bool:
        """True when the file stores values for this tensor (a constant)."""
        c = self._c
        kind = (c.kind if c.kind is not None else c.locate())[self.index]
        if kind >= 0:
            return kind > 0
        r = self._data_range()
        return r is not None and (r[2] > 0 or self.size == 0)

    @property
    def data_offset(self) -> "int | None":
        """Byte offset of the stored values from the start of the file (None without data)."""
        r = self._data_range()
        return None if r is None else r[1]

    @property
    def nbytes(self) -> int:
        """Bytes the stored values take in the file (packed for sub-byte types); 0 without data."""
        r = self._data_range()
        if r is None:
            return 0
        info = TYPES.get(self.type_code)
        if info is None or info.layout in ("string", "none") or self.is_sparse:
            return r[2]
        return min(r[2], -(-self.size * info.bits // 8))

    def raw(self) -> np.ndarray:
        """The stored bytes of this tensor's buffer as a read-only uint8 view (packed
        as stored: sub-byte values are not unpacked, sparse values not densified)."""
        r = self._data_range()
        if r is None:
            raise NoDataError(f"{self._where} ({self.name!r}) has no stored data")
        fb, start, length = r
        return fb.array(start, np.uint8, length, self._where)

    def _value_type(self) -> TypeInfo:
        info = TYPES.get(self.type_code)
        if info is None:
            raise UnsupportedError(
                f"{self._where} ({self.name!r}) has tensor type code {self.type_code}, unknown "
                f"to the schema")
        if info.layout == "none":
            raise UnsupportedError(
                f"{self._where} ({self.name!r}) is a {info.name} tensor, which has no values")
        return info

    def numpy(self) -> np.ndarray:
        """The tensor's values, read-only, of shape ``shape`` and dtype ``dtype``.

        Fixed-width types are zero-copy views over the file.  INT4/UINT4/INT2
        are unpacked to one int8/uint8 element per value, STRING gives an object
        array of ``bytes``.  Raises :class:`NoDataError` for tensors without
        stored values and :class:`UnsupportedError` for RESOURCE/VARIANT.
        """
        c, i = self._c, self.index
        if (c.kind if c.kind is not None else c.locate())[i] == _VIEW:
            # a plain fixed-width constant: a view over u8, which holds a buffer export
            # of the data (numpy keeps u8 as the base; given a memoryview or the mmap,
            # it would keep the mmap without an export, and close() could unmap memory
            # under the view)
            u8 = c.fb.u8
            if u8 is None:
                raise ClosedModelError(f"{c.fb.label}: the model is closed")
            return np.ndarray(self.shape, c.dtypes[i], u8, c.offsets[i])
        info = self._value_type()
        from .compression import lut_tensor
        if lut_tensor(self) is not None:
            from .compression import decompress
            return decompress(self)
        if self.is_sparse:
            from .sparsity import densify_tensor
            return densify_tensor(self)
        r = self._data_range()
        shape = self.shape
        count = element_count(shape, f"{self._where} ({self.name!r})")
        if r is None or (r[2] == 0 and count > 0):
            if self.is_variable:
                raise NoDataError(
                    f"{self._where} ({self.name!r}) is a variable tensor (is_variable): the "
                    f"file stores no values for it by design; the runtime allocates it and "
                    f"resets it to zeros")
            raise NoDataError(
                f"{self._where} ({self.name!r}) has no stored data (buffer {self.buffer})")
        fb, start, length = r
        if info.layout == "fixed":
            need = count * info.itemsize
            if need > length:
                raise InvalidModelError(
                    f"{self._where} ({self.name!r}): {info.name} shape {list(shape)} needs "
                    f"{need} bytes, buffer {self.buffer} holds {length}")
            return fb.array(start, info.dtype, count, self._where).reshape(shape)
        if info.layout == "packed":
            need = -(-count * info.bits // 8)
            if need > length:
                raise InvalidModelError(
                    f"{self._where} ({self.name!r}): {count} {info.name} values need {need} "
                    f"bytes, buffer {self.buffer} holds {length}")
            from .blockwise import uses_row_padding
            if uses_row_padding(self, length):
                from .blockwise import unpack_padded_rows
                values = unpack_padded_rows(fb.array(start, np.uint8, length, self._where),
                                            shape, info.signed)
            else:
                values = unpack_bits(fb.array(start, np.uint8, need, self._where), count,
                                     info.bits, info.signed).reshape(shape)
            values.flags.writeable = False
            return values
        # STRING
        return _decode_strings(fb.array(start, np.uint8, length, self._where), shape, count,
                               f"{self._where} ({self.name!r})")

    def dequantize(self) -> np.ndarray:
        """Real values as float32: ``scale * (q - zero_point)``, per tensor or per
        channel along ``quantized_dimension``; FLOAT16, BFLOAT16 and FLOAT8 are
        widened to float32, FLOAT32 returned as stored (FLOAT64 stays float64).

        Raises :class:`QuantizationError` when an integer tensor has no
        quantization or parameters that do not fit its shape.
        """
        info = TYPES.get(self.type_code)
        q = self.quantization
        if q is not None and q.details_type in ("BlockwiseQuantization", "MultiAxisQuantization"):
            from .blockwise import dequantize_blockwise
            return dequantize_blockwise(self)
        if info is not None and info.name in ("FLOAT32", "FLOAT64"):
            return self.numpy()
        if info is not None and info.name in ("FLOAT16", "BFLOAT16", "FLOAT8_E4M3FN",
                                              "FLOAT8_E5M2"):
            out = self.numpy().astype(np.float32)
            out.flags.writeable = False
            return out
        if info is None or info.name in ("STRING", "BOOL", "COMPLEX64", "COMPLEX128",
                                         "RESOURCE", "VARIANT"):
            raise QuantizationError(f"{self._where} ({self.name!r}) is a {self.type} tensor; "
                                    f"only integer and float tensors dequantize")
        if q is None or q.scale.size == 0:
            raise QuantizationError(
                f"{self._where} ({self.name!r}) is a {info.name} tensor without quantization "
                f"parameters")
        out = dequantize_affine(self.numpy(), q.scale, q.zero_point, q.quantized_dimension,
                                f"{self._where} ({self.name!r})")
        out.flags.writeable = False
        return out

    # -- presentation -------------------------------------------------------------
    def __repr__(self) -> str:
        try:
            q = self.quantization
            qs = f" {q.summary()}" if q is not None else ""
            return (f"<Tensor {self.subgraph}:{self.index} {self.name!r} {self.type} "
                    f"{list(self.shape)}{qs}>")
        except Exception as e:  # a damaged tensor still prints
            return f"<Tensor {self.subgraph}:{self.index} (unreadable: {e})>"


class _LazyTensor(Tensor):
    """A tensor whose table the bulk pass could not read: its fields are decoded
    on first use, raising the precise error then (the other tensors stay readable)."""

    __slots__ = ()

    def __init__(self, sg: "Subgraph", index: int):
        self._sg = sg
        self._c = sg._cols
        self.index = index
        self._t = None

    def _field(self, column: str):
        c, i = self._c, self.index
        if not c.ok[i]:
            self._load()
        return getattr(c, column)[i]

    name = property(lambda self: self._field("names"))
    shape = property(lambda self: self._field("shapes"))
    type_code = property(lambda self: self._field("types"))
    buffer = property(lambda self: self._field("buffers"))
    type = property(lambda self: _type_name(self.type_code))


class _Failed:
    """A table that could not be read, kept in place of the table: later uses raise
    the same error at once instead of decoding the damaged bytes again (a damaged
    vector of thousands of entries stays cheap to walk)."""

    __slots__ = ("cls", "args")

    def __init__(self, error: InvalidModelError):
        self.cls = type(error)
        self.args = error.args

    def reraise(self):
        raise self.cls(*self.args)


def _decode_strings(raw: np.ndarray, shape, count: int, where: str) -> np.ndarray:
    """TFLite's string buffer: int32 n, int32 offsets[n + 1] (from the buffer's start),
    then the bytes; string i is ``raw[offsets[i]:offsets[i + 1]]``."""
    size = raw.size
    if size < 4:
        raise InvalidModelError(f"{where}: a string buffer needs at least 4 bytes, it has {size}")
    n = int(raw[:4].view("<i4")[0])
    header = 4 * (n + 2)
    if n < 0 or header > size:
        raise InvalidModelError(
            f"{where}: string buffer declares {n} strings, whose header needs {max(header, 4)} "
            f"bytes, but the buffer has {size}")
    if n != count:
        raise InvalidModelError(
            f"{where}: string buffer holds {n} strings, the shape {list(shape)} needs {count}")
    offsets = raw[4:header].view("<i4")
    if n and (offsets[0] < header or offsets[-1] > size or np.any(np.diff(offsets) < 0)):
        raise InvalidModelError(
            f"{where}: string offsets {offsets[:8].tolist()}... must rise from {header} "
            f"to at most the buffer size {size}")
    out = np.empty(n, dtype=object)
    data = raw.tobytes() if n else b""
    for i in range(n):
        out[i] = data[offsets[i]:offsets[i + 1]]
    out = out.reshape(shape)
    out.flags.writeable = False
    return out


_UNREAD = object()  # a quantization column entry not decoded yet


class _Columns:
    """A subgraph's tensor fields, decoded for all tensors at once.

    A few vectorised reads (see :class:`~tflite_weights._flatbuffer.Bulk`)
    decode names, shapes, types, buffers and plain affine quantization of every
    tensor; Tensor objects read their entry.  A tensor whose table fails any
    check keeps ``ok[i] = False`` and is decoded on its own when used, which
    raises its precise error.  Scales and zero points of all tensors are
    gathered into one array each (parameters, not tensor data) and handed out
    as read-only slices.
    """

    __slots__ = ("fb", "start", "n", "ok", "names", "shapes", "types", "buffers", "plain",
                 "quants", "model", "arrays", "kind", "offsets", "dtypes")

    def __init__(self, sg: "Subgraph", vec):
        self.model = model = sg.model
        self.kind = None
        self.fb = model._fb
        n = self.n = 0 if vec is None else len(vec)
        self.start = 0 if vec is None else vec.start
        if n == 0:
            self.ok = self.names = self.shapes = self.types = self.buffers = []
            self.plain = self.quants = []
            self.kind = self.offsets = self.dtypes = []
            self.arrays = None
            return
        opos = self.start + 4 * np.arange(n, dtype=np.int64)
        bulk = model._bulk()
        ok = np.ones(n, bool)
        _, f = bulk.tables(opos, ok, (_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT,
                                      _T_SPARSITY, _T_EXTERNAL))
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

        name_len = np.where(ok, name_len, 0)
        blob, name_end = _gather_runs(bulk, name_start, name_len, "u1")
        ne, nl = name_end.tolist(), name_len.tolist()
        raw = blob.tobytes()
        if raw.isascii():  # one decode; character offsets equal byte offsets
            text = raw.decode("ascii")
            names = [text[e - k:e] for e, k in zip(ne, nl)]
        else:
            names = [_decode_name(raw[e - k:e]) for e, k in zip(ne, nl)]
        shapes, counts = _shapes(bulk, shape_start, np.where(ok, shape_len, 0))
        scales = _runs_by_length(bulk, sc_start, np.where(fast_q, sc_len, 0), "<f4")
        zps = _runs_by_length(bulk, zp_start, np.where(fast_q, zp_len, 0), "<i8")
        quants: list = [None if q else _UNREAD for q in no_q.tolist()]
        make = Quantization._from_fields
        fq = np.flatnonzero(fast_q)
        for i, qd in zip(fq.tolist(), qdim[fq].tolist()):
            quants[i] = make(scales[i], zps[i], qd)
        # kept as arrays for the vectorised location pass (see locate); a shape of
        # more than MAX_RANK dimensions takes the general path, which refuses it
        self.arrays = (ok & plain & (shape_len <= MAX_RANK), tbuf, ttype, counts)
        self.ok = ok.tolist()
        self.names = names
        self.shapes = shapes
        self.types = ttype.tolist()
        self.buffers = tbuf.tolist()
        self.plain = plain.tolist()
        self.quants = quants


    def locate(self) -> list:
        """Classify every tensor of the subgraph by where its values are, in one
        vectorised pass on first use; returns ``kind``, per tensor: ``_VIEW`` (a
        plain fixed-width constant whose bytes fit: ``numpy()`` is a view of
        ``dtypes[i]`` at ``offsets[i]``), ``_DATA`` (stored values that need
        decoding), ``_NONE`` (no values), or ``_GENERAL`` (the per-tensor path
        decides: sparse, external, damaged, or a compressed model)."""
        model = self.model
        compressed = model._compressed
        if compressed is None:
            from .metadata import compression_metadata_present
            compressed = model._compressed = compression_metadata_present(model)
        b_off, b_len, b_status = model._buffer_arrays()
        usable, buf, code, count = self.arrays
        # one sentinel entry at the end stands for "out of range"
        b_status = np.append(b_status, -1)
        b_off, b_len = np.append(b_off, 0), np.append(b_len, 0)
        bi = np.where((buf >= 0) & (buf < b_status.size - 1), buf, b_status.size - 1)
        st = np.where(buf == 0, 0, b_status[bi])
        length = b_len[bi]
        known = (code >= 0) & (code < _FIXED_ITEMSIZE.size)
        table_code = np.where(known, code, 0)
        itemsize = np.where(known, _FIXED_ITEMSIZE[table_code], 0)
        no_data = usable & ((st == 0) | ((st == 1) & (length == 0) & (count > 0)))
        with_data = usable & (st == 1) & ~no_data
        view = (with_data & (itemsize > 0) & (count > 0) & (count * itemsize <= length)
                & (not compressed))
        kind = np.full(self.n, _GENERAL, np.int8)
        kind[no_data] = _NONE
        kind[with_data] = _DATA
        kind[view] = _VIEW
        self.offsets = b_off[bi].tolist()
        self.dtypes = _DTYPE_TABLE[table_code].tolist()
        self.kind = kind = kind.tolist()
        return kind


_NUMEL_CAP = 1 << 40  # larger counts cannot fit any buffer; keeps int64 arithmetic exact


def _decode_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _shapes(bulk, start: np.ndarray, rank: np.ndarray) -> "tuple[list, np.ndarray]":
    """Every tensor's shape (a tuple of ints) and element count (0 when a dimension
    is not positive, capped at ``_NUMEL_CAP`` so it cannot overflow), from one
    gather of all the dimensions; the tuples are made by zip, in C."""
    dims, end = _gather_runs(bulk, start, rank, "<i4")
    begin = end - rank
    out = np.empty(rank.size, object)
    out.fill(())
    for k in np.unique(rank).tolist():  # shapes of one rank: rows of one matrix
        if k:
            idx = np.flatnonzero(rank == k)
            mat = dims[begin[idx][:, None] + np.arange(k)]
            out[idx] = np.fromiter(zip(*mat.T.tolist()), object, idx.size)
    shapes = out.tolist()
    counts = np.ones(rank.size, np.int64)
    d = np.clip(dims.astype(np.int64), 0, _NUMEL_CAP)
    for k in range(int(rank.max()) if rank.size else 0):  # one pass per axis
        has = rank > k
        counts[has] = np.minimum(counts[has] * d[begin[has] + k], _NUMEL_CAP)
    return shapes, counts


def _runs_by_length(bulk, start: np.ndarray, count: np.ndarray, dtype: str) -> list:
    """Per entry, the ``count[i]`` values of ``dtype`` at ``start[i]`` as a read-only
    array (an empty one when the count is 0).  Vectors of equal length are read
    together as the rows of one array, whose row views are scattered into place
    by numpy: no Python work per entry."""
    n = count.size
    out = np.empty(n, object)
    out.fill(empty_array(dtype))
    dt = np.dtype(dtype)
    for k in np.unique(count).tolist():
        if k == 0:
            continue
        idx = np.flatnonzero(count == k)
        pos = (start[idx][:, None] + dt.itemsize * np.arange(k)).reshape(-1)
        mat = bulk.gather(pos, dt.str).reshape(-1, k)
        mat.flags.writeable = False
        out[idx] = np.fromiter(mat, object, idx.size)  # row views
    return out.tolist()


def _gather_runs(bulk, start: np.ndarray, count: np.ndarray, dtype: str):
    """Concatenate the vectors ``[start[i], start[i] + count[i] * itemsize)`` into one
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
