"""Every rule of ``verify.RULES``, broken alone: one table of cases.

Each case names a rule, builds a model that breaks it (with the schema's
generated object API through ``builders.ModelBuilder``, or by patching the
bytes of a sound model for the structural rules) and its twin, the same model
built without that one step.  The broken model must report the rule, where and
in the words the case expects, with the rule's severity; the twin must not
report it.  The rules the broken model reports beyond the twin's are exactly
the case's rule, so each case proves its rule and nothing else fires by
accident; and the twin is sound and clean unless the case says otherwise.

Two structural limits are proved with the module's limits lowered
(``MAX_DEPTH`` 4, ``MAX_TABLES`` the twin's own table count, ``MAX_DEFECTS`` 3)
instead of building files of 64 nested tables or a million tables;
``tests/test_verify.py`` keeps a test of the real depth of 64.  The rule for a
model that fails to read after its structure passed is a safety net no known
file reaches: its case makes one read fail on purpose.

A meta-test requires a case for every rule and a rule for every case, so a
rule added without a test fails here; another requires every rule identifier
written in ``verify.py`` to be in ``RULES`` and the reverse; another requires
the table of rules in ``docs/cli.md`` to be the one ``RULES`` gives (running
this file as a script rewrites it).
"""

from __future__ import annotations

import ast
import math
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tflite_weights.format import schema as _schema
from tflite_weights import verify as V
from tflite_weights.numerics import quantization, values
from tflite_weights.errors import InvalidModelError

from tests.support.builders import S, ModelBuilder, _quant, _sparsity, conversion_metadata_bytes

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"


# -- the sound model every case starts from ----------------------------------------------


def base() -> ModelBuilder:
    """x (input) + c (an INT8 constant) -> y, all per-tensor quantized, with a
    signature: ``verify`` finds nothing in it."""
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "INT8", [1, 4], quant=dict(scale=[0.5], zero_point=[0]))
    c = sg.tensor("c", "INT8", [1, 4], np.array([1, 2, 3, 4], np.int8),
                  quant=dict(scale=[0.5], zero_point=[0]))
    y = sg.tensor("y", "INT8", [1, 4], quant=dict(scale=[0.5], zero_point=[0]))
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    sg.op("ADD", [x, c], [y])
    b.signature("serving_default", 0, {"x": x}, {"y": y})
    return b


def tweak(edit: Callable[[ModelBuilder], None], start: Callable[[], ModelBuilder] = base):
    """A build: ``start()``, with ``edit`` applied to the broken model only."""
    def build(broken: bool) -> bytes:
        b = start()
        if broken:
            edit(b)
        return b.finish()
    build.__name__ = edit.__name__
    return build


def patch(edit: Callable[[bytearray], None], start: Callable[[], bytes] = None):
    """A build: the bytes of ``start()`` (the base model), patched by ``edit`` when
    broken."""
    def build(broken: bool) -> bytes:
        d = bytearray(start() if start is not None else base().finish())
        if broken:
            edit(d)
        return bytes(d)
    build.__name__ = edit.__name__
    return build


def _t(b: ModelBuilder, i: int):
    return b.m.subgraphs[0].tensors[i]


def _q(b: ModelBuilder, i: int = 1):
    return _t(b, i).quantization


# -- reading the bytes without the reader under test ---------------------------------------


def _slot(table: str, field: str) -> int:
    return _schema.TABLES[table].slot(field)


def _u16(d, p):
    return struct.unpack_from("<H", d, p)[0]


def _u32(d, p):
    return struct.unpack_from("<I", d, p)[0]


def _vt(d, pos: int) -> int:
    return pos - struct.unpack_from("<i", d, pos)[0]


def _voff_pos(d, pos: int, table: str, field: str) -> int:
    """Position of the field's entry in the vtable of the table at ``pos``."""
    vt = _vt(d, pos)
    slot = _slot(table, field)
    assert 4 + 2 * slot < _u16(d, vt), f"{table}.{field} is absent"
    return vt + 4 + 2 * slot


def _field(d, pos: int, table: str, field: str) -> int:
    voff = _u16(d, _voff_pos(d, pos, table, field))
    assert voff, f"{table}.{field} is absent"
    return pos + voff


def _deref(d, p: int) -> int:
    return p + _u32(d, p)


def _element(d, vec: int, i: int) -> int:
    return _deref(d, vec + 4 + 4 * i)


def _tensor(d, i: int) -> int:
    sg = _element(d, _deref(d, _field(d, _u32(d, 0), "Model", "subgraphs")), 0)
    return _element(d, _deref(d, _field(d, sg, "SubGraph", "tensors")), i)


def _quantization(d, i: int) -> int:
    return _deref(d, _field(d, _tensor(d, i), "Tensor", "quantization"))


def _put(d, p: int, fmt: str, value) -> None:
    struct.pack_into(fmt, d, p, value)


# -- builds: reading the file ---------------------------------------------------------------


def empty(broken):
    return b"" if broken else base().finish()


def three_buffers_out_of_range(broken):
    """Three tensors name a missing buffer (two in the twin): with MAX_DEFECTS at 3 the
    third defect ends the check."""
    b = base()
    sg = b.m.subgraphs[0]
    for t in sg.tensors[:3 if broken else 2]:
        t.buffer = 99
    return b.finish()


def unchanged(b):
    pass


def _limit_defects(mp, broken):
    mp.setattr(V, "MAX_DEFECTS", 3)


def _fail_a_read(mp, broken):
    if broken:
        def fail(self, root):
            raise InvalidModelError("Model.metadata: a read failed")
        mp.setattr(V._Rules, "metadata", fail)


# -- builds: structure ------------------------------------------------------------------------


def seven_bytes(broken):
    d = base().finish()
    return d[:7] if broken else d


def identifier_tfl2(d):
    d[4:8] = b"TFL2"


def model_offset_field_misaligned(d):
    """The first offset field of the Model table moved 2 bytes on (still inside the
    table)."""
    root = _u32(d, 0)
    tsize = _u16(d, _vt(d, root) + 2)
    fields = [f for f in ("operator_codes", "subgraphs", "description", "buffers",
                          "signature_defs") if _u16(d, _voff_pos(d, root, "Model", f))]
    vpos = min((_voff_pos(d, root, "Model", f) for f in fields), key=lambda p: _u16(d, p))
    assert _u16(d, vpos) + 2 + 4 <= tsize
    _put(d, vpos, "<H", _u16(d, vpos) + 2)


def name_offset_zero(d):
    _put(d, _field(d, _tensor(d, 0), "Tensor", "name"), "<I", 0)


def root_offset_negative(d):
    _put(d, 0, "<I", 0x80000010)


def root_offset_past_the_end(d):
    _put(d, 0, "<I", len(d) + 64)


def buffers_element_zero(d):
    _put(d, _deref(d, _field(d, _u32(d, 0), "Model", "buffers")) + 4, "<I", 0)


def root_offset_plus_2(d):
    _put(d, 0, "<I", _u32(d, 0) + 2)


def _with_two_trailing_bytes():
    d = base().finish()
    assert len(d) % 4 == 0
    return d + b"\0\0"


def root_at_the_last_two_bytes(d):
    _put(d, 0, "<I", len(d) - 2)


def blockwise_nested_5_deep(broken):
    """Model > SubGraph > Tensor > QuantizationParameters is 4 tables deep; blockwise
    details are a fifth (the twin quantizes per tensor instead)."""
    b = _details("blockwise")()
    if not broken:
        _t(b, 1).quantization = _quant(dict(scale=[0.5], zero_point=[0]))
    return b.finish()


def _limit_depth(mp, broken):
    mp.setattr(V, "MAX_DEPTH", 4)


def _count_tables(obj) -> int:
    """Tables an object-API model packs into: one per table object, counted from the
    generated classes (independent of the walk under test)."""
    if isinstance(obj, list):
        return sum(_count_tables(x) for x in obj)
    if type(obj).__module__ != S.__name__ or not hasattr(obj, "Pack"):
        return 0
    return 1 + sum(_count_tables(v) for v in vars(obj).values())


def one_table_too_many(broken):
    """The twin has exactly MAX_TABLES tables; the broken model one more, a tensor
    without data or parameters."""
    b = base()
    if broken:
        b.m.subgraphs[0].tensors.append(S.TensorT())
    return b.finish()


def _limit_tables(mp, broken):
    mp.setattr(V, "MAX_TABLES", _count_tables(base().m))


def vtable_far_after(d):
    _put(d, _tensor(d, 0), "<i", -(len(d) + 100))


def vtable_odd_position(d):
    p = _tensor(d, 0)
    _put(d, p, "<i", struct.unpack_from("<i", d, p)[0] - 1)


def vtable_odd_size(d):
    vt = _vt(d, _u32(d, 0))
    _put(d, vt, "<H", _u16(d, vt) + 1)


def vtable_of_2_bytes(d):
    _put(d, _vt(d, _u32(d, 0)), "<H", 2)


def table_of_2_bytes(d):
    _put(d, _vt(d, _u32(d, 0)) + 2, "<H", 2)


def field_past_the_table(d):
    p = _tensor(d, 0)
    vpos = _voff_pos(d, p, "Tensor", "name")
    _put(d, vpos, "<H", _u16(d, _vt(d, p) + 2))  # the table size: the field starts at its end


def u32_field_off_by_one(d):
    """Model.version (u32) moved one byte back, still inside the table."""
    vpos = _voff_pos(d, _u32(d, 0), "Model", "version")
    assert _u16(d, vpos) - 1 >= 4
    _put(d, vpos, "<H", _u16(d, vpos) - 1)


def shape_offset_plus_2(d):
    p = _field(d, _tensor(d, 0), "Tensor", "shape")
    _put(d, p, "<I", _u32(d, p) + 2)


def _shape_count(n):
    def edit(d):
        _put(d, _deref(d, _field(d, _tensor(d, 0), "Tensor", "shape")), "<I", n)
    edit.__name__ = f"shape_count_{n:#x}"
    return edit


def _zero_points_only():
    """Tensor c with zero points [1, 0] and no scale (the model rules skip parameters
    without scales; the structure walk does not)."""
    b = base()
    _q(b).scale = None
    _q(b).zeroPoint = [1, 0]
    return b.finish()


def zero_points_moved_4_bytes(d):
    """The zero_point offset moved 4 bytes on: the count is now the low half of the
    first value (1) and the one element starts 4 bytes past an 8-byte boundary."""
    p = _field(d, _quantization(d, 1), "QuantizationParameters", "zero_point")
    assert (_deref(d, p) + 4) % 8 == 0 and _u32(d, _deref(d, p) + 4) == 1
    _put(d, p, "<I", _u32(d, p) + 4)


def name_not_terminated(d):
    name = _deref(d, _field(d, _tensor(d, 0), "Tensor", "name"))
    d[name + 4 + _u32(d, name)] = ord("!")


def _custom_quantization():
    b = base()
    _t(b, 1).quantization = _quant(dict(scale=[0.5], zero_point=[0], custom=b"xy"))
    return b.finish()


def details_type_9(d):
    q = _quantization(d, 1)
    vt = _vt(d, q)
    p = q + _u16(d, vt + 4 + 2 * (_slot("QuantizationParameters", "details") - 1))
    assert d[p] == S.QuantizationDetails.CustomQuantization
    d[p] = 9


# -- builds: model rules ------------------------------------------------------------------


def version_2(b):
    b.m.version = 2


def _no_data():
    """Tensors without data on buffer 0, no signature: a model that needs no buffer."""
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [4], buffer=0)
    y = sg.tensor("y", "FLOAT32", [4], buffer=0)
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    sg.op("ADD", [x, x], [y])
    return b


def no_buffers(b):
    b.m.buffers = None


def sentinel_with_bytes(b):
    b.m.buffers[0].data = np.frombuffer(b"\x01\x02", np.uint8)


def _without_signature():
    b = base()
    b.m.signatureDefs = []
    return b


def no_subgraph(b):
    b.m.subgraphs = []


def offset_buffer_size_1mib(broken):
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "FLOAT32", [4], np.arange(4, dtype=np.float32), offset=True)
    d = bytearray(b.finish())
    if broken:
        at = d.find(struct.pack("<Q", 16))
        assert at > 0
        _put(d, at, "<Q", 1 << 20)
    return bytes(d)


def builtin_code_minus_5(b):
    oc = b.m.operatorCodes[0]
    oc.builtinCode = oc.deprecatedBuiltinCode = -5


def builtin_code_999(b):
    oc = b.m.operatorCodes[0]
    oc.builtinCode, oc.deprecatedBuiltinCode = 999, 127


def custom_without_code(b):
    oc = b.m.operatorCodes[0]
    oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.CUSTOM
    oc.customCode = None


def _mul():
    b = base()
    oc = b.m.operatorCodes[0]
    oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.MUL
    return b


def deprecated_code_17(b):
    b.m.operatorCodes[0].deprecatedBuiltinCode = 17


def operator_version_0(b):
    b.m.operatorCodes[0].version = 0


def opcode_index_5(b):
    b.m.subgraphs[0].operators[0].opcodeIndex = 5


def _empty_subgraph():
    b = ModelBuilder()
    b.subgraph()
    return b


def no_tensors_vector(b):
    b.m.subgraphs[0].tensors = None


def input_7(b):
    b.m.subgraphs[0].operators[0].inputs = [0, 7]


def output_minus_1(b):
    b.m.subgraphs[0].operators[0].outputs = [-1]


def type_99(b):
    _t(b, 0).type = 99


def shape_minus_1(b):
    _t(b, 0).shape = [-1, 4]


def buffer_99(b):
    _t(b, 1).buffer = 99


def variable_with_data(b):
    _t(b, 1).isVariable = True


def external_buffer_1(b):
    _t(b, 1).externalBuffer = 1


def _strings(values) -> bytes:
    """The runtime's STRING buffer: int32 n, int32 offsets[n + 1], bytes."""
    header = 4 * (len(values) + 2)
    offs, at = [], header
    for v in values:
        offs.append(at)
        at += len(v)
    offs.append(at)
    return struct.pack(f"<{len(values) + 2}i", len(values), *offs) + b"".join(values)


def _string_constant():
    """Tensor c as a STRING constant holding one string, "ab"."""
    def start():
        b = base()
        t = _t(b, 1)
        t.type, t.shape, t.quantization = S.TensorType.STRING, [1], None
        b.m.buffers[t.buffer].data = np.frombuffer(_strings([b"ab"]), np.uint8)
        return b
    return start


def _set_string_buffer(raw: bytes, name: str):
    def edit(b):
        t = _t(b, 1)
        b.m.buffers[t.buffer].data = np.frombuffer(raw, np.uint8)
    edit.__name__ = name
    return edit


def string_shape_minus_1(b):
    _t(b, 1).shape = [-1]


def shape_1_8(b):
    _t(b, 1).shape = [1, 8]


def shape_1_2(b):
    _t(b, 1).shape = [1, 2]


def _details(kind: str, **values):
    """Tensor c quantized with blockwise or multi-axis details over a float16 scale
    tensor (tensor 3)."""
    def start():
        b = base()
        sg = b.m.subgraphs[0]
        s = S.TensorT()
        s.name, s.type, s.shape = "s", S.TensorType.FLOAT16, [1, 2]
        s.buffer = b.buffer(np.array([0.5, 0.25], np.float16))
        sg.tensors.append(s)
        details = dict(scales=3, block_size=2)
        if kind == "multi_axis":
            details.update(block_size=0, quantized_dimensions=[1])
        details.update(values)
        _t(b, 1).quantization = _quant({kind: details})
        return b
    return start


def details_dropped(b):
    _q(b).details = None


def _set_details(name: str, **values):
    def edit(b):
        d = _q(b).details
        for k, v in values.items():
            setattr(d, k, v)
    edit.__name__ = name
    return edit


def _per_channel(shape, n, axis):
    def start():
        b = base()
        t = _t(b, 1)
        t.shape = list(shape)
        t.quantization.scale, t.quantization.zeroPoint = [0.5] * n, [0] * n
        t.quantization.quantizedDimension = axis
        return b
    return start


def _scalar_constant():
    """The base model with ``c`` a scalar (one stored byte, one scale)."""
    b = base()
    t = _t(b, 1)
    t.shape = []
    b.m.buffers[t.buffer].data = np.array([7], np.uint8)
    return b


def _set_quant(name: str, **values):
    def edit(b):
        for k, v in values.items():
            setattr(_q(b), k, v)
    edit.__name__ = name
    return edit


def _sparse(*dims):
    def start():
        b = base()
        _t(b, 1).sparsity = _sparsity(dict(traversal_order=[0, 1], dim_metadata=list(dims)))
        return b
    return start


def dim_metadata_dropped(b):
    _t(b, 1).sparsity.dimMetadata = None


def format_7(b):
    _t(b, 1).sparsity.dimMetadata[1].format = 7


def _drop_csr(field: str):
    def edit(b):
        d = _t(b, 1).sparsity.dimMetadata[1]
        setattr(d, field, None)
        setattr(d, field + "Type", 0)
    edit.__name__ = f"{field}_dropped"
    return edit


def custom_options_on_add(b):
    b.m.subgraphs[0].operators[0].customOptions = [1, 2]


def _custom_operator():
    b = base()
    oc = b.m.operatorCodes[0]
    oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.CUSTOM
    oc.customCode = "MyOp"
    return b


def large_custom_options_at_1mib(b):
    op = b.m.subgraphs[0].operators[0]
    op.largeCustomOptionsOffset, op.largeCustomOptionsSize = 1 << 20, 16


def _while(body: int):
    def start():
        b = base()
        opts = S.WhileOptionsT()
        opts.condSubgraphIndex, opts.bodySubgraphIndex = 0, body
        oc = S.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.WHILE
        oc.version = 1
        b.m.operatorCodes.append(oc)
        op = S.OperatorT()
        op.opcodeIndex = len(b.m.operatorCodes) - 1
        op.inputs, op.outputs = [0], [2]
        op.builtinOptionsType = S.BuiltinOptions.WhileOptions
        op.builtinOptions = opts
        b.m.subgraphs[0].operators.append(op)
        return b
    return start


def while_body_0_to_4(b):
    b.m.subgraphs[0].operators[1].builtinOptions.bodySubgraphIndex = 4


def no_signature_key(b):
    b.m.signatureDefs[0].signatureKey = None


def signature_subgraph_3(b):
    b.m.signatureDefs[0].subgraphIndex = 3


def signature_tensor_40(b):
    b.m.signatureDefs[0].inputs[0].tensorIndex = 40


def _metadata(name="m", data=b"x\0"):
    def start():
        b = base()
        b.add_metadata(name, data)
        return b
    return start


def metadata_name_dropped(b):
    b.m.metadata[0].name = None


def metadata_buffer_77(b):
    b.m.metadata[0].buffer = 77


def min_runtime_version_without_nul(b):
    b.m.buffers[b.m.metadata[0].buffer].data = np.frombuffer(b"1.5.0", np.uint8)


def conversion_metadata_root_offset_zero(b):
    buf = b.m.buffers[b.m.metadata[0].buffer]
    raw = bytearray(buf.data.tobytes())
    _put(raw, 0, "<I", 0)
    buf.data = np.frombuffer(bytes(raw), np.uint8)


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rule: str
    build: Callable[[bool], bytes]  # build(broken) -> the model; False gives the twin
    where: str  # the defect's location starts with this
    what: str  # a regular expression its message matches
    severity: str
    setup: "Callable | None" = None  # setup(monkeypatch, broken), for both models
    twin_clean: bool = True  # the twin has no defect at all

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.build.__name__}"


T0, T1 = "Model.subgraphs[0].tensors[0]", "Model.subgraphs[0].tensors[1]"
OP0 = "Model.subgraphs[0].operators[0]"
E, W = "error", "warning"

CASES = [
    # -- reading the file
    Case("file-empty", empty, "file", r"^m\.tflite is empty \(0 bytes\)$", E),
    Case("defect-limit", three_buffers_out_of_range, "Model.subgraphs[0].tensors[2]",
         r"^stopped after 3 defects: the file is damaged throughout$", W,
         setup=_limit_defects, twin_clean=False),
    Case("model-unreadable", tweak(unchanged), "Model",
         r"^unreadable: .*Model\.metadata: a read failed", E, setup=_fail_a_read),
    # -- structure
    Case("flatbuffer-too-short", seven_bytes, "Model",
         r"^7 bytes is too short for a flatbuffer \(at least 8 needed\)$", E),
    Case("file-identifier", patch(identifier_tfl2), "Model",
         r"^file identifier is b'TFL2' at bytes 4-7, expected b'TFL3'", E),
    Case("offset-misaligned", patch(model_offset_field_misaligned), "Model.",
         r"^offset at byte \d+ is not 4-byte aligned$", E),
    Case("offset-zero", patch(name_offset_zero), T0 + ".name",
         r"^offset is 0 \(it would point at itself\)$", E),
    Case("offset-not-signed-32-bit", patch(root_offset_negative), "Model (root offset)",
         r"^offset 2147483664 is outside the signed 32-bit range$", E),
    Case("offset-outside", patch(root_offset_past_the_end), "Model (root offset)",
         r"^target of offset \d+ \(1 bytes at byte \d+\) lies outside the flatbuffer", E),
    Case("element-offset-invalid", patch(buffers_element_zero), "Model.buffers[0]",
         r"^element offset 0 is 0 or outside the signed 32-bit range \(stricter", E),
    Case("table-misaligned", patch(root_offset_plus_2), "Model",
         r"^table at byte \d+ is not 4-byte aligned$", E),
    Case("table-outside", patch(root_at_the_last_two_bytes, _with_two_trailing_bytes),
         "Model", r"^table \(4 bytes at byte \d+\) lies outside the flatbuffer", E),
    Case("table-nesting-too-deep", blockwise_nested_5_deep,
         T1 + ".quantization.details<BlockwiseQuantization>",
         r"^tables are nested more than 4 deep$", E, setup=_limit_depth),
    Case("too-many-tables", one_table_too_many, "Model.",
         r"^the flatbuffer holds more than \d+ tables$", E, setup=_limit_tables),
    Case("vtable-outside", patch(vtable_far_after), T0,
         r"^table at byte \d+ has its vtable at byte \d+, outside the flatbuffer", E),
    Case("vtable-misaligned", patch(vtable_odd_position), T0,
         r"^vtable at byte \d+ is not 2-byte aligned$", E),
    Case("vtable-odd-size", patch(vtable_odd_size), "Model",
         r"^vtable at byte \d+ declares an odd size \d+$", E),
    Case("vtable-too-small", patch(vtable_of_2_bytes), "Model",
         r"^vtable at byte \d+ declares 2 bytes, too few to hold the table size \(stricter", E),
    Case("table-size-invalid", patch(table_of_2_bytes), "Model",
         r"^table declares 2 bytes, which is less than 4 .*\(stricter than the verifier\)$",
         E),
    Case("field-outside-table", patch(field_past_the_table), T0 + ".name",
         r"^field offset \d+ \(\+4 bytes\) lies outside the table's \d+ bytes \(stricter", E),
    Case("field-misaligned", patch(u32_field_off_by_one), "Model.version",
         r"^u32 field at byte \d+ is not 4-byte aligned$", E),
    Case("vector-misaligned", patch(shape_offset_plus_2), T0 + ".shape",
         r"^vector length at byte \d+ is not 4-byte aligned$", E),
    Case("vector-too-long", patch(_shape_count(0x3FFFFFFF)), T0 + ".shape",
         r"^vector declares 1073741823 elements of 4 bytes, more than a flatbuffer can hold",
         E),
    Case("vector-outside", patch(_shape_count(1000)), T0 + ".shape",
         r"^vector of 1000 elements of 4 bytes \(4004 bytes at byte \d+\) lies outside", E),
    Case("vector-elements-misaligned", patch(zero_points_moved_4_bytes, _zero_points_only),
         T1 + ".quantization.zero_point",
         r"^the 8-byte elements of this vector start at byte \d+, not 8-byte aligned", W),
    Case("string-not-nul-terminated", patch(name_not_terminated), T0 + ".name",
         r"^string of 1 bytes is not NUL-terminated$", E),
    Case("union-type-unknown", patch(details_type_9, _custom_quantization),
         T1 + ".quantization.details",
         r"^union type 9 is unknown to the schema \(QuantizationDetails has 3 members\)", W),
    # -- model rules
    Case("schema-version", tweak(version_2), "Model.version",
         r"^schema version is 2; the runtime accepts only 3$", E),
    Case("buffers-missing", tweak(no_buffers, _no_data), "Model.buffers",
         r"^the model has no buffers vector \(the interpreter refuses it\)$", E),
    Case("sentinel-buffer-not-empty", tweak(sentinel_with_bytes), "Model.buffers[0]",
         r"^the sentinel buffer 0 holds 2 bytes; it should be empty", W),
    Case("subgraphs-missing", tweak(no_subgraph, _without_signature), "Model.subgraphs",
         r"^the model has no subgraph \(the interpreter refuses it\)$", E),
    Case("buffer-offset-beyond-file", offset_buffer_size_1mib, "Model.buffers[1]",
         r"^offset \d+ \+ size 1048576 = \d+ lies beyond the end of the file \(\d+ bytes\)$",
         E),
    Case("builtin-code-negative", tweak(builtin_code_minus_5), "Model.operator_codes[0]",
         r"^builtin code -5 is negative$", E),
    Case("builtin-code-unknown", tweak(builtin_code_999), "Model.operator_codes[0]",
         r"^builtin code 999 is newer than this reader's schema .*older runtimes refuse it$",
         W),
    Case("custom-code-missing", tweak(custom_without_code), "Model.operator_codes[0]",
         r"^a CUSTOM operator code has no custom_code \(the interpreter refuses it\)$", E),
    Case("deprecated-builtin-code-mismatch", tweak(deprecated_code_17, _mul),
         "Model.operator_codes[0]",
         r"^deprecated_builtin_code 17 does not match builtin_code 18 ", W),
    Case("operator-version-below-1", tweak(operator_version_0), "Model.operator_codes[0]",
         r"^operator version 0 is below 1$", W),
    Case("opcode-index-out-of-range", tweak(opcode_index_5), OP0 + ".opcode_index",
         r"^opcode_index 5 is out of range: the model has 1 operator codes", E),
    Case("tensors-missing", tweak(no_tensors_vector, _empty_subgraph),
         "Model.subgraphs[0].tensors",
         r"^the subgraph has no tensors vector \(the interpreter refuses it\)$", E),
    Case("tensor-index-out-of-range", tweak(input_7), OP0 + ".inputs[1]",
         r"^input tensor 7 is out of range: the subgraph has 3 tensors$", E),
    Case("tensor-index-minus-one", tweak(output_minus_1), OP0 + ".outputs[0]",
         r"^output tensor is -1 \(no tensor\)$", W),
    Case("tensor-type-unknown", tweak(type_99), T0 + ".type",
         r"^tensor 'x' has tensor type 99, unknown to the schema", E),
    Case("tensor-shape-overflow", tweak(shape_minus_1), T0 + ".shape",
         r"^tensor 'x': the INT8 shape \[-1, 4\] has a negative dimension or needs 2\*\*64 "
         r"bytes or more", E),
    Case("tensor-buffer-out-of-range", tweak(buffer_99), T1 + ".buffer",
         r"^tensor 'c' uses buffer 99, but the model has 4 buffers$", E),
    Case("variable-tensor-with-buffer", tweak(variable_with_data), T1,
         r"^tensor 'c' is a variable tensor with a buffer \(buffer 2\)", E),
    Case("tensor-buffer-and-external-buffer", tweak(external_buffer_1), T1,
         r"^tensor 'c' has both a buffer and an external buffer, which the interpreter "
         r"refuses$", E),
    Case("constant-negative-dimension", tweak(string_shape_minus_1, _string_constant()),
         T1 + ".shape", r"^constant tensor 'c' has a negative dimension in its shape \[-1\]$",
         E),
    Case("constant-data-too-short", tweak(shape_1_8), T1,
         r"^tensor 'c': INT8 shape \[1, 8\] needs 8 bytes, buffer 2 holds 4 \(the "
         r"interpreter refuses it\)$", E),
    Case("constant-data-too-long", tweak(shape_1_2), T1,
         r"^tensor 'c': INT8 shape \[1, 2\] needs 2 bytes, buffer 2 holds 4; the rest is "
         r"ignored$", W),
    Case("string-buffer-too-short",
         tweak(_set_string_buffer(b"\1\0\0", "three_bytes"), _string_constant()), T1,
         r"^string tensor 'c': a string buffer needs at least 4 bytes, it has 3 \(stricter", E),
    Case("string-header-outside-buffer",
         tweak(_set_string_buffer(struct.pack("<4i", 4, 99, 0, 0), "count_4_in_16_bytes"),
               _string_constant()), T1,
         r"^string tensor 'c': 4 strings need a 24-byte header, the buffer has 16 bytes "
         r"\(stricter", E),
    Case("string-count-mismatch",
         tweak(_set_string_buffer(_strings([b"a", b"b"]), "two_strings"), _string_constant()),
         T1, r"^string tensor 'c': the buffer holds 2 strings, the shape \[1\] needs 1 "
             r"\(stricter", E),
    Case("string-offsets-not-rising",
         tweak(_set_string_buffer(struct.pack("<3i", 1, 12, 8) + b"ab", "offsets_falling"),
               _string_constant()), T1,
         r"^string tensor 'c': string offsets must rise from 12 to at most 14 \(stricter", E),
    Case("quantization-details-missing", tweak(details_dropped, _details("blockwise")),
         T1 + ".quantization",
         r"^tensor 'c': BlockwiseQuantization without its details table \(the interpreter "
         r"refuses it\)$", E),
    Case("quantization-details-missing", tweak(details_dropped, _details("multi_axis")),
         T1 + ".quantization", r"^tensor 'c': MultiAxisQuantization without its details "
                               r"table$", E),
    Case("quantization-scales-tensor-out-of-range",
         tweak(_set_details("scales_7", scales=7), _details("blockwise")), T1 + ".quantization",
         r"^tensor 'c': blockwise scales name tensor 7, out of range \(4 tensors\) \(stricter",
         E),
    Case("quantization-scales-tensor-out-of-range",
         tweak(_set_details("scales_minus_1", scales=-1), _details("multi_axis")),
         T1 + ".quantization",
         r"^tensor 'c': multi-axis scales name tensor -1, out of range \(4 tensors\)$", E),
    Case("quantization-zero-points-tensor-out-of-range",
         tweak(_set_details("zero_points_9", zeroPoints=9), _details("blockwise")),
         T1 + ".quantization",
         r"^tensor 'c': blockwise zero_points name tensor 9, neither -1 nor in range \(4 "
         r"tensors\)", E),
    Case("quantization-block-size-negative",
         tweak(_set_details("block_size_minus_2", blockSize=-2), _details("blockwise")),
         T1 + ".quantization", r"^tensor 'c': negative block_size$", E),
    Case("quantization-dimensions-invalid",
         tweak(_set_details("dimensions_5", quantizedDimensions=[5]), _details("multi_axis")),
         T1 + ".quantization",
         r"^tensor 'c': quantized_dimensions \[5\] must be non-empty and each in \[0, 2\)$", E),
    Case("quantization-dimensions-invalid",
         tweak(_set_details("dimensions_empty", quantizedDimensions=[]),
               _details("multi_axis")), T1 + ".quantization",
         r"^tensor 'c': quantized_dimensions \[\] must be non-empty", E),
    Case("quantization-zero-point-missing", tweak(_set_quant("no_zero_point", zeroPoint=None)),
         T1 + ".quantization",
         r"^tensor 'c' has 1 scales but no zero_point \(the interpreter refuses it\)$", E),
    Case("quantization-one-zero-point",
         tweak(_set_quant("one_zero_point", zeroPoint=[0]), _per_channel([1, 4], 4, 1)),
         T1 + ".quantization",
         r"^tensor 'c' has 4 scales and one zero point; the interpreter refuses this, TFLite "
         r"Micro applies the zero point to every channel$", W),
    Case("quantization-zero-point-count", tweak(_set_quant("two_zero_points", zeroPoint=[0, 0])),
         T1 + ".quantization",
         r"^tensor 'c' has 1 scales and 2 zero points; the interpreter requires as many", E),
    Case("quantization-dimension-negative",
         tweak(_set_quant("dimension_minus_1", quantizedDimension=-1)), T1 + ".quantization",
         r"^tensor 'c': quantized_dimension -1 is negative$", E),
    Case("quantization-dimension-out-of-range",
         tweak(_set_quant("dimension_2", quantizedDimension=2), _per_channel([1, 4], 4, 1)),
         T1 + ".quantization",
         r"^tensor 'c' of shape \[1, 4\] has quantized_dimension 2, outside \[0, 2\) \(the "
         r"interpreter refuses it\)$", E),
    Case("quantization-dimension-out-of-range",  # rank 2: the axis is ambiguous
         tweak(_set_quant("dimension_3_of_rank_2", quantizedDimension=3),
               _per_channel([2, 2], 2, 0)), T1 + ".quantization",
         r"^tensor 'c' of shape \[2, 2\] has quantized_dimension 3, outside \[0, 2\)", E),
    Case("quantization-dimension-rank-1",
         tweak(_set_quant("dimension_3_of_rank_1", quantizedDimension=3),
               _per_channel([4], 4, 0)), T1 + ".quantization",
         r"^tensor 'c' of shape \[4\] has quantized_dimension 3, outside \[0, 1\); the "
         r"interpreter refuses this, TFLite Micro ignores it, and the 4 scale\(s\) can only "
         r"apply along axis 0$", W),
    Case("quantization-per-channel-scalar",
         tweak(_set_quant("four_scales", scale=[0.5] * 4, zeroPoint=[0] * 4), _scalar_constant),
         T1 + ".quantization",
         r"^tensor 'c' is a scalar with 4 scales \(the interpreter accepts it; they cannot "
         r"apply to one value\)$", W),
    Case("quantization-scale-count",
         tweak(_set_quant("three_scales", scale=[0.5] * 3, zeroPoint=[0] * 3),
               _per_channel([1, 4], 4, 1)), T1 + ".quantization",
         r"^tensor 'c' of shape \[1, 4\] has 3 scales; dimension 1 has 4 entries", E),
    Case("quantization-scale-not-finite", tweak(_set_quant("scale_nan", scale=[math.nan])),
         T1 + ".quantization",
         r"^tensor 'c' has a scale that is negative or not finite \(nan\) \(stricter than the "
         r"interpreter", E),
    Case("quantization-scale-not-finite",
         tweak(_set_quant("scale_inf", scale=[0.5, -math.inf, 0.5, 0.5]),
               _per_channel([1, 4], 4, 1)), T1 + ".quantization",
         r"^tensor 'c' has a scale that is negative or not finite \(-inf\)", E),
    Case("quantization-scale-negative", tweak(_set_quant("scale_minus_half", scale=[-0.5])),
         T1 + ".quantization",
         r"^tensor 'c' has a scale that is negative or not finite \(-0\.5\) \(stricter", E),
    Case("quantization-scale-zero", tweak(_set_quant("scale_0", scale=[0.0])),
         T1 + ".quantization", r"^tensor 'c' has a zero scale: every value dequantizes to 0$",
         W),
    Case("quantization-zero-point-beyond-int32",
         tweak(_set_quant("zero_point_2_to_33", zeroPoint=[1 << 33])), T1 + ".quantization",
         r"^tensor 'c' has zero points outside the int32 range, which the runtime truncates$",
         W),
    Case("sparsity-incomplete",
         tweak(dim_metadata_dropped, _sparse(("DENSE", 1), ("DENSE", 4))), T1 + ".sparsity",
         r"^tensor 'c': sparsity needs both traversal_order and dim_metadata \(the "
         r"interpreter refuses it\)$", E),
    Case("sparsity-format-unknown", tweak(format_7, _sparse(("DENSE", 1), ("DENSE", 4))),
         T1 + ".sparsity.dim_metadata[1]", r"^tensor 'c': unknown dimension format 7$", E),
    Case("sparsity-csr-vector-missing",
         tweak(_drop_csr("arraySegments"), _sparse(("DENSE", 1), ("CSR", [0, 4], [0, 1, 2, 3]))),
         T1 + ".sparsity.dim_metadata[1].array_segments",
         r"^tensor 'c': a SPARSE_CSR dimension needs array_segments \(the interpreter "
         r"refuses it\)$", E),
    Case("sparsity-csr-vector-missing",
         tweak(_drop_csr("arrayIndices"), _sparse(("DENSE", 1), ("CSR", [0, 4], [0, 1, 2, 3]))),
         T1 + ".sparsity.dim_metadata[1].array_indices",
         r"^tensor 'c': a SPARSE_CSR dimension needs array_indices", E),
    Case("builtin-operator-custom-options", tweak(custom_options_on_add), OP0,
         r"^a builtin operator carries custom options \(the runtime reports and ignores "
         r"them\)$", W),
    Case("large-custom-options-beyond-file",
         tweak(large_custom_options_at_1mib, _custom_operator), OP0,
         r"^large custom options at offset 1048576 \+ size 16 lie beyond the end of the file "
         r"\(\d+ bytes\)$", E),
    Case("options-subgraph-out-of-range", tweak(while_body_0_to_4, _while(0)),
         "Model.subgraphs[0].operators[1].WhileOptions.body_subgraph_index",
         r"^names subgraph 4, but the model has 1 subgraphs \(stricter", E),
    Case("signature-key-missing", tweak(no_signature_key), "Model.signature_defs[0]",
         r"^a SignatureDef has no signature_key \(the interpreter refuses it\)$", E),
    Case("signature-subgraph-out-of-range", tweak(signature_subgraph_3),
         "Model.signature_defs[0]",
         r"^subgraph_index 3 is out of range: the model has 1 subgraphs \(stricter", E),
    Case("signature-tensor-out-of-range", tweak(signature_tensor_40),
         "Model.signature_defs[0].inputs[0]",
         r"^'x' names tensor 40, but subgraph 0 has 3 tensors \(stricter", E),
    Case("metadata-name-missing", tweak(metadata_name_dropped, _metadata()),
         "Model.metadata[0]", r"^a metadata entry has no name \(the runtime skips it\)$", W),
    Case("metadata-buffer-out-of-range", tweak(metadata_buffer_77, _metadata("dangling")),
         "Model.metadata[0]",
         r"^metadata 'dangling' names buffer 77, but the model has 5 buffers \(the runtime "
         r"skips it\)$", W),
    Case("min-runtime-version-not-terminated",
         tweak(min_runtime_version_without_nul, _metadata("min_runtime_version", b"1.5.0\0")),
         "Model.metadata[0]", r"^min_runtime_version is not NUL-terminated", W),
    Case("conversion-metadata-structure",
         tweak(conversion_metadata_root_offset_zero,
               _metadata("CONVERSION_METADATA", conversion_metadata_bytes())),
         "ConversionMetadata (root offset)", r"^offset is 0 \(it would point at itself\)$", W),
]


def _verify(data: bytes, tmp_path) -> list:
    """verify() of the file; for data that is not empty, of the bytes too (the same
    defects)."""
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    defects = V.verify(path)
    if data:
        assert V.verify(data) == defects
    return defects


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case, tmp_path):
    got = {}
    for broken in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            if case.setup is not None:
                case.setup(mp, broken)
            got[broken] = _verify(case.build(broken), tmp_path)
    twin, defects = got[False], got[True]
    for d in twin + defects:  # every defect names a rule, with that rule's severity
        assert d.rule in V.RULES and d.severity == V.RULES[d.rule][0], d
    assert case.rule not in {d.rule for d in twin}, [str(d) for d in twin]
    if case.twin_clean:
        assert twin == [], [str(d) for d in twin]
    mine = [d for d in defects if d.rule == case.rule]
    assert mine, f"no {case.rule} defect: {[str(d) for d in defects]}"
    d = mine[0]
    assert d.where.startswith(case.where), str(d)
    assert re.search(case.what, d.what), str(d)
    assert d.severity == case.severity
    # the broken model adds exactly this rule to what its twin reports
    assert {x.rule for x in defects} - {x.rule for x in twin} == {case.rule}, \
        [str(x) for x in defects]
    if case.severity == W:  # a warning does not decide whether the model is sound
        assert bool(V.errors_of(defects)) == bool(V.errors_of(twin))


# -- the table covers the rules, and verify.py names only rules of the table ----------------


def test_every_rule_has_a_case_and_every_case_a_rule():
    named = {c.rule for c in CASES}
    assert set(V.RULES) - named == set(), "rules without a case"
    assert named - set(V.RULES) == set(), "cases of unknown rules"


def test_every_case_states_the_severity_of_its_rule():
    for c in CASES:
        assert c.severity == V.RULES[c.rule][0], c.id


_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
#: words of verify.py's messages that look like rule identifiers
NOT_RULES = {"multi-axis"}


def test_verify_names_exactly_the_rules_of_its_table():
    """Every rule identifier written in verify.py (outside the table) is in RULES, and
    every rule of RULES is written somewhere: no defect names an unknown rule, and no
    rule of the table is dead."""
    tree = ast.parse(Path(V.__file__).read_text())
    table = None
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "RULES":
            table = node.value
    assert isinstance(table, ast.Dict)
    in_table = {id(k) for k in table.keys}
    written = {n.value for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and _KEBAB.match(n.value) and id(n) not in in_table} - NOT_RULES
    # the rules verify shares with the reader are stated once, where the reader has them
    for module in (quantization, values):
        found = _finding_rules(Path(module.__file__).read_text())
        assert found, module.__name__
        written |= found
    assert written - set(V.RULES) == set(), "identifiers not in RULES"
    assert set(V.RULES) - written == set(), "rules never reported"


def _finding_rules(source: str) -> "set[str]":
    """Rule identifiers a module gives its findings: the first argument of every
    ``Finding(...)`` call and the first element of every ``("rule", text)`` pair."""
    tree = ast.parse(source)
    out = set()
    for n in ast.walk(tree):
        first = None
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Finding" and n.args:
            first = n.args[0]
        elif isinstance(n, ast.Tuple) and len(n.elts) == 2:
            first = n.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                and _KEBAB.match(first.value):
            out.add(first.value)
    return out


def test_rules_are_well_formed():
    for rule, (severity, description) in V.RULES.items():
        assert _KEBAB.match(rule), rule
        assert severity in (E, W), rule
        assert description and "\n" not in description and "|" not in description, rule


def test_an_unknown_rule_cannot_be_reported():
    with pytest.raises(KeyError):
        V._defect("no-such-rule", "Model", "text")


# -- docs/cli.md lists the rules -----------------------------------------------------------------

DOC_START = "<!-- rules: generated from tflite_weights.verify.RULES -->"
DOC_END = "<!-- end of rules -->"


def rules_markdown() -> str:
    lines = ["| rule | severity | what it requires |", "| --- | --- | --- |"]
    lines += [f"| `{rule}` | {severity} | {description} |"
              for rule, (severity, description) in V.RULES.items()]
    return "\n".join(lines)


def _doc_parts(text: str) -> "tuple[str, str, str]":
    head, sep, rest = text.partition(DOC_START)
    assert sep, f"{DOC_START} is missing from docs/cli.md"
    body, sep, tail = rest.partition(DOC_END)
    assert sep, f"{DOC_END} is missing from docs/cli.md"
    return head, body, tail


def test_cli_doc_lists_every_rule_as_the_table_says():
    _, body, _ = _doc_parts(CLI_DOC.read_text())
    assert body.strip() == rules_markdown(), \
        "docs/cli.md is out of date: run python tests/test_verify_rules.py"


def test_cli_doc_puts_the_rules_under_what_is_checked():
    text = CLI_DOC.read_text()
    section = text.split("### What is checked", 1)[1].split("\n### ", 1)[0]
    assert DOC_START in section and DOC_END in section


if __name__ == "__main__":  # rewrite the rules table of docs/cli.md from RULES
    head, _, tail = _doc_parts(CLI_DOC.read_text())
    CLI_DOC.write_text(f"{head}{DOC_START}\n\n{rules_markdown()}\n\n{DOC_END}{tail}")
    sys.exit(0)
