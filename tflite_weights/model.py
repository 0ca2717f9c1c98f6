"""The domain: open(), Model, Subgraph, Tensor and Buffer, read lazily from one mapping.

``open()`` maps the file (or wraps the caller's bytes), checks the header and
the root table, and stops.  Subgraphs, tensors, names, shapes and quantization
are decoded the first time they are asked for, through the model's
:class:`~tflite_weights.state.ModelState` (which owns every decoded record and
cache); tensor values are numpy views over the mapping, never copies (sub-byte
types, strings, sparse and compressed tensors, which must be decoded, are the
exceptions and say so).  How values are decoded and dequantized is in
:mod:`tflite_weights.numerics`; what the bytes mean, in :mod:`tflite_weights.format`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from itertools import repeat
from typing import Iterator

import numpy as np

from .errors import (
    ClosedModelError,
    InvalidModelError,
    NoDataError,
    TensorNotFoundError,
    TFLiteWeightsError,
    UnsupportedError,
)
from .format import nested, records
from .format.records import UNREAD, Quantization
from .format.source import open_source
from .format.types import (FIXED, PACKED, TYPES, TypeInfo, check_shape, shape_text, type_info,
                           type_name, type_names)
from .numerics import blockwise, values as values_math
from .numerics.quantization import dequantize as dequantize_values
from .state import Failed, ModelState, ValueLocations, has_stored_values

__all__ = ["open", "Model", "Subgraph", "Tensor", "Buffer"]

_VIEW = ValueLocations.VIEW


def open(source, *, external_data_dir: "str | os.PathLike | None" = None,
         mmap: bool = True) -> "Model":
    """Open a ``.tflite`` model lazily.

    ``source`` is a path (``str`` or path-like), or bytes-like data (``bytes``,
    ``bytearray``, ``memoryview``, ``mmap``) that must stay unchanged while the
    model is in use.  A path is mapped read-only; nothing more than the header
    and the root table is read until asked for.  ``external_data_dir`` is where
    external weight files are looked for (default: the model file's folder).

    ``mmap=False`` reads the file into memory once instead of mapping it, and
    reads external weight files a range at a time: slower to open and as large as
    the file in memory, but nothing another process does to the files afterwards
    (truncating one) can crash the reader; values are then views of that copy, or
    copies.  A mapped file truncated while in use kills the process with SIGBUS
    when the lost pages are read (docs/robustness.md).

    Raises :class:`InvalidModelError` when the data is not a TFLite flatbuffer, or
    when a path names a pipe, a device or a directory, and ``OSError`` when the file
    cannot be read.
    """
    src = open_source(source, mmap=mmap)
    path = src.path
    label = os.path.basename(path) if path else "model"
    ext_dir = (os.fspath(external_data_dir) if external_data_dir is not None
               else (os.path.dirname(os.path.abspath(path)) if path else None))
    try:
        state = ModelState(src, label, ext_dir, mapped=mmap)
    except BaseException:
        src.close()
        raise
    return Model(state)


class Model:
    """A TFLite model: subgraphs of tensors, buffers, metadata.

    Acts as a read-only mapping from subgraph 0's tensor names to tensors
    (``model["name"]``, ``"name" in model``, ``model.keys()``); use
    :meth:`tensor` or :attr:`subgraphs` for the others.  A context manager:
    ``with tflite_weights.open(path) as model: ...``.
    """

    def __init__(self, state: ModelState):
        self._state = state
        self.path = state.path
        self.size = state.size
        self.version = state.version
        self.external_data_dir = state.external_data_dir
        self._subgraphs: "tuple[Subgraph, ...] | None" = None
        self._buffers: "dict[int, Buffer]" = {}

    # -- life cycle -------------------------------------------------------------
    def close(self) -> None:
        """Release the mapping and the file.

        Arrays handed out earlier stay valid: while any of them is alive the
        mapping stays open (it is closed when the last view is freed); the
        model itself refuses further use with :class:`ClosedModelError`.
        """
        self._state.close()

    @property
    def closed(self) -> bool:
        return self._state.closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.size} bytes"
        name = os.path.basename(self.path) if self.path else "<bytes>"
        return f"<tflite_weights.Model {name!r} ({state})>"

    @property
    def data(self) -> memoryview:
        """The model's bytes, read-only (the mapped file, or the bytes it was opened from)."""
        self._state.check_open()
        return memoryview(self._state.fb.u8)

    # -- model-level fields -----------------------------------------------------
    @property
    def description(self) -> "str | None":
        return self._state.description

    @property
    def subgraphs(self) -> "tuple[Subgraph, ...]":
        sgs = self._subgraphs
        if sgs is None:
            n = self._state.subgraph_count()
            sgs = self._subgraphs = tuple(Subgraph(self, i, self._state) for i in range(n))
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
    @property
    def buffer_count(self) -> int:
        return self._state.buffer_count()

    def buffer(self, index: int) -> "Buffer":
        """The buffer at ``index`` (checked), read once and cached."""
        b = self._buffers.get(index)
        if b is None:
            b = self._buffers[index] = Buffer(self, self._state.buffer(index), self._state)
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
        st = self._state

        def build():
            out = {}
            for name in st.metadata_entries():
                _, start, size = st.metadata_range(name)
                out[name] = st.fb.bytes_at(start, size, f"metadata {name!r}")
            return out
        return dict(st.cached("metadata_bytes", build))

    @property
    def min_runtime_version(self) -> "str | None":
        """The ``min_runtime_version`` entry cut at its first NUL (``"1.14.0"``); None
        when the model has no such entry, or an empty one (which the runtime skips)."""
        raw = self._state.metadata_bytes(nested.MIN_RUNTIME_VERSION)
        return None if raw is None else nested.cstring(raw)

    @property
    def buffer_location(self) -> "str | None":
        """The ``buffer_location`` metadata ("outside flatbuffers" for models whose
        buffers follow the flatbuffer), or None."""
        raw = self._state.metadata_bytes(nested.BUFFER_LOCATION)
        return None if raw is None else nested.cstring(raw)

    @property
    def conversion_metadata(self) -> "nested.ConversionMetadata | None":
        """The converter's CONVERSION_METADATA (environment and optimization modes), or
        None when absent (models converted with ``exclude_conversion_metadata`` or over
        2 GB, older converters).  Raises :class:`InvalidModelError` naming the entry
        when it is damaged."""
        st = self._state

        def build():
            fb = st.metadata_window(nested.CONVERSION_METADATA)
            return None if fb is None else nested.decode_conversion_metadata(fb)
        return st.cached("conversion_metadata", build)

    @property
    def tflite_metadata(self) -> "nested.SupportMetadata | None":
        """TFLite Support metadata (TFLITE_METADATA, identifier "M001"), or None.  Raises
        :class:`InvalidModelError` naming the entry when it is damaged or lacks the
        identifier."""
        st = self._state

        def build():
            fb = st.metadata_window(nested.TFLITE_METADATA)
            return None if fb is None else nested.decode_support_metadata(fb)
        return st.cached("support_metadata", build)

    @property
    def associated_files(self):
        """Files appended to the model as a zip: name -> size, ``read(name)``."""
        return self._state.archive()

    @property
    def has_compression_metadata(self) -> bool:
        """True when TFLite Micro's COMPRESSION_METADATA is present."""
        return self._state.compressed()

    def metadata_entries(self) -> "list[MetadataEntry]":
        """Every ``Model.metadata`` entry (the first of each name), with the byte range
        of its buffer, in file order.  Raises when an entry's buffer cannot be read."""
        st = self._state
        out = []
        for name, rec in st.metadata_entries().items():
            _, start, size = st.metadata_range(name)
            out.append(MetadataEntry(rec.index, name, rec.buffer, start, size))
        return out

    def describe(self) -> dict:
        """Everything the metadata holds as a JSON-ready dict.  A damaged part shows as
        ``{"error": message}`` in its place; the rest is still reported.  Raises
        :class:`ClosedModelError` for a closed model."""
        self._state.check_open()

        def section(fn):
            try:
                return fn()
            except ClosedModelError:
                raise
            except (InvalidModelError, UnsupportedError) as e:
                return {"error": str(e)}

        def conv():
            cm = self.conversion_metadata
            return None if cm is None else cm.to_dict()

        def support():
            sm = self.tflite_metadata
            return None if sm is None else sm.to_dict()

        return {
            "description": section(lambda: self.description),
            "schema_version": self.version,
            "min_runtime_version": section(lambda: self.min_runtime_version),
            "buffer_location": section(lambda: self.buffer_location),
            "metadata": section(self._entries_summary),
            "conversion_metadata": section(conv),
            "tflite_metadata": section(support),
            "associated_files": section(lambda: self.associated_files.to_list()),
            "compression_metadata": section(lambda: self.has_compression_metadata),
            "signatures": section(lambda: {k: s.to_dict() for k, s in self.signatures.items()}),
        }

    def _entries_summary(self) -> list:
        st = self._state
        out = []
        hidden = (nested.CONVERSION_METADATA, nested.TFLITE_METADATA,
                  nested.COMPRESSION_METADATA)
        for name, rec in st.metadata_entries().items():
            item = {"name": name, "buffer": rec.buffer}
            try:
                _, start, size = st.metadata_range(name)
                item.update(offset=start, size=size)
                if name not in hidden and size <= 80:
                    text = st.fb.bytes_at(start, size, name).rstrip(b"\0")
                    if len(text) <= 64 and all(32 <= c < 127 for c in text):
                        item["text"] = text.decode("ascii")
            except InvalidModelError as err:
                item["error"] = str(err)
            out.append(item)
        return out

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

    # -- operators, signatures --------------------------------------------------------
    @property
    def signatures(self):
        """Signature key -> :class:`~tflite_weights.signatures.Signature` (inputs and
        outputs by name), in file order; the first of a repeated key wins.  Raises
        :class:`InvalidModelError` for a SignatureDef without a key."""
        from .signatures import read_signatures
        return self._state.cached("signatures", lambda: read_signatures(self, self._state))

    def weights(self):
        """Yield ``(operator, role, tensor)`` for every weight-like input of every
        operator of every subgraph (see :mod:`tflite_weights.operators`)."""
        from .operators import iter_weights
        return iter_weights(self)

    @property
    def operator_codes(self):
        """The model's OperatorCode table (see :mod:`tflite_weights.operators`)."""
        from .operators import OperatorCode
        st = self._state
        return tuple(OperatorCode(st.operator_code(i, "operator_codes"))
                     for i in range(len(st.vector("operator_codes"))))

    # -- external buffers, variables ----------------------------------------------------
    @property
    def external_buffer_groups(self) -> "tuple[records.ExternalBufferGroup, ...]":
        return self._state.external_groups()

    @property
    def external_buffers(self) -> "tuple[records.ExternalBuffer, ...]":
        return self._state.external_buffers()

    def resource_variables(self):
        """Resource variable -> its initial value (see :mod:`tflite_weights.variables`)."""
        from .variables import resource_variables
        return resource_variables(self)


@dataclasses.dataclass(frozen=True)
class MetadataEntry:
    """One ``Model.metadata`` entry: its name, buffer index, and where its bytes
    are in the file (``offset`` from the file start, ``size`` in bytes)."""

    index: int
    name: str
    buffer: int
    offset: int
    size: int


class Buffer:
    """One entry of ``Model.buffers``: where its bytes are.

    ``location`` is ``"inline"`` (a ``data`` vector inside the flatbuffer),
    ``"offset"`` (``offset``/``size`` from the start of the file, for models
    over 2 GB) or ``None`` (no data).  ``file_offset`` and ``size`` give the
    byte range in the file.  When both are set, ``data`` wins, as in the runtime.
    """

    __slots__ = ("model", "index", "location", "file_offset", "size", "stored_offset",
                 "stored_size", "_state")

    def __init__(self, model: Model, rec: records.BufferRecord, state: ModelState):
        self.model = model
        self._state = state
        self.index = rec.index
        self.location = rec.location
        self.file_offset = rec.start
        self.size = rec.length
        self.stored_offset = rec.stored_offset
        self.stored_size = rec.stored_size

    @property
    def has_data(self) -> bool:
        return self.location is not None

    def array(self) -> np.ndarray:
        """The buffer's bytes as a read-only uint8 view."""
        if self.location is None:
            return np.empty(0, np.uint8)
        return self._state.bytes_view(self.file_offset, self.size, f"buffers[{self.index}]")

    def tobytes(self) -> bytes:
        return self.array().tobytes()

    def __repr__(self) -> str:
        if self.location is None:
            return f"<Buffer {self.index}: no data>"
        return (f"<Buffer {self.index}: {self.size} bytes {self.location} at byte "
                f"{self.file_offset}>")


class Subgraph:
    """One subgraph: its tensors and the indices of its inputs and outputs."""

    def __init__(self, model: Model, index: int, state: ModelState):
        self.model = model
        self.index = index
        self._state = state
        self._tensors: "tuple[Tensor, ...] | None" = None
        self._name_index: "dict[str, list[int]] | None" = None
        self._operators = None
        self._cols: "records.TensorColumns | None" = None
        self._loc: "ValueLocations | None" = None

    def _locations(self) -> ValueLocations:
        """Where every tensor's values are (one vectorised pass, on first use)."""
        loc = self._loc
        if loc is None:
            loc = self._loc = self._state.value_locations(self.index)
        return loc

    @property
    def _record(self) -> records.SubgraphRecord:
        return self._state.subgraph(self.index)

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def inputs(self) -> "tuple[int, ...]":
        return self._record.inputs

    @property
    def outputs(self) -> "tuple[int, ...]":
        return self._record.outputs

    @property
    def tensors(self) -> "tuple[Tensor, ...]":
        ts = self._tensors
        if ts is None:
            c = self._cols = self._state.tensor_columns(self.index)
            ts = tuple(map(Tensor, repeat(self, c.n), range(c.n), c.names, c.shapes, c.types,
                           type_names(c.types), c.buffers))
            if not all(c.ok):
                # tables the bulk pass could not read: decode (and fail) when used
                ts = tuple(t if c.ok[t.index] else _LazyTensor(self, t.index) for t in ts)
            self._tensors = ts
        return ts

    @property
    def operators(self):
        """The subgraph's operators in execution order (see :mod:`tflite_weights.operators`)."""
        if self._operators is None:
            from .operators import Operator
            n = self._state.operator_count(self.index)
            self._operators = tuple(Operator(self, i, self._state) for i in range(n))
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

    ``name`` (str), ``shape`` (tuple of int), ``type`` (the schema's TensorType
    name, "INT8", ...; "<code>" for a code the schema does not know),
    ``type_code`` (int) and ``buffer`` (index) are plain attributes, decoded for
    every tensor of a subgraph at once the first time its tensors are asked for;
    the rest (shape signature, sparsity, ...) when read.  ``numpy()`` returns a
    read-only view over the file for fixed-width types; ``raw()`` the stored
    bytes; ``dequantize()`` float32 values.
    """

    __slots__ = ("_sg", "index", "_c", "_rec", "name", "shape", "type_code", "type", "buffer")

    def __init__(self, sg: Subgraph, index: int, name: str, shape, type_code: int,
                 type_name: str, buffer: int):
        self._sg = sg
        self._c = sg._cols  # the subgraph's decoded columns, shared by its tensors
        self.index = index
        self._rec = None
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
    def model(self) -> Model:
        """The model the tensor belongs to."""
        return self._sg.model

    @property
    def _state(self) -> ModelState:
        return self._sg._state

    @property
    def _where(self) -> str:
        return f"tensor {self.index} of subgraph {self._sg.index}"

    @property
    def _what(self) -> str:
        return f"{self._where} ({self.name!r})"

    def _record(self) -> records.TensorRecord:
        """Every field of the tensor's table (checked), decoded once."""
        rec = self._rec
        if rec is None:
            rec = self._rec = self._state.tensor_record(self._sg.index, self.index)
        return rec

    # -- fields ----------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar); 0 when a dimension is not positive."""
        c, i = self._c, self.index
        if c.ok[i]:
            n = int(c.counts[i])
            if n < records.NUMEL_CAP:  # counted with the columns (capped)
                return n
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
        sig = records.tensor_shape_signature(self._record())
        return sig if sig else self.shape

    @property
    def has_rank(self) -> bool:
        return records.tensor_has_rank(self._record())

    @property
    def is_variable(self) -> bool:
        return records.tensor_is_variable(self._record())

    @property
    def external_buffer(self) -> int:
        """Id of the ExternalBuffer holding the values; 0 when ``buffer`` is used."""
        return self._record().external_buffer

    @property
    def is_sparse(self) -> bool:
        return False if self._c.plain[self.index] else self._record().has_sparsity

    @property
    def sparsity(self) -> "records.SparsityParameters | None":
        """The SparsityParameters, or None."""
        return records.decode_sparsity(records.tensor_sparsity(self._record()))

    @property
    def compression(self) -> "nested.LutTensor | None":
        """The TFLite Micro LUT compression of this tensor, or None.  ``numpy()`` returns
        decoded values for compressed tensors; ``raw()`` the stored indices."""
        luts = self._state.lut_tensors()
        if isinstance(luts, Exception):
            raise InvalidModelError(
                f"{self._what}: the model's {nested.COMPRESSION_METADATA} cannot be read, so "
                f"whether this tensor is compressed is unknown: {luts}") from luts
        return luts.get((self._sg.index, self.index)) if luts else None

    # -- graph --------------------------------------------------------------------------
    @property
    def producers(self):
        """Operators of this tensor's subgraph that output it."""
        from .operators import producers_of
        return producers_of(self._sg, self.index)

    @property
    def consumers(self):
        """Operators of this tensor's subgraph that take it as an input."""
        from .operators import consumers_of
        return consumers_of(self._sg, self.index)

    def unshuffle(self, *, force: bool = False) -> np.ndarray:
        """The ``[output, input]`` matrix of SHUFFLED4x16INT8 fully-connected weights,
        sign bit restored (see :func:`tflite_weights.operators.unshuffle_fc_weights`)."""
        from .operators import unshuffle_fc_weights
        return unshuffle_fc_weights(self, force=force)

    # -- quantization -------------------------------------------------------------
    @property
    def quantization(self) -> "Quantization | None":
        """The stored quantization parameters, or None when the tensor has no scale
        and no quantization details."""
        quants = self._c.quants
        q = quants[self.index]
        if q is UNREAD:
            q = quants[self.index] = self._read_quantization()
        return q

    def _read_quantization(self) -> "Quantization | None":
        q = records.decode_quantization(records.tensor_quantization(self._record()))
        if q is not None and q.is_blockwise:
            # scales and zero points live in other tensors: resolve them now when
            # possible (dequantize() raises the reason when they cannot be)
            try:
                p = self._block_parameters(q)
            except ClosedModelError:
                raise
            except TFLiteWeightsError:
                return q
            q = dataclasses.replace(q, **blockwise.resolved_fields(p))
        return q

    def _block_parameters(self, q: Quantization) -> blockwise.BlockParameters:
        ts = self._sg.tensors

        def sibling(i):
            t = ts[i]
            return blockwise.Sibling(t.index, t.name, TYPES.get(t.type_code), t.type, t.numpy)
        return blockwise.block_parameters(self.shape, q, self.index, len(ts), sibling,
                                          self._what)

    # -- data ---------------------------------------------------------------------------
    def _data_range(self) -> "tuple[object, int, int] | None":
        """``(flatbuffer window, start, length)`` of the stored bytes, or None."""
        st = self._state
        st.check_open()  # cached records must not read a released mapping
        c, i = self._c, self.index
        if not c.plain[i]:
            ext = self._record().external_buffer
            if ext:
                return st.external_window(ext, self._what)
        elif not c.ok[i]:
            self._record()
        buf = self.buffer
        if buf == 0:
            return None
        loc = st.buffer_range(buf)
        if loc is None:
            return None
        return st.fb, loc[0], loc[1]

    def _kind(self) -> int:
        return self._sg._locations().kind[self.index]

    @property
    def has_data(self) -> bool:
        """True when the file stores values for this tensor (a constant)."""
        kind = self._kind()
        if kind >= 0:
            return kind > 0
        r = self._data_range()
        return r is not None and has_stored_values(r[2], self.size)

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
        if info is None or info.layout not in (FIXED, PACKED) or self.is_sparse:
            return r[2]
        return min(r[2], info.stored_bytes(self.size))

    def raw(self) -> np.ndarray:
        """The stored bytes of this tensor's buffer as a read-only uint8 view (packed
        as stored: sub-byte values are not unpacked, sparse values not densified)."""
        r = self._data_range()
        if r is None:
            raise NoDataError(f"{self._what} has no stored data")
        fb, start, length = r
        return fb.array(start, np.uint8, length, self._where)

    def _value_type(self) -> TypeInfo:
        info = TYPES.get(self.type_code)
        if info is None:
            raise UnsupportedError(
                f"{self._what} has tensor type code {self.type_code}, unknown to the schema")
        if not info.has_values:
            raise UnsupportedError(f"{self._what} is a {info.name} tensor, which has no values")
        return info

    def sparse_values(self) -> np.ndarray:
        """The values a sparse tensor stores, in traversal order (1-D, as stored)."""
        info = self._value_type()
        raw = self.raw()
        if info.layout == FIXED:
            return raw[:raw.size - raw.size % info.itemsize].view(info.dtype)
        if info.layout == PACKED:
            count = raw.size * 8 // info.bits
            values = values_math.unpack_bits(raw, count, info.bits, info.signed)
            values.flags.writeable = False
            return values
        raise UnsupportedError(f"{self._what}: a sparse {info.name} tensor cannot be densified")

    def numpy(self) -> np.ndarray:
        """The tensor's values, read-only, of shape ``shape`` and dtype ``dtype``.

        Fixed-width types are zero-copy views over the file.  INT4/UINT4/INT2
        are unpacked to one int8/uint8 element per value, STRING gives an object
        array of ``bytes``.  Raises :class:`NoDataError` for tensors without
        stored values and :class:`UnsupportedError` for RESOURCE/VARIANT.
        """
        sg = self._sg
        loc = sg._loc or sg._locations()
        i = self.index
        if loc.kind[i] == _VIEW:
            # a plain fixed-width constant: a view over u8, which holds a buffer export
            # of the data (numpy keeps u8 as the base; given a memoryview or the mmap,
            # it would keep the mmap without an export, and close() could unmap memory
            # under the view)
            u8 = sg._state.fb.u8
            if u8 is None:
                raise ClosedModelError(f"{sg._state.label}: the model is closed")
            return np.ndarray(self.shape, loc.dtypes[i], u8, loc.offsets[i])
        info = self._value_type()
        if self.compression is not None:
            return self._decompress(info)
        if self.is_sparse:
            from .numerics.sparsity import densify
            return densify(self.shape, self.sparsity, self.sparse_values(), self._what)
        r = self._data_range()
        shape = self.shape
        count = check_shape(shape, 8, self._what)
        if r is None or not has_stored_values(r[2], count):
            if self.is_variable:
                raise NoDataError(
                    f"{self._what} is a variable tensor (is_variable): the file stores no "
                    f"values for it by design; the runtime allocates it and resets it to zeros")
            raise NoDataError(f"{self._what} has no stored data (buffer {self.buffer})")
        fb, start, length = r
        raw = fb.array(start, np.uint8, length, self._where)
        padded = (info.layout == PACKED
                  and blockwise.uses_row_padding(shape, info, self.quantization, length))
        return values_math.stored_values(raw, info, shape, self._what, padded_rows=padded,
                                         holder=f"buffer {self.buffer}")

    def _decompress(self, info: TypeInfo) -> np.ndarray:
        from .numerics.lut import decompress
        lt = self.compression
        what = self._what
        try:
            table = self._state.bytes_view(*self._buffer_span(lt.value_buffer), what)
        except ClosedModelError:
            raise
        except (InvalidModelError, UnsupportedError) as e:
            raise InvalidModelError(f"{what}: its value table (buffer {lt.value_buffer}) "
                                    f"cannot be read: {e}") from e
        channels, axis = 1, 0
        q = self.quantization
        shape = tuple(self.shape)
        if q is not None and q.scale.size > 1:
            axis = q.quantized_dimension
            if not 0 <= axis < len(shape) or shape[axis] != q.scale.size:
                raise InvalidModelError(
                    f"{what}: {q.scale.size} per-channel scales do not fit axis {axis} of "
                    f"shape {list(shape)}, so the value tables cannot be assigned to channels")
            channels = q.scale.size
        r = self._data_range()
        if r is None:
            raise InvalidModelError(f"{what} is listed in {nested.COMPRESSION_METADATA} but "
                                    f"stores no indices")
        fb, start, length = r
        indices = fb.array(start, np.uint8, length, self._where)
        return decompress(lt, info, shape, indices, table, channels, axis, what,
                          holder=f"buffer {self.buffer}")

    def _buffer_span(self, index: int) -> "tuple[int, int]":
        b = self._state.buffer(index)
        return b.start, b.length

    def dequantize(self) -> np.ndarray:
        """Real values as float32: ``scale * (q - zero_point)``, per tensor or per
        channel along ``quantized_dimension``; FLOAT16, BFLOAT16 and FLOAT8 are
        widened to float32, FLOAT32 returned as stored (FLOAT64 stays float64).

        Raises :class:`QuantizationError` when an integer tensor has no
        quantization or parameters that do not fit its shape.
        """
        q = self.quantization
        return dequantize_values(self.numpy, TYPES.get(self.type_code), q, self._what,
                                 block=lambda: self._block_parameters(q), type_name=self.type)

    # -- presentation -------------------------------------------------------------
    def __repr__(self) -> str:
        try:
            q = self.quantization
            qs = f" {q.summary()}" if q is not None else ""
            return (f"<Tensor {self.subgraph}:{self.index} {self.name!r} {self.type} "
                    f"{shape_text(self.shape)}{qs}>")
        except Exception as e:  # a damaged tensor still prints
            return f"<Tensor {self.subgraph}:{self.index} (unreadable: {e})>"


class _LazyTensor(Tensor):
    """A tensor whose table the bulk pass could not read: its fields are decoded
    on first use, raising the precise error then (the other tensors stay readable)."""

    __slots__ = ()

    def __init__(self, sg: Subgraph, index: int):
        self._sg = sg
        self._c = sg._cols
        self.index = index
        self._rec = None

    name = property(lambda self: self._record().name)
    shape = property(lambda self: self._record().shape)
    type_code = property(lambda self: self._record().type_code)
    buffer = property(lambda self: self._record().buffer)
    type = property(lambda self: type_name(self.type_code))


__all__ += ["MetadataEntry"]
