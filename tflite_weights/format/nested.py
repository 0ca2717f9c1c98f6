"""The flatbuffers that models carry inside metadata buffers, decoded.

Each takes a :class:`~.flatbuffer.FlatBuffer` window over the metadata buffer's
bytes (no copy), bounds-checked against that window:

* ``CONVERSION_METADATA``: ``conversion_metadata.fbs`` (LiteRT
  ``tflite/converter/schema``), root ``ConversionMetadata``, no identifier
  (``tflite/python/util.py::populate_conversion_metadata``);
* ``TFLITE_METADATA``: TFLite Support's ``metadata_schema.fbs`` (identifier
  ``M001``, root ``ModelMetadata``), in part;
* ``COMPRESSION_METADATA``: TFLite Micro's ``compression/metadata.fbs``
  (``Metadata{schema_version, subgraphs:[Subgraph{lut_tensors:[LutTensor]}]}``).

Decoding follows the schemas generically (:func:`~.records.table_to_dict`), with a
budget of one table per 4 bytes of the window: tables shared by many references
cannot make a small entry expand into millions of records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InvalidModelError
from . import schema
from .flatbuffer import FlatBuffer, Table
from .records import table_to_dict

__all__ = [
    "MIN_RUNTIME_VERSION", "CONVERSION_METADATA", "BUFFER_LOCATION", "TFLITE_METADATA",
    "COMPRESSION_METADATA", "SUPPORT_IDENTIFIER", "cstring",
    "Environment", "ConversionOptions", "ConversionMetadata", "decode_conversion_metadata",
    "AssociatedFileInfo", "SupportMetadata", "decode_support_metadata",
    "LutTensor", "COMPRESSION_SCHEMA_VERSION", "decode_compression_metadata",
]

MIN_RUNTIME_VERSION = "min_runtime_version"
CONVERSION_METADATA = "CONVERSION_METADATA"
BUFFER_LOCATION = "buffer_location"
TFLITE_METADATA = "TFLITE_METADATA"
COMPRESSION_METADATA = "COMPRESSION_METADATA"
SUPPORT_IDENTIFIER = b"M001"


def cstring(raw: bytes) -> str:
    """A NUL-padded string entry (``min_runtime_version``): cut at the first NUL."""
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


class _Budget:
    """Tables a decode may visit: one per 4 bytes of the window, and a few more."""

    def __init__(self, fb: FlatBuffer):
        self.left = fb.size // 4 + 64
        self.fb = fb

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise InvalidModelError(
                f"{self.fb.label}: its tables are referenced more often than its "
                f"{self.fb.size} bytes can hold (shared tables)")


def _decode(table: Table, tdef, tables, enums, budget: _Budget) -> dict:
    budget.spend()
    return table_to_dict(table, tdef, tables, enums, visit=budget.spend)


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


def decode_conversion_metadata(fb: FlatBuffer) -> ConversionMetadata:
    root = _decode(fb.root(), schema.TABLES["ConversionMetadata"], None, None, _Budget(fb))
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


# -- TFLITE_METADATA (TFLite Support) -------------------------------------------------------

# tensorflow/tflite-support: tensorflow_lite_support/metadata/metadata_schema.fbs
# (schema 1.2.1).  Tables whose contents are not decoded here are declared
# without fields: their slots are skipped, not misread.
_SUPPORT_ENUMS = {
    **schema.ENUMS,
    "AssociatedFileType": {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS",
                           3: "TENSOR_VALUE_LABELS", 4: "TENSOR_AXIS_SCORE_CALIBRATION",
                           5: "VOCABULARY"},
}
_SUPPORT_TABLES = schema.parse_tables("""
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


def decode_support_metadata(fb: FlatBuffer) -> SupportMetadata:
    md = _decode(fb.root(SUPPORT_IDENTIFIER), _SUPPORT_TABLES["ModelMetadata"],
                 _SUPPORT_TABLES, _SUPPORT_ENUMS, _Budget(fb))
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


# -- COMPRESSION_METADATA (TFLite Micro) -----------------------------------------------------

#: the newest compression metadata schema version this reader decodes
COMPRESSION_SCHEMA_VERSION = 1

_LUT_TABLES = schema.parse_tables("""
Metadata: schema_version:u32=1 subgraphs:[Subgraph]
Subgraph: lut_tensors:[LutTensor]
LutTensor: tensor:i32 value_buffer:u32 index_bitwidth:u8
""")
_LMD_VERSION, _LMD_SUBGRAPHS = (_LUT_TABLES["Metadata"].slot(n) for n in ("schema_version",
                                                                           "subgraphs"))
_LSG_LUTS = _LUT_TABLES["Subgraph"].slot("lut_tensors")
_LT_TENSOR, _LT_VALUES, _LT_BITS = (_LUT_TABLES["LutTensor"].slot(n) for n in
                                    ("tensor", "value_buffer", "index_bitwidth"))


@dataclass(frozen=True)
class LutTensor:
    """One compressed tensor: where it is, its value-table buffer, its index width."""

    subgraph: int
    tensor: int
    value_buffer: int
    index_bitwidth: int
    schema_version: int = COMPRESSION_SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"scheme": "lut", "subgraph": self.subgraph, "tensor": self.tensor,
                "value_buffer": self.value_buffer, "index_bitwidth": self.index_bitwidth,
                "schema_version": self.schema_version}


def decode_compression_metadata(fb: FlatBuffer, tensor_count) -> "dict[tuple[int, int], LutTensor]":
    """``(subgraph, tensor) -> LutTensor`` for every compressed tensor.
    ``tensor_count(s)`` gives the number of tensors of subgraph ``s`` (None when there
    is no such subgraph); an entry naming no tensor, or a tensor twice, raises
    :class:`InvalidModelError`, as does damaged metadata."""
    root = fb.root()
    version = root.scalar(_LMD_VERSION, "u32", 1, "schema_version")
    out: dict = {}
    sgs = root.tables(_LMD_SUBGRAPHS, "subgraphs")
    budget = _Budget(fb)
    for s in range(0 if sgs is None else len(sgs)):
        budget.spend()
        luts = sgs[s].tables(_LSG_LUTS, "lut_tensors")
        for j in range(0 if luts is None else len(luts)):
            budget.spend()
            lt = luts[j]
            t = lt.scalar(_LT_TENSOR, "i32", 0, "tensor")
            entry = LutTensor(s, t, lt.scalar(_LT_VALUES, "u32", 0, "value_buffer"),
                              lt.scalar(_LT_BITS, "u8", 0, "index_bitwidth"), version)
            n = tensor_count(s)
            if n is None or not 0 <= t < n:
                raise InvalidModelError(
                    f"{fb.label}: subgraphs[{s}].lut_tensors[{j}] names tensor {t} of "
                    f"subgraph {s}, which does not exist")
            if (s, t) in out:
                raise InvalidModelError(
                    f"{fb.label}: tensor {t} of subgraph {s} is listed twice")
            out[(s, t)] = entry
    return out
