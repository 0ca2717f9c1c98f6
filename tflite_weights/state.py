"""The state of one open model: its bytes and every decoded record, in one place.

A :class:`ModelState` is made by :func:`tflite_weights.open` and shared by the
model's domain objects (Model, Subgraph, Tensor, Buffer, Operator, Signature).
It owns every cache (records, columns, the external files it mapped), decodes
each table through :mod:`tflite_weights.format.records` the first time it is
asked, and keeps a failure in place of a record it could not decode, so that a
damaged part is reported at once when asked again.  :meth:`ModelState.close`
releases all of it.

Cost bounded by the file: every vector entry the state materialises (a
subgraph's tensors and operators, an operator's tensor indices, a signature's
tensor maps) is counted against :attr:`ModelState.budget`, one per 4 bytes of
the file and a margin.  A file whose tables share vectors so that they name more
entries than its bytes hold (a tensors vector used by thousands of subgraphs,
say) is refused with :class:`InvalidModelError` instead of making a small file
cost minutes.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .errors import ClosedModelError, ExternalDataError, InvalidModelError, TFLiteWeightsError
from .format import nested, records
from .format.archive import AssociatedFiles, read_archive
from .format.flatbuffer import FlatBuffer, TableVector
from .format.source import Source
from .format.types import TYPES

__all__ = ["ModelState", "Failed"]

_MISSING = object()
#: vector entries allowed beyond one per 4 bytes of the file
BUDGET_MARGIN = 4096


class Failed:
    """A part that could not be decoded, kept in its place: later uses raise the same
    error at once instead of decoding the damaged bytes again."""

    __slots__ = ("cls", "args")

    def __init__(self, error: BaseException):
        self.cls = type(error)
        self.args = error.args

    def reraise(self):
        raise self.cls(*self.args)


def _raise(error):
    raise error


class ValueLocations:
    """Where every tensor of a subgraph has its values, classified in one pass:
    ``kind`` per tensor (``VIEW``: a plain fixed-width constant whose bytes fit, a view
    of ``dtypes[i]`` at ``offsets[i]``; ``DATA``: stored values that need decoding;
    ``NONE``: no values; ``GENERAL``: the per-tensor path decides)."""

    __slots__ = ("kind", "offsets", "dtypes")

    GENERAL, NONE, DATA, VIEW = -1, 0, 1, 2


#: numpy dtype of each type code, indexable by an array of codes
_DTYPE_TABLE = np.array([TYPES[c].dtype for c in sorted(TYPES)], dtype=object)
_FIXED_ITEMSIZE = np.array([TYPES[c].itemsize for c in sorted(TYPES)], dtype=np.int64)


def has_stored_values(length: int, count: int) -> bool:
    """A located buffer holds a tensor's values unless it is empty while the shape has
    elements (the runtime's "no data")."""
    return length > 0 or count == 0


def locate_values(c: records.TensorColumns, b: records.BufferColumns,
                  compressed: bool) -> ValueLocations:
    """:func:`has_stored_values` and the view rule for every tensor of the columns at
    once (the per-tensor path applies the same rules one tensor at a time)."""
    status = np.append(b.status, -1)  # one sentinel entry stands for "out of range"
    start, length = np.append(b.start, 0), np.append(b.length, 0)
    buf = c.buffer_ids
    bi = np.where((buf >= 0) & (buf < status.size - 1), buf, status.size - 1)
    st = np.where(buf == 0, 0, status[bi])
    size = length[bi]
    code = c.type_codes
    known = (code >= 0) & (code < _FIXED_ITEMSIZE.size)
    table_code = np.where(known, code, 0)
    itemsize = np.where(known, _FIXED_ITEMSIZE[table_code], 0)
    count = c.counts
    usable = c.usable
    no_data = usable & ((st == 0) | ((st == 1) & (size == 0) & (count > 0)))
    with_data = usable & (st == 1) & ~no_data
    view = (with_data & (itemsize > 0) & (count > 0) & (count * itemsize <= size)
            & (not compressed))
    kind = np.full(c.n, ValueLocations.GENERAL, np.int8)
    kind[no_data] = ValueLocations.NONE
    kind[with_data] = ValueLocations.DATA
    kind[view] = ValueLocations.VIEW
    loc = ValueLocations()
    loc.offsets = start[bi].tolist()
    loc.dtypes = _DTYPE_TABLE[table_code].tolist()
    loc.kind = kind.tolist()
    return loc


class _ExternalFile:
    """One external file: mapped read-only (empty files get ``b""``), or, for a model
    opened with ``mmap=False``, read a range at a time with positioned reads (so that
    a file that shrinks under us gives an error, not SIGBUS)."""

    __slots__ = ("path", "data", "size", "_mm", "_fd")

    def __init__(self, path: str, mapped: bool = True):
        import mmap
        self.path = path
        self._mm = self._fd = None
        if mapped:
            with open(path, "rb") as f:
                self.size = os.fstat(f.fileno()).st_size
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) \
                    if self.size else None
            self.data = self._mm if self._mm is not None else b""
        else:
            self._fd = os.open(path, os.O_RDONLY)
            self.size = os.fstat(self._fd).st_size
            self.data = None

    @property
    def mapped(self) -> bool:
        return self._mm is not None

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``, read now (the unmapped mode)."""
        chunks = []
        while length > 0:
            chunk = os.pread(self._fd, min(length, 1 << 30), offset)
            if not chunk:
                raise ExternalDataError(f"{self.path}: the file ends at byte {offset}, "
                                        f"{length} bytes short (it changed under us)")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        mm, self._mm = self._mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # arrays still view it; it closes with the last of them
                pass
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class ModelState:
    """One open model: ``fb`` (the bytes, read through the flatbuffer layer),
    ``size``, ``label`` (for messages), ``path``, ``external_data_dir``, the root
    table and ``version``, and every cache."""

    def __init__(self, source: Source, label: str, external_data_dir: "str | None",
                 mapped: bool = True):
        self.source = source
        self.mapped = mapped  # external files mapped too, or read a range at a time
        self.path = source.path
        self.label = label
        self.fb = FlatBuffer(source.data, label=label)
        self.size = self.fb.size
        self.external_data_dir = external_data_dir
        self.lock = threading.RLock()
        self.closed = False
        self.budget = self.size // 4 + BUDGET_MARGIN
        self._cache: dict = {}
        self.external_files: "dict[str, _ExternalFile]" = {}
        try:
            header = records.decode_model_header(self.fb)
        except BaseException:
            self.fb.close()  # release the view of the data before the caller unmaps it
            raise
        self.root = header.root
        self.version = header.version

    # -- life cycle -------------------------------------------------------------------
    def check_open(self) -> None:
        if self.closed:
            raise ClosedModelError(f"{self.label}: the model is closed")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.fb.close()
        self.source.close()
        self._cache.clear()
        for f in self.external_files.values():
            f.close()

    def decoded(self) -> "set[str]":
        """The kinds of record decoded so far (for tests of laziness)."""
        return {k[0] if isinstance(k, tuple) else k for k in self._cache}

    def error(self, where: str, what: str) -> InvalidModelError:
        return InvalidModelError(f"{self.label}: {where}: {what}")

    def spend(self, n: int, where: str) -> None:
        """Count ``n`` materialised vector entries against the budget (see the module)."""
        self.budget -= n
        if self.budget < 0:
            raise self.error(where, f"the model names more table entries than its {self.size} "
                             f"bytes can hold (vectors shared between tables)")

    def cached(self, key, build):
        """``build()``, once per key; a failure is kept and raised again on later calls."""
        v = self._cache.get(key, _MISSING)
        if v is _MISSING:
            self.check_open()
            try:
                v = build()
            except InvalidModelError as e:
                self._cache[key] = Failed(e)
                raise
            self._cache[key] = v
        elif v.__class__ is Failed:
            self.check_open()
            v.reraise()
        return v

    # -- the Model's vectors ------------------------------------------------------------
    def vector(self, name: str) -> "TableVector | tuple":
        """A vector of tables of the root (an empty tuple when absent)."""
        return self.cached(("vector", name), lambda: records.vector(self.root, name) or ())

    @property
    def description(self) -> "str | None":
        return self.cached("description", lambda: records.model_description(self.root))

    # -- buffers -------------------------------------------------------------------------
    def buffer_count(self) -> int:
        return len(self.vector("buffers"))

    def buffer(self, index: int) -> records.BufferRecord:
        def build():
            vec = self.vector("buffers")
            if not 0 <= index < len(vec):
                raise InvalidModelError(f"{self.label}: buffer {index} does not exist (the "
                                        f"model has {len(vec)} buffers)")
            return records.decode_buffer(vec[index], index, self.size, self.label)
        return self.cached(("buffer", index), build)

    def buffer_columns(self) -> records.BufferColumns:
        return self.cached("buffer_columns", lambda: records.buffer_columns(
            self.fb, self.vector("buffers") or None, self.size))

    def buffer_range(self, index: int) -> "tuple[int, int] | None":
        """``(file offset, length)`` of a buffer's bytes, or None when it has none; a
        buffer the columnar pass could not read is decoded on its own (and raises)."""
        cols = self.buffer_columns()
        if 0 <= index < cols.status.size:
            st = cols.status[index]
            if st == 1:
                return int(cols.start[index]), int(cols.length[index])
            if st == 0:
                return None
        b = self.buffer(index)
        return None if b.location is None else (b.start, b.length)

    def bytes_view(self, start: int, length: int, where: str) -> np.ndarray:
        """A read-only uint8 view of ``length`` bytes of the model at ``start``."""
        self.check_open()
        return self.fb.array(start, np.uint8, length, where)

    # -- subgraphs, tensors, operators -----------------------------------------------------
    def subgraph_count(self) -> int:
        return len(self.vector("subgraphs"))

    def subgraph(self, index: int) -> records.SubgraphRecord:
        def build():
            return records.decode_subgraph(self.vector("subgraphs")[index], index)
        return self.cached(("subgraph", index), build)

    def subgraph_vector(self, sg: int, name: str) -> "TableVector | None":
        """A subgraph's ``tensors`` or ``operators`` vector (checked once)."""
        return self.cached((name + "_vector", sg), lambda: records.subgraph_vector(
            self.subgraph(sg).table, name))

    def tensor_columns(self, sg: int) -> records.TensorColumns:
        def build():
            vec = self.subgraph_vector(sg, "tensors")
            self.spend(0 if vec is None else len(vec), f"subgraphs[{sg}].tensors")
            return records.tensor_columns(self.fb, vec)
        return self.cached(("tensors", sg), build)

    def tensor_record(self, sg: int, index: int) -> records.TensorRecord:
        """The full record of a tensor's table; a table named by many entries (of one
        vector or several) is decoded once."""
        c = self.tensor_columns(sg)
        where = f"subgraphs[{sg}].tensors[{index}]"
        opos = c.start + 4 * index
        self.check_open()
        try:
            pos = opos + self.fb.u32(opos, where)
        except InvalidModelError as e:
            return self.cached(("tensor_entry", opos), lambda: _raise(e))
        return self.cached(("tensor", pos), lambda: records.decode_tensor(
            self.fb.table(pos, where)))

    def value_locations(self, sg: int) -> ValueLocations:
        return self.cached(("values", sg), lambda: locate_values(
            self.tensor_columns(sg), self.buffer_columns(), self.compressed()))

    def operator_count(self, sg: int) -> int:
        def build():
            vec = self.subgraph_vector(sg, "operators")
            n = 0 if vec is None else len(vec)
            self.spend(n, f"subgraphs[{sg}].operators")
            return n
        return self.cached(("operator_count", sg), build)

    def operator(self, sg: int, index: int) -> records.OperatorRecord:
        def build():
            vec = self.subgraph_vector(sg, "operators")
            rec = records.decode_operator(vec[index], index)
            self.spend(len(rec.inputs) + len(rec.outputs) + len(rec.intermediates),
                       f"subgraphs[{sg}].operators[{index}]")
            return rec
        return self.cached(("operator", sg, index), build)

    def operator_code(self, index: int, where: str) -> records.OperatorCodeRecord:
        def build():
            vec = self.vector("operator_codes")
            if not 0 <= index < len(vec):
                raise InvalidModelError(
                    f"{self.label}: {where}.opcode_index is {index}, but the model has "
                    f"{len(vec)} operator codes")
            return records.decode_operator_code(vec[index], index)
        return self.cached(("opcode", index), build)

    def options(self, sg: int, index: int) -> dict:
        """The operator's options table as a dict (schema defaults where the file leaves
        a field out; empty when it has none or the table is newer than the schema)."""
        def build():
            rec = self.operator(sg, index)
            member = records.options_member(rec)
            tdef = records.schema.TABLES.get(member) if member else None
            if tdef is None:
                return {}
            if rec.options is None:  # type set, table absent: the runtime uses defaults
                return records.table_defaults(tdef)
            return records.table_to_dict(rec.options, tdef)
        return self.cached(("options", sg, index), build)

    # -- signatures -------------------------------------------------------------------------
    def signature_count(self) -> int:
        return len(self.vector("signature_defs"))

    def signature(self, index: int) -> records.SignatureRecord:
        return self.cached(("signature", index), lambda: records.decode_signature(
            self.vector("signature_defs")[index], index))

    def signature_maps(self, index: int, side: str) -> "tuple[tuple[str, int], ...]":
        def build():
            maps = records.decode_tensor_maps(self.signature(index).table, side)
            self.spend(len(maps), f"signature_defs[{index}].{side}")
            return maps
        return self.cached(("signature_maps", index, side), build)

    # -- metadata -----------------------------------------------------------------------------
    def metadata_entries(self) -> "dict[str, records.MetadataRecord]":
        """name -> entry; the first entry of a name wins, as in the runtime's map."""
        def build():
            vec = self.vector("metadata")
            out: dict = {}
            for i in range(len(vec)):
                rec = records.decode_metadata(vec[i], i)
                out.setdefault(rec.name or "", rec)
            return out
        return self.cached("metadata", build)

    def metadata_range(self, name: str) -> "tuple[int, int, int] | None":
        """``(buffer index, file offset, size)`` of a metadata entry, or None."""
        rec = self.metadata_entries().get(name)
        if rec is None:
            return None
        try:
            b = self.buffer(rec.buffer)
        except InvalidModelError as e:
            raise InvalidModelError(f"{self.label}: metadata {name!r}: {e}") from None
        return rec.buffer, b.start, b.length

    def metadata_bytes(self, name: str) -> "bytes | None":
        """An entry's bytes; None when absent or empty (the runtime skips empty values)."""
        r = self.metadata_range(name)
        if r is None or r[2] == 0:
            return None
        self.check_open()
        return self.fb.bytes_at(r[1], r[2], f"metadata {name!r}")

    def metadata_window(self, name: str, *, empty_is_none: bool = True) -> "FlatBuffer | None":
        """A bounds-checked window over an entry's bytes (no copy), or None."""
        r = self.metadata_range(name)
        if r is None or (empty_is_none and r[2] == 0):
            return None
        self.check_open()
        return FlatBuffer(self.fb.data, base=r[1], size=r[2],
                          label=f"{self.label}: metadata {name!r}")

    def compressed(self) -> bool:
        """Whether TFLite Micro's COMPRESSION_METADATA is present."""
        return nested.COMPRESSION_METADATA in self.metadata_entries()

    def lut_tensors(self) -> "dict[tuple[int, int], nested.LutTensor] | TFLiteWeightsError":
        """The compressed tensors, or the error that makes them unknowable."""
        def build():
            fb = self.metadata_window(nested.COMPRESSION_METADATA, empty_is_none=False)
            if fb is None:
                return {}
            n = self.subgraph_count()

            def count(s):
                return len(self.tensor_columns(s)) if 0 <= s < n else None
            try:
                return nested.decode_compression_metadata(fb, count)
            except ClosedModelError:
                raise
            except TFLiteWeightsError as e:
                return e
        return self.cached("lut", build)

    def archive(self) -> AssociatedFiles:
        return self.cached("archive", lambda: read_archive(self.fb))

    # -- external buffers -------------------------------------------------------------------
    def external_groups(self) -> "tuple[records.ExternalBufferGroup, ...]":
        def build():
            vec = self.vector("external_buffer_groups")
            return tuple(records.decode_external_buffer_group(vec[i], i) for i in range(len(vec)))
        return self.cached("external_groups", build)

    def external_buffers(self) -> "tuple[records.ExternalBuffer, ...]":
        def build():
            vec = self.vector("external_buffers")
            return tuple(records.decode_external_buffer(vec[i], i) for i in range(len(vec)))
        return self.cached("external_buffers", build)

    def external_ids(self) -> "dict[int, list[int]]":
        """id -> entries of ``external_buffers`` carrying it (ids should be unique)."""
        def build():
            out: dict = {}
            for b in self.external_buffers():
                out.setdefault(b.id, []).append(b.index)
            return out
        return self.cached("external_ids", build)

    def external_window(self, ext_id: int, what: str) -> "tuple[FlatBuffer, int, int]":
        """``(window over the group's file, start, length)`` of external buffer ``ext_id``."""
        from .format.external import resolve_group_path
        hits = self.external_ids().get(ext_id, [])
        buffers = self.external_buffers()
        if not hits:
            raise ExternalDataError(
                f"{what} refers to external buffer id {ext_id}, which Model.external_buffers "
                f"does not list ({len(buffers)} entries)")
        if len(hits) > 1:
            raise ExternalDataError(
                f"{what}: external buffer id {ext_id} is listed {len(hits)} times (entries "
                f"{', '.join(map(str, hits))}); ids must be unique")
        eb = buffers[hits[0]]
        groups = self.external_groups()
        label = f"{what}: external buffer id {ext_id} (group {eb.group})"
        if eb.group >= len(groups):
            raise ExternalDataError(f"{label}: the model has only {len(groups)} external buffer "
                                    f"groups")
        name = groups[eb.group].name
        if self.external_data_dir is None:
            raise ExternalDataError(
                f"{label} lives in file {name!r}, but the model was opened from bytes; pass "
                f"external_data_dir= to tflite_weights.open() to say where that file is")
        path = resolve_group_path(self.external_data_dir, name,
                                  f"external buffer group {eb.group} ({name!r})")
        f = self._external_file(path, label)
        if eb.offset > f.size or eb.length > f.size - eb.offset:
            raise ExternalDataError(
                f"{label}: bytes {eb.offset}..{eb.offset + eb.length} lie beyond the end of "
                f"{path} ({f.size} bytes)")
        if f.data is None:  # positioned reads: the bytes asked for, now
            with self.lock:
                self.check_open()
                raw = f.read(eb.offset, eb.length)
            return FlatBuffer(raw, label=os.path.basename(path)), 0, eb.length
        return FlatBuffer(f.data, label=os.path.basename(path)), eb.offset, eb.length

    def _external_file(self, path: str, label: str) -> _ExternalFile:
        f = self.external_files.get(path)
        if f is None:
            with self.lock:
                self.check_open()
                f = self.external_files.get(path)
                if f is None:
                    if not os.path.isfile(path):
                        raise ExternalDataError(f"{label}: file {path} does not exist")
                    try:
                        f = _ExternalFile(path, self.mapped)
                    except OSError as e:
                        raise ExternalDataError(f"{label}: file {path} cannot be read: "
                                                f"{e}") from e
                    self.external_files[path] = f
        return f
