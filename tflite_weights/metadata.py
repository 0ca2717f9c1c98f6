"""Model metadata: the named entries of ``Model.metadata`` that tools write, decoded.

``Model.metadata`` maps a name to a buffer (first entry of a name wins, as in
the runtime's ``ReadAllMetadata``).  The entries this module understands:

* ``min_runtime_version``: a 16-byte NUL-padded string (converter
  ``UpdateMinimumRuntimeVersionForModel``; the runtime cuts it at the first NUL);
* ``CONVERSION_METADATA``: a flatbuffer of ``conversion_metadata.fbs``, root
  ``ConversionMetadata``, no file identifier (``tflite/python/util.py::
  populate_conversion_metadata``);
* ``buffer_location``: ``"outside flatbuffers"`` when constant data follows the
  flatbuffer (models over 2 GB);
* ``TFLITE_METADATA``: a flatbuffer of TFLite Support's ``metadata_schema.fbs``
  (identifier ``M001``, root ``ModelMetadata``), whose associated files are a
  zip archive appended after the model (tflite-support ``metadata.py``);
* ``COMPRESSION_METADATA``: TFLite Micro's LUT compression; only detected here.

An entry whose buffer is empty counts as absent, as in the runtime.  Nested
flatbuffers are read in place: a :class:`FlatBuffer` window over the
metadata buffer's bytes, bounds-checked against that window.  A damaged entry
raises :class:`InvalidModelError` naming the entry when its property is read,
never at ``open()``.
"""

from __future__ import annotations

import io
import struct
import weakref
import zipfile
import zlib
from dataclasses import asdict, dataclass
from typing import Iterator, Mapping

from . import _schema
from ._flatbuffer import FlatBuffer
from .errors import ClosedModelError, InvalidModelError, TFLiteWeightsError
from .operators import table_to_dict

__all__ = [
    "MetadataEntry",
    "ConversionMetadata",
    "Environment",
    "ConversionOptions",
    "SupportMetadata",
    "AssociatedFileInfo",
    "AssociatedFiles",
    "metadata_entries",
    "metadata_entry",
    "min_runtime_version",
    "conversion_metadata",
    "buffer_location",
    "tflite_metadata",
    "associated_files",
    "compression_metadata_present",
    "describe",
]

_M_METADATA = _schema.slots("Model", "metadata")[0]
_MD_NAME, _MD_BUFFER = _schema.slots("Metadata", "name", "buffer")

MIN_RUNTIME_VERSION = "min_runtime_version"
CONVERSION_METADATA = "CONVERSION_METADATA"
BUFFER_LOCATION = "buffer_location"
TFLITE_METADATA = "TFLITE_METADATA"
COMPRESSION_METADATA = "COMPRESSION_METADATA"
SUPPORT_IDENTIFIER = b"M001"


def _label(model) -> str:
    return model._fbuf.label


# -- entries ------------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataEntry:
    """One ``Model.metadata`` entry: its name, buffer index, and where its bytes
    are in the file (``offset`` from the file start, ``size`` in bytes)."""

    index: int
    name: str
    buffer: int
    offset: int
    size: int


_ENTRIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _entries(model) -> "dict[str, tuple[int, int]]":
    """name -> (entry index, buffer index); the first entry of a name wins."""
    e = _ENTRIES.get(model)
    if e is None:
        model._check_open()
        e = {}
        vec = model._root.tables(_M_METADATA, "metadata")
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            name = t.string(_MD_NAME, "name") or ""
            if name not in e:
                e[name] = (i, t.scalar(_MD_BUFFER, "u32", 0, "buffer"))
        _ENTRIES[model] = e
    return e


def metadata_entry(model, name: str) -> "MetadataEntry | None":
    """The entry called ``name`` with its byte range, or None when absent.  Raises
    :class:`InvalidModelError` when its buffer does not exist or lies outside the file."""
    hit = _entries(model).get(name)
    if hit is None:
        return None
    index, buf = hit
    try:
        b = model.buffer(buf)
    except InvalidModelError as e:
        raise InvalidModelError(f"{_label(model)}: metadata {name!r}: {e}") from None
    return MetadataEntry(index, name, buf, b.file_offset, b.size)


def metadata_entries(model) -> "list[MetadataEntry]":
    """Every entry (the first of each name), in file order."""
    return [metadata_entry(model, name) for name in _entries(model)]


def _entry_bytes(model, name: str) -> "bytes | None":
    e = metadata_entry(model, name)
    if e is None or e.size == 0:  # the runtime's ReadAllMetadata skips empty values
        return None
    return model._fb.bytes_at(e.offset, e.size, f"metadata {name!r}")


def _cstring(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _nested(model, name: str) -> "FlatBuffer | None":
    """A bounds-checked flatbuffer window over the entry's bytes (no copy); None
    when the entry is absent or empty."""
    e = metadata_entry(model, name)
    if e is None or e.size == 0:
        return None
    return FlatBuffer(model._fb.data, base=e.offset, size=e.size,
                      label=f"{_label(model)}: metadata {name!r}")


# -- min_runtime_version, buffer_location -------------------------------------------------


def min_runtime_version(model) -> "str | None":
    """The ``min_runtime_version`` entry cut at its first NUL (``"1.14.0"``); None
    when the model has no such entry, or an empty one (which the runtime skips)."""
    raw = _entry_bytes(model, MIN_RUNTIME_VERSION)
    return None if raw is None else _cstring(raw)


def buffer_location(model) -> "str | None":
    """The ``buffer_location`` entry (``"outside flatbuffers"`` for models whose
    constants follow the flatbuffer); None when absent."""
    raw = _entry_bytes(model, BUFFER_LOCATION)
    return None if raw is None else _cstring(raw)


def compression_metadata_present(model) -> bool:
    """True when the model carries TFLite Micro's ``COMPRESSION_METADATA``: some
    constant buffers then hold LUT indices rather than values."""
    return COMPRESSION_METADATA in _entries(model)


# -- CONVERSION_METADATA ------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    tensorflow_version: "str | None"
    api_version: int
    model_type: str
    model_hash: int


@dataclass(frozen=True)
class ConversionOptions:
    model_optimization_modes: "tuple[str, ...]"
    allow_custom_ops: bool
    enable_select_tf_ops: bool
    force_select_tf_ops: bool
    sparsity_block_sizes: "tuple[tuple[int, ...], ...]"


@dataclass(frozen=True)
class ConversionMetadata:
    """The converter's record of how a model was made (``CONVERSION_METADATA``).

    Enums are given by name: ``model_type`` ("KERAS_MODEL", ...), and the
    optimization modes ("PTQ_FLOAT16", "PTQ_DYNAMIC_RANGE", "PTQ_FULL_INTEGER",
    "PTQ_INT16", "QUANTIZATION_AWARE_TRAINING", "RANDOM_SPARSITY",
    "BLOCK_SPARSITY", "STRUCTURED_SPARSITY"; ``"<n>"`` for a value the schema
    does not know).  ``environment`` or ``options`` is None when the file leaves
    it out.
    """

    environment: "Environment | None"
    options: "ConversionOptions | None"

    @property
    def model_optimization_modes(self) -> "tuple[str, ...]":
        return self.options.model_optimization_modes if self.options else ()

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["options"] is not None:
            o = d["options"]
            o["model_optimization_modes"] = list(o["model_optimization_modes"])
            o["sparsity_block_sizes"] = [list(b) for b in o["sparsity_block_sizes"]]
        return d


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _cached(model, key, compute):
    per_model = _CACHE.get(model)
    if per_model is None:
        per_model = _CACHE[model] = {}
    if key not in per_model:
        per_model[key] = compute(model)
    return per_model[key]


def _read_conversion_metadata(model) -> "ConversionMetadata | None":
    fb = _nested(model, CONVERSION_METADATA)
    if fb is None:
        return None
    root = table_to_dict(fb.root(), _schema.TABLES["ConversionMetadata"])
    env = root["environment"]
    opts = root["options"]
    return ConversionMetadata(
        environment=None if env is None else Environment(
            tensorflow_version=env["tensorflow_version"],
            api_version=env["api_version"],
            model_type=env["model_type"],
            model_hash=env["model_hash"]),
        options=None if opts is None else ConversionOptions(
            model_optimization_modes=tuple(opts["model_optimization_modes"] or ()),
            allow_custom_ops=opts["allow_custom_ops"],
            enable_select_tf_ops=opts["enable_select_tf_ops"],
            force_select_tf_ops=opts["force_select_tf_ops"],
            sparsity_block_sizes=tuple(tuple(b["values"] or ())
                                       for b in opts["sparsity_block_sizes"] or ())))


def conversion_metadata(model) -> "ConversionMetadata | None":
    """The decoded ``CONVERSION_METADATA`` entry, or None when absent (models
    converted with ``exclude_conversion_metadata`` or over 2 GB, older converters).
    Raises :class:`InvalidModelError` naming the entry when it is damaged."""
    return _cached(model, CONVERSION_METADATA, _read_conversion_metadata)


# -- TFLITE_METADATA (TFLite Support) -------------------------------------------------------

# tensorflow/tflite-support: tensorflow_lite_support/metadata/metadata_schema.fbs
# (schema 1.2.1).  Tables whose contents are not decoded here are declared
# without fields: their slots are skipped, not misread.
_SUPPORT_ENUMS = {
    **_schema.ENUMS,
    "AssociatedFileType": {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS",
                           3: "TENSOR_VALUE_LABELS", 4: "TENSOR_AXIS_SCORE_CALIBRATION",
                           5: "VOCABULARY"},
}
_SUPPORT_TABLES = _schema.parse_tables("""
AssociatedFile: name:str description:str type:i8@AssociatedFileType locale:str
Content:
ProcessUnit:
Stats: max:[f32] min:[f32]
TensorMetadata: name:str description:str dimension_names:[str] content:Content
    process_units:[ProcessUnit] stats:Stats associated_files:[AssociatedFile]
TensorGroup: name:str tensor_names:[str]
SubGraphMetadata: name:str description:str input_tensor_metadata:[TensorMetadata]
    output_tensor_metadata:[TensorMetadata] associated_files:[AssociatedFile]
    input_process_units:[ProcessUnit] output_process_units:[ProcessUnit]
    input_tensor_groups:[TensorGroup] output_tensor_groups:[TensorGroup]
ModelMetadata: name:str description:str version:str subgraph_metadata:[SubGraphMetadata]
    author:str license:str associated_files:[AssociatedFile] min_parser_version:str
""")


@dataclass(frozen=True)
class AssociatedFileInfo:
    """An ``AssociatedFile`` record: a file the metadata says is packed with the
    model.  ``scope`` says who lists it: ``"model"``, ``"subgraph 0"``, or
    ``"subgraph 0 input 'image'"`` / ``"... output ..."``."""

    name: "str | None"
    description: "str | None"
    type: str
    locale: "str | None"
    scope: str


@dataclass(frozen=True)
class SupportMetadata:
    """TFLite Support's ``ModelMetadata`` (entry ``TFLITE_METADATA``), in part:
    the model's name, description, version, author, license, the minimum parser
    version, subgraph and tensor names, and every associated file record."""

    name: "str | None"
    description: "str | None"
    version: "str | None"
    author: "str | None"
    license: "str | None"
    min_parser_version: "str | None"
    subgraphs: "tuple[dict, ...]"
    associated_files: "tuple[AssociatedFileInfo, ...]"

    @property
    def associated_file_names(self) -> "tuple[str, ...]":
        """Names of every associated file record, in order, without repeats."""
        return tuple(dict.fromkeys(f.name for f in self.associated_files if f.name))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["subgraphs"] = list(d["subgraphs"])
        d["associated_files"] = list(d["associated_files"])
        return d


def _files(records, scope: str) -> "list[AssociatedFileInfo]":
    return [AssociatedFileInfo(r["name"], r["description"], r["type"], r["locale"], scope)
            for r in records or ()]


def _read_support_metadata(model) -> "SupportMetadata | None":
    fb = _nested(model, TFLITE_METADATA)
    if fb is None:
        return None
    md = table_to_dict(fb.root(SUPPORT_IDENTIFIER), _SUPPORT_TABLES["ModelMetadata"],
                       _SUPPORT_TABLES, _SUPPORT_ENUMS)
    files = _files(md["associated_files"], "model")
    subgraphs = []
    for i, sg in enumerate(md["subgraph_metadata"] or ()):
        files += _files(sg["associated_files"], f"subgraph {i}")
        entry = {"name": sg["name"], "description": sg["description"]}
        for side in ("input", "output"):
            names = []
            for t in sg[f"{side}_tensor_metadata"] or ():
                names.append(t["name"])
                files += _files(t["associated_files"], f"subgraph {i} {side} {t['name']!r}")
            entry[f"{side}s"] = names
        subgraphs.append(entry)
    return SupportMetadata(
        name=md["name"], description=md["description"], version=md["version"],
        author=md["author"], license=md["license"],
        min_parser_version=md["min_parser_version"],
        subgraphs=tuple(subgraphs), associated_files=tuple(files))


def tflite_metadata(model) -> "SupportMetadata | None":
    """The decoded ``TFLITE_METADATA`` entry (TFLite Support metadata), or None when
    absent.  Raises :class:`InvalidModelError` naming the entry when it is damaged or
    lacks the ``M001`` identifier."""
    return _cached(model, TFLITE_METADATA, _read_support_metadata)


# -- associated files: a zip archive appended to the model --------------------------------

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF


class _Window(io.RawIOBase):
    """A read-only, seekable file over ``data[start:end]`` (no copy until read)."""

    def __init__(self, data, start: int, end: int):
        self._data = data
        self._start = start
        self._end = end
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        size = self._end - self._start
        base = {0: 0, 1: self._pos, 2: size}[whence]
        pos = base + offset
        if pos < 0:
            raise OSError(f"seek to {pos}, before the start of the archive")
        self._pos = pos
        return pos

    def readinto(self, b) -> int:
        size = self._end - self._start
        n = max(0, min(len(b), size - self._pos))
        if n:
            a = self._start + self._pos
            b[:n] = self._data[a:a + n]
            self._pos += n
        return n


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
               struct.error, zlib.error, NotImplementedError, RuntimeError)


def _find_archive(model) -> "tuple[int, int] | None":
    """``(start, end_of_central_directory)`` of a zip archive that ends the file.

    The end-of-central-directory record sits in the last 22 + 65535 bytes and
    must end exactly at the end of the file (with its comment).  ``start`` is the
    position the archive's offsets count from: 0 when the archive was appended in
    place (zipfile's mode "a"), the archive's first byte when it was concatenated.
    """
    fb = model._fb
    size = fb.size
    lo = max(0, size - _EOCD_SIZE - _MAX_COMMENT)
    tail = fb.bytes_at(lo, size - lo, "end of file")
    at = len(tail)
    while True:
        at = tail.rfind(_EOCD, 0, at)
        if at < 0:
            return None
        if at + _EOCD_SIZE <= len(tail):
            (_, _, _, _, _, cd_size, cd_offset, comment) = struct.unpack_from(
                "<4sHHHHIIH", tail, at)
            if at + _EOCD_SIZE + comment == len(tail):
                break
    eocd = lo + at
    where = f"associated files: zip end record at byte {eocd}"
    cd_start = eocd - cd_size
    if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF:  # zip64
        loc = eocd - _ZIP64_LOCATOR_SIZE
        raw = fb.bytes_at(loc, _ZIP64_LOCATOR_SIZE, where) if loc >= 0 else b""
        if raw[:4] != _ZIP64_LOCATOR:
            raise InvalidModelError(f"{_label(model)}: {where}: a zip64 archive without "
                                    f"its zip64 locator")
        rec_offset = struct.unpack_from("<Q", raw, 8)[0]
        rec = loc - 56
        head = fb.bytes_at(rec, 56, where) if rec >= 0 else b""
        if head[:4] != _ZIP64_EOCD:
            raise InvalidModelError(f"{_label(model)}: {where}: zip64 end record missing")
        cd_size, cd_offset = struct.unpack_from("<QQ", head, 40)
        return rec - rec_offset, eocd
    start = cd_start - cd_offset
    if start < 0 or cd_start < 0:
        raise InvalidModelError(
            f"{_label(model)}: {where}: central directory of {cd_size} bytes at archive "
            f"offset {cd_offset} does not fit before it")
    return start, eocd


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    compressed_size: int


class AssociatedFiles(Mapping):
    """The zip archive appended to a model: file name -> uncompressed size.

    Empty when the file ends without one.  ``read(name)`` returns a file's bytes.
    ``offset`` is where the archive's offsets count from (0 when it was appended
    in place), ``archive_start`` its first byte.
    """

    def __init__(self, model, listing: "_Listing"):
        self._model = model
        self._listing = listing
        self.offset = listing.offset
        self.archive_start = listing.archive_start

    @property
    def present(self) -> bool:
        return self.offset is not None

    def __getitem__(self, name: str) -> int:
        return self._listing.members[name].size

    def __iter__(self) -> Iterator[str]:
        return iter(self._listing.members)

    def __len__(self) -> int:
        return len(self._listing.members)

    def compressed_size(self, name: str) -> int:
        return self._listing.members[name].compressed_size

    def read(self, name: str) -> bytes:
        """The bytes of the file ``name`` (KeyError when the archive has none)."""
        info = self._listing.infos.get(name)
        if info is None:
            known = ", ".join(map(repr, self._listing.members)) or "none"
            raise KeyError(f"no associated file named {name!r} (files: {known})")
        model = self._model
        try:
            with zipfile.ZipFile(_Window(model._fb.data, self.offset, model.size), "r") as zf:
                data = zf.read(info)
        except ClosedModelError:
            raise
        except _ZIP_ERRORS as e:
            raise _zip_error(model, self.offset, e) from None
        if len(data) != info.file_size:
            # zipfile checks the CRC only when it reaches the declared size: a
            # directory that declares more than the member holds goes unchecked
            raise _zip_error(model, self.offset, f"{name!r} declares {info.file_size} bytes "
                             f"but holds {len(data)}")
        return data

    def to_list(self) -> "list[dict]":
        return [{"name": m.name, "size": m.size, "compressed_size": m.compressed_size}
                for m in self._listing.members.values()]

    def __repr__(self) -> str:
        if not self.present:
            return "<AssociatedFiles: none>"
        return f"<AssociatedFiles {list(self)} (offsets from byte {self.offset})>"


def _zip_error(model, offset, e) -> InvalidModelError:
    return InvalidModelError(
        f"{_label(model)}: associated files: the zip archive at the end of the file "
        f"(offsets from byte {offset}) is damaged: {e}")


class _Listing:
    """The archive's directory, read once per model (holds no reference to it)."""

    def __init__(self, model):
        self.members: "dict[str, _Member]" = {}
        self.infos: dict = {}
        self.offset = self.archive_start = None
        span = _find_archive(model)
        if span is None:
            return
        self.offset = span[0]
        try:
            with zipfile.ZipFile(_Window(model._fb.data, self.offset, model.size), "r") as zf:
                infos = zf.infolist()
        except ClosedModelError:
            raise
        except _ZIP_ERRORS as e:
            raise _zip_error(model, self.offset, e) from None
        for info in infos:
            if info.filename not in self.infos:
                self.infos[info.filename] = info
                self.members[info.filename] = _Member(info.filename, info.file_size,
                                                      info.compress_size)
        self.archive_start = self.offset + min(
            (i.header_offset for i in infos), default=span[1] - self.offset)


def associated_files(model) -> AssociatedFiles:
    """The files of a zip archive appended after the model (TFLite Support packs
    labels and vocabularies this way): an empty mapping when there is none.
    Raises :class:`InvalidModelError` when the archive's directory is damaged."""
    return AssociatedFiles(model, _cached(model, "associated_files", _Listing))


# -- summary ---------------------------------------------------------------------------------


def _printable(raw: bytes) -> "str | None":
    text = raw.rstrip(b"\0")
    if len(text) <= 64 and all(32 <= c < 127 for c in text):
        return text.decode("ascii")
    return None


def _section(fn):
    try:
        return fn()
    except TFLiteWeightsError as e:
        return {"error": str(e)}


def _entries_summary(model) -> list:
    out = []
    for name, (index, buf) in _entries(model).items():
        item = {"name": name, "buffer": buf}
        try:
            e = metadata_entry(model, name)
            item.update(offset=e.offset, size=e.size)
            if name not in (CONVERSION_METADATA, TFLITE_METADATA, COMPRESSION_METADATA):
                text = _printable(model._fb.bytes_at(e.offset, min(e.size, 80), name))
                if text is not None and e.size <= 80:
                    item["text"] = text
        except TFLiteWeightsError as err:
            item["error"] = str(err)
        out.append(item)
    return out


def describe(model) -> dict:
    """A JSON-ready summary of everything this module decodes.  A damaged part
    shows as ``{"error": message}`` in its place; the rest is still reported.
    Raises :class:`ClosedModelError` for a closed model (every part would fail)."""
    model._check_open()

    def conv():
        cm = conversion_metadata(model)
        return None if cm is None else cm.to_dict()

    def support():
        sm = tflite_metadata(model)
        return None if sm is None else sm.to_dict()

    def signatures():
        return {k: s.to_dict() for k, s in model.signatures.items()}

    return {
        "description": _section(lambda: model.description),
        "schema_version": model.version,
        "min_runtime_version": _section(lambda: min_runtime_version(model)),
        "buffer_location": _section(lambda: buffer_location(model)),
        "metadata": _section(lambda: _entries_summary(model)),
        "conversion_metadata": _section(conv),
        "tflite_metadata": _section(support),
        "associated_files": _section(lambda: associated_files(model).to_list()),
        "compression_metadata": _section(lambda: compression_metadata_present(model)),
        "signatures": _section(signatures),
    }
