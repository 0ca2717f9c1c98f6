"""Build synthetic .tflite models for tests with the schema's own generated code.

The writer is the object API of ``ai_edge_litert.schema_py_generated`` (the
newest generated bindings, which know INT2, UINT4, FLOAT8, blockwise and
multi-axis quantization and external buffers) and the ``flatbuffers``
builder: an implementation independent of the reader under test.

    b = ModelBuilder()
    sg = b.subgraph("main")
    w = sg.tensor("w", "INT8", [2, 3], data=np.arange(6, dtype=np.int8),
                  quant=dict(scale=[0.5, 0.25], zero_point=[0, 0], quantized_dimension=0))
    data = b.finish()
"""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
import pytest

S = pytest.importorskip("ai_edge_litert.schema_py_generated")

TYPE_CODES = {k: v for k, v in vars(S.TensorType).items() if not k.startswith("_")}
OP_CODES = {k: v for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}

_PLACEHOLDER = 0x7EADBEEF00000000


def _type(t) -> int:
    return TYPE_CODES[t] if isinstance(t, str) else int(t)


def _quant(q: dict | None):
    if q is None:
        return None
    p = S.QuantizationParametersT()
    if "scale" in q:
        p.scale = [float(x) for x in q["scale"]]
    if "zero_point" in q:
        p.zeroPoint = [int(x) for x in q["zero_point"]]
    if "min" in q:
        p.min = [float(x) for x in q["min"]]
    if "max" in q:
        p.max = [float(x) for x in q["max"]]
    p.quantizedDimension = int(q.get("quantized_dimension", 0))
    if "blockwise" in q:
        bw = q["blockwise"]
        d = S.BlockwiseQuantizationT()
        d.scales = bw["scales"]
        d.zeroPoints = bw.get("zero_points", -1)
        d.blockSize = bw["block_size"]
        p.detailsType = S.QuantizationDetails.BlockwiseQuantization
        p.details = d
    elif "multi_axis" in q:
        ma = q["multi_axis"]
        d = S.MultiAxisQuantizationT()
        d.scales = ma["scales"]
        d.zeroPoints = ma.get("zero_points", -1)
        d.blockSize = ma.get("block_size", 0)
        d.quantizedDimensions = list(ma["quantized_dimensions"])
        p.detailsType = S.QuantizationDetails.MultiAxisQuantization
        p.details = d
    elif "custom" in q:
        d = S.CustomQuantizationT()
        d.custom = list(q["custom"])
        p.detailsType = S.QuantizationDetails.CustomQuantization
        p.details = d
    return p


def _sparsity(sp: dict | None):
    """``dict(traversal_order, block_map, dim_metadata=[("DENSE", n) |
    ("CSR", segments, indices, kind)])`` with kind "i32" | "u16" | "u8"."""
    if sp is None:
        return None
    p = S.SparsityParametersT()
    p.traversalOrder = list(sp["traversal_order"])
    if sp.get("block_map") is not None:
        p.blockMap = list(sp["block_map"])
    dims = []
    for dm in sp["dim_metadata"]:
        d = S.DimensionMetadataT()
        if dm[0] == "DENSE":
            d.format = S.DimensionType.DENSE
            d.denseSize = dm[1]
        else:
            d.format = S.DimensionType.SPARSE_CSR
            kind = dm[3] if len(dm) > 3 else "i32"
            cls, code = {"i32": (S.Int32VectorT, S.SparseIndexVector.Int32Vector),
                         "u16": (S.Uint16VectorT, S.SparseIndexVector.Uint16Vector),
                         "u8": (S.Uint8VectorT, S.SparseIndexVector.Uint8Vector)}[kind]
            seg, ind = cls(), cls()
            seg.values, ind.values = list(dm[1]), list(dm[2])
            d.arraySegmentsType = d.arrayIndicesType = code
            d.arraySegments, d.arrayIndices = seg, ind
        dims.append(d)
    p.dimMetadata = dims
    return p


class SubgraphBuilder:
    def __init__(self, model: "ModelBuilder", name: str):
        self.model = model
        self.sg = S.SubGraphT()
        self.sg.name = name
        self.sg.tensors = []
        self.sg.operators = []
        self.sg.inputs = []
        self.sg.outputs = []

    def tensor(self, name, type, shape, data=None, *, buffer=None, quant=None,
               shape_signature=None, is_variable=False, sparsity=None, has_rank=True,
               external_buffer=0, offset=False) -> int:
        """Add a tensor; ``data`` (ndarray or bytes) gets its own buffer unless
        ``buffer`` names one.  Returns the tensor's index."""
        t = S.TensorT()
        t.name = name
        t.type = _type(type)
        t.shape = list(shape)
        if shape_signature is not None:
            t.shapeSignature = list(shape_signature)
        t.isVariable = is_variable
        t.hasRank = has_rank
        t.quantization = _quant(quant)
        t.sparsity = _sparsity(sparsity)
        t.externalBuffer = external_buffer
        if buffer is None:
            buffer = self.model.buffer(data, offset=offset) if data is not None else \
                self.model.buffer(None)
        t.buffer = buffer
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def op(self, opcode, inputs, outputs, *, options=None, options_type=None, version=1,
           custom_code=None, custom_options=None) -> int:
        o = S.OperatorT()
        o.opcodeIndex = self.model.opcode(opcode, version, custom_code)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            o.builtinOptionsType = options_type
            o.builtinOptions = options
        if custom_options is not None:
            o.customOptions = list(custom_options)
        self.sg.operators.append(o)
        return len(self.sg.operators) - 1


class ModelBuilder:
    def __init__(self, description: str | None = "synthetic"):
        self.m = S.ModelT()
        self.m.version = 3
        self.m.description = description
        self.m.buffers = [S.BufferT()]  # the empty sentinel
        self.m.subgraphs = []
        self.m.operatorCodes = []
        self.m.metadata = []
        self.m.signatureDefs = []
        self._offset_data: dict[int, bytes] = {}

    def subgraph(self, name: str = "main") -> SubgraphBuilder:
        sb = SubgraphBuilder(self, name)
        self.m.subgraphs.append(sb.sg)
        return sb

    def buffer(self, data, *, offset: bool = False) -> int:
        """A new buffer; ``data`` None gives an empty one.  ``offset=True`` stores
        the bytes after the flatbuffer (Buffer.offset/size) instead of inline."""
        b = S.BufferT()
        index = len(self.m.buffers)
        if data is not None:
            raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
            if offset:
                b.offset = _PLACEHOLDER + 2 * index
                b.size = _PLACEHOLDER + 2 * index + 1
                self._offset_data[index] = raw
            else:
                b.data = np.frombuffer(raw, np.uint8) if raw else []
        self.m.buffers.append(b)
        return index

    def opcode(self, name, version=1, custom_code=None) -> int:
        code = OP_CODES[name] if isinstance(name, str) else int(name)
        for i, oc in enumerate(self.m.operatorCodes):
            if oc.builtinCode == code and oc.version == version and oc.customCode == custom_code:
                return i
        oc = S.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = version
        oc.customCode = custom_code
        self.m.operatorCodes.append(oc)
        return len(self.m.operatorCodes) - 1

    def add_metadata(self, name: str, data: bytes) -> None:
        md = S.MetadataT()
        md.name = name
        md.buffer = self.buffer(data)
        self.m.metadata.append(md)

    def signature(self, key: str, subgraph: int, inputs: dict, outputs: dict) -> None:
        sd = S.SignatureDefT()
        sd.signatureKey = key
        sd.subgraphIndex = subgraph

        def maps(d):
            out = []
            for name, idx in d.items():
                tm = S.TensorMapT()
                tm.name, tm.tensorIndex = name, idx
                out.append(tm)
            return out
        sd.inputs, sd.outputs = maps(inputs), maps(outputs)
        self.m.signatureDefs.append(sd)

    def finish(self, *, trailing: bytes = b"", identifier: bytes = b"TFL3",
               align: int = 16) -> bytes:
        """Serialise.  Offset buffers are appended after the flatbuffer, each
        ``align``-aligned, and their placeholders patched with the real offsets."""
        builder = flatbuffers.Builder(1024)
        builder.Finish(self.m.Pack(builder), file_identifier=identifier)
        out = bytearray(builder.Output())
        for index, raw in self._offset_data.items():
            out += b"\0" * ((-len(out)) % align or (align if align > 1 else 0))
            pos = len(out)
            out += raw
            for value, real in ((_PLACEHOLDER + 2 * index, pos),
                                (_PLACEHOLDER + 2 * index + 1, len(raw))):
                needle = struct.pack("<Q", value)
                at = out.find(needle)
                assert at >= 0 and out.find(needle, at + 1) < 0
                out[at:at + 8] = struct.pack("<Q", real)
        return bytes(out) + trailing


def single_tensor_model(type, shape, data, **kw) -> bytes:
    """A model with one constant tensor named "t"."""
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("t", type, shape, data, **kw)
    return b.finish()


# -- operator codes written by hand ------------------------------------------------------


def add_opcode(builder: ModelBuilder, builtin_code: int, deprecated_builtin_code: int,
               version: int = 1, custom_code: str | None = None) -> int:
    """Append an OperatorCode with both code fields as given (e.g. a file from before
    ``builtin_code`` existed: ``builtin_code=0``); returns its index."""
    oc = S.OperatorCodeT()
    oc.builtinCode = builtin_code
    oc.deprecatedBuiltinCode = deprecated_builtin_code
    oc.version = version
    oc.customCode = custom_code
    builder.m.operatorCodes.append(oc)
    return len(builder.m.operatorCodes) - 1


# -- nested flatbuffers of the metadata entries, built with flatbuffers.Builder -----------
# (the generated bindings of ai-edge-litert have neither conversion_metadata.fbs nor
# TFLite Support's metadata_schema.fbs; slots follow those schema files)


def _uint_vector(b, values, prepend, size=4):
    b.StartVector(size, len(values), size)
    for v in reversed(values):
        prepend(v)
    return b.EndVector()


def _offset_vector(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def conversion_metadata_bytes(*, tensorflow_version="2.21.0", api_version=2, model_type=2,
                              model_hash=0, modes=(), allow_custom_ops=False,
                              enable_select_tf_ops=False, force_select_tf_ops=False,
                              sparsity_block_sizes=None, environment=True,
                              options=True) -> bytes:
    """A ``ConversionMetadata`` flatbuffer (tflite/converter/schema/conversion_metadata.fbs):
    Environment{tensorflow_version, api_version, model_type, model_hash},
    ConversionOptions{model_optimization_modes, allow_custom_ops, enable_select_tf_ops,
    force_select_tf_ops, sparsity_block_sizes:[SparsityBlockSize{values:[uint]}]}."""
    b = flatbuffers.Builder(0)
    env = opts = None
    if environment:
        tfv = b.CreateString(tensorflow_version) if tensorflow_version is not None else None
        b.StartObject(4)
        if tfv is not None:
            b.PrependUOffsetTRelativeSlot(0, tfv, 0)
        b.PrependUint32Slot(1, api_version, 0)
        b.PrependInt32Slot(2, model_type, 0)
        b.PrependUint64Slot(3, model_hash, 0)
        env = b.EndObject()
    if options:
        sbs = None
        if sparsity_block_sizes is not None:
            tabs = []
            for vals in sparsity_block_sizes:
                vec = _uint_vector(b, list(vals), b.PrependUint32)
                b.StartObject(1)
                b.PrependUOffsetTRelativeSlot(0, vec, 0)
                tabs.append(b.EndObject())
            sbs = _offset_vector(b, tabs)
        mv = _uint_vector(b, list(modes), b.PrependInt32)
        b.StartObject(5)
        b.PrependUOffsetTRelativeSlot(0, mv, 0)
        b.PrependBoolSlot(1, allow_custom_ops, False)
        b.PrependBoolSlot(2, enable_select_tf_ops, False)
        b.PrependBoolSlot(3, force_select_tf_ops, False)
        if sbs is not None:
            b.PrependUOffsetTRelativeSlot(4, sbs, 0)
        opts = b.EndObject()
    b.StartObject(2)
    if env is not None:
        b.PrependUOffsetTRelativeSlot(0, env, 0)
    if opts is not None:
        b.PrependUOffsetTRelativeSlot(1, opts, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def _associated_file(b, name, description=None, type=0, locale=None):
    n = b.CreateString(name)
    d = b.CreateString(description) if description is not None else None
    loc = b.CreateString(locale) if locale is not None else None
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, n, 0)
    if d is not None:
        b.PrependUOffsetTRelativeSlot(1, d, 0)
    b.PrependInt8Slot(2, type, 0)
    if loc is not None:
        b.PrependUOffsetTRelativeSlot(3, loc, 0)
    return b.EndObject()


def support_metadata_bytes(*, name=None, description=None, version=None, author=None,
                           license=None, min_parser_version=None, files=(),
                           subgraphs=(), identifier=b"M001") -> bytes:
    """A TFLite Support ``ModelMetadata`` flatbuffer (tensorflow_lite_support/metadata/
    metadata_schema.fbs).  ``files``: [(name, description, type)]; ``subgraphs``:
    [dict(name=, inputs=[(tensor name, files)], outputs=[(tensor name, files)],
    files=[...])]."""
    b = flatbuffers.Builder(0)

    def strings(**kw):
        return {k: b.CreateString(v) for k, v in kw.items() if v is not None}

    def file_vec(fs):
        return _offset_vector(b, [_associated_file(b, *f) for f in fs])

    def tensor_md(tname, fs):
        fv = file_vec(fs) if fs else None
        s = strings(name=tname)
        b.StartObject(7)
        if "name" in s:
            b.PrependUOffsetTRelativeSlot(0, s["name"], 0)
        if fv is not None:
            b.PrependUOffsetTRelativeSlot(6, fv, 0)
        return b.EndObject()

    sg_tables = []
    for sg in subgraphs:
        ins = _offset_vector(b, [tensor_md(*t) for t in sg.get("inputs", ())])
        outs = _offset_vector(b, [tensor_md(*t) for t in sg.get("outputs", ())])
        fv = file_vec(sg["files"]) if sg.get("files") else None
        s = strings(name=sg.get("name"))
        b.StartObject(9)
        if "name" in s:
            b.PrependUOffsetTRelativeSlot(0, s["name"], 0)
        b.PrependUOffsetTRelativeSlot(2, ins, 0)
        b.PrependUOffsetTRelativeSlot(3, outs, 0)
        if fv is not None:
            b.PrependUOffsetTRelativeSlot(4, fv, 0)
        sg_tables.append(b.EndObject())
    sgv = _offset_vector(b, sg_tables) if sg_tables else None
    fv = file_vec(files) if files else None
    s = strings(name=name, description=description, version=version, author=author,
                license=license, min_parser_version=min_parser_version)
    b.StartObject(8)
    for slot, key in ((0, "name"), (1, "description"), (2, "version"), (4, "author"),
                      (5, "license"), (7, "min_parser_version")):
        if key in s:
            b.PrependUOffsetTRelativeSlot(slot, s[key], 0)
    if sgv is not None:
        b.PrependUOffsetTRelativeSlot(3, sgv, 0)
    if fv is not None:
        b.PrependUOffsetTRelativeSlot(6, fv, 0)
    b.Finish(b.EndObject(), file_identifier=identifier)
    return bytes(b.Output())


# -- running the LiteRT interpreter out of process --------------------------------------


_RUNNER = r"""
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
data = open(sys.argv[1], "rb").read()
inputs = np.load(sys.argv[2], allow_pickle=False)
it = Interpreter(model_content=data, experimental_op_resolver_type=getattr(
    OpResolverType, sys.argv[4]))
it.allocate_tensors()
for i, d in enumerate(it.get_input_details()):
    it.set_tensor(d["index"], inputs[f"in{i}"])
it.invoke()
np.savez(sys.argv[3], **{f"out{i}": it.get_tensor(d["index"])
                         for i, d in enumerate(it.get_output_details())})
"""


def run_interpreter(model: bytes, inputs=(), *, resolver: str = "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
                    timeout: float = 120) -> "list[np.ndarray]":
    """Run ``model`` once in ai-edge-litert's interpreter, in a subprocess (the
    interpreter aborts the process on some models), and return its outputs.

    Skips the calling test when the interpreter is not installed; raises
    RuntimeError with the child's stderr when it fails or crashes.
    """
    import os
    import subprocess
    import sys
    import tempfile
    pytest.importorskip("ai_edge_litert.interpreter")
    with tempfile.TemporaryDirectory() as d:
        mpath, ipath, opath = (os.path.join(d, n) for n in ("m.tflite", "in.npz", "out.npz"))
        with open(mpath, "wb") as f:
            f.write(model)
        np.savez(ipath, **{f"in{i}": np.asarray(x) for i, x in enumerate(inputs)})
        p = subprocess.run([sys.executable, "-c", _RUNNER, mpath, ipath, opath, resolver],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"interpreter failed ({p.returncode}): {p.stderr[-2000:]}")
        with np.load(opath) as z:
            return [z[f"out{i}"] for i in range(len(z.files))]
