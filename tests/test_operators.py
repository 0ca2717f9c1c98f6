"""Operators, their options, the graph index and weights by role.

Every operator of every corpus model is compared with the schema's own
generated bindings (``ai_edge_litert.schema_py_generated``): opcodes, custom
codes, versions, tensor lists, option types and every option field.  Synthetic
models cover the cases the corpus lacks.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tflite_weights
from tflite_weights import operators
from tflite_weights.format import schema as _schema
from tflite_weights.errors import InvalidModelError

from tests.support.builders import S, ModelBuilder, add_opcode

from tests.support.paths import CORPUS  # noqa: E402
MODELS = sorted(f for f in os.listdir(CORPUS) if not f.endswith(".md")) \
    if os.path.isdir(CORPUS) else []
READABLE = [f for f in MODELS if f != "litert_invalid_model.bin"]

needs_corpus = pytest.mark.skipif(not MODELS, reason="../shared/corpus is absent")


def _reverse(enum_cls) -> dict:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


OP_NAMES = _reverse(S.BuiltinOperator)
OPTION_NAMES = _reverse(S.BuiltinOptions)
OPTION2_NAMES = _reverse(S.BuiltinOptions2)


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _np_tuple(v):
    return () if isinstance(v, int) else tuple(int(x) for x in v)


def _generated_field(obj, field):
    """One field of a generated options object, in our representation."""
    f = field
    getter = _camel(f.name)
    if f.kind == "scalar":
        v = getattr(obj, getter)()
        if f.elem == "bool":
            return bool(v)
        if f.enum is not None:
            return _reverse(getattr(S, f.enum)).get(v, f"<{v}>")
        return v
    if f.kind == "vector":
        if getattr(obj, getter + "IsNone")():
            return None
        v = getattr(obj, getter + "AsNumpy")()
        v = [] if isinstance(v, int) else v.tolist()
        if f.elem == "bool":
            return [bool(x) for x in v]
        if f.enum is not None:
            names = _reverse(getattr(S, f.enum.rstrip("]")))
            return [names[x] for x in v]
        return v
    if f.kind == "string":
        v = getattr(obj, getter)()
        return None if v is None else v.decode()
    raise AssertionError(f"no comparison for {f.kind}")


def _operator_mismatches(path):
    """Every difference between our operators and the generated bindings' view."""
    data = open(path, "rb").read()
    g = S.Model.GetRootAs(data, 0)
    model = tflite_weights.open(path)
    problems = []
    assert len(model.subgraphs) == g.SubgraphsLength()
    for si in range(g.SubgraphsLength()):
        gsg = g.Subgraphs(si)
        ops = model.subgraphs[si].operators
        assert len(ops) == gsg.OperatorsLength()
        for oi in range(gsg.OperatorsLength()):
            gop, op = gsg.Operators(oi), ops[oi]
            where = f"subgraph {si} operator {oi}"
            oc = g.OperatorCodes(gop.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            cc = oc.CustomCode()
            expect = {
                "opcode": OP_NAMES.get(code, f"<{code}>"),
                "opcode_code": code,
                "custom_code": None if cc is None else cc.decode(),
                "version": oc.Version(),
                "inputs": _np_tuple(gop.InputsAsNumpy()),
                "outputs": _np_tuple(gop.OutputsAsNumpy()),
                "intermediates": _np_tuple(gop.IntermediatesAsNumpy()),
                "custom_options": (None if gop.CustomOptionsIsNone()
                                   else gop.CustomOptionsAsNumpy().tobytes()),
            }
            if gop.BuiltinOptionsType():
                otype = OPTION_NAMES[gop.BuiltinOptionsType()]
                table = gop.BuiltinOptions()
            elif gop.BuiltinOptions2Type():
                otype = OPTION2_NAMES[gop.BuiltinOptions2Type()]
                table = gop.BuiltinOptions2()
            else:
                otype, table = None, None
            expect["options_type"] = otype
            for key, value in expect.items():
                got = getattr(op, key)
                if got != value:
                    problems.append(f"{where} {key}: ours {got!r}, generated {value!r}")
            if table is not None:
                obj = getattr(S, otype)()
                obj.Init(table.Bytes, table.Pos)
                ours = op.options
                for f in _schema.TABLES[otype].fields:
                    value = _generated_field(obj, f)
                    if ours[f.name] != value:
                        problems.append(f"{where} {otype}.{f.name}: ours {ours[f.name]!r}, "
                                        f"generated {value!r}")
    return problems


@needs_corpus
@pytest.mark.parametrize("name", READABLE)
def test_corpus_operators_match_generated_bindings(name):
    assert _operator_mismatches(os.path.join(CORPUS, name)) == []


@needs_corpus
def test_corpus_conv_and_fc_options_field_by_field():
    """Conv2D, DepthwiseConv2D, FullyConnected and TransposeConv options read through
    the generated option classes, field by field, for every such operator."""
    readers = {
        "Conv2DOptions": lambda o: dict(
            padding=o.Padding(), stride_w=o.StrideW(), stride_h=o.StrideH(),
            fused_activation_function=o.FusedActivationFunction(),
            dilation_w_factor=o.DilationWFactor(), dilation_h_factor=o.DilationHFactor()),
        "DepthwiseConv2DOptions": lambda o: dict(
            padding=o.Padding(), stride_w=o.StrideW(), stride_h=o.StrideH(),
            depth_multiplier=o.DepthMultiplier(),
            fused_activation_function=o.FusedActivationFunction(),
            dilation_w_factor=o.DilationWFactor(), dilation_h_factor=o.DilationHFactor()),
        "FullyConnectedOptions": lambda o: dict(
            fused_activation_function=o.FusedActivationFunction(),
            weights_format=o.WeightsFormat(), keep_num_dims=o.KeepNumDims(),
            asymmetric_quantize_inputs=o.AsymmetricQuantizeInputs()),
        "TransposeConvOptions": lambda o: dict(
            padding=o.Padding(), stride_w=o.StrideW(), stride_h=o.StrideH(),
            fused_activation_function=o.FusedActivationFunction()),
    }
    enums = {"padding": S.Padding, "fused_activation_function": S.ActivationFunctionType,
             "weights_format": S.FullyConnectedOptionsWeightsFormat}
    seen = set()
    for name in READABLE:
        data = open(os.path.join(CORPUS, name), "rb").read()
        g = S.Model.GetRootAs(data, 0)
        model = tflite_weights.open(data)
        for si in range(g.SubgraphsLength()):
            for oi in range(g.Subgraphs(si).OperatorsLength()):
                gop = g.Subgraphs(si).Operators(oi)
                otype = OPTION_NAMES.get(gop.BuiltinOptionsType())
                if otype not in readers:
                    continue
                obj = getattr(S, otype)()
                obj.Init(gop.BuiltinOptions().Bytes, gop.BuiltinOptions().Pos)
                expect = readers[otype](obj)
                for k, e in enums.items():
                    if k in expect:
                        expect[k] = _reverse(e)[expect[k]]
                ours = model.subgraphs[si].operators[oi].options
                assert {k: ours[k] for k in expect} == expect, (name, si, oi)
                seen.add(otype)
    assert {"Conv2DOptions", "DepthwiseConv2DOptions", "FullyConnectedOptions"} <= seen


@needs_corpus
def test_corpus_lstm_roles_match_the_tensor_names_the_file_gives():
    """litert_lstm.bin names each LSTM input after its role ("input2forget_weights2",
    "rec2cell_weights7", "proj_bias17", "cell_ln_weights22"): the roles must agree."""
    model = tflite_weights.open(os.path.join(CORPUS, "litert_lstm.bin"))
    (op,) = model.subgraphs[0].operators
    spelled = {}
    for role, t in op.roles.items():
        s = (role.replace("input_to_", "input2").replace("recurrent_to_", "rec2")
             .replace("projection_", "proj_").replace("_layer_norm_coefficients", "_ln_weights"))
        s = s.replace("input_ln", "input_gate_ln").replace("forget_ln", "forget_gate_ln") \
             .replace("output_ln", "output_gate_ln")
        spelled[role] = (s, t.name)
    for role, (s, tname) in spelled.items():
        assert re.fullmatch(re.escape(s) + r"\d+", tname), (role, tname)
    assert len(spelled) == 18  # 24 inputs less input, 3 peepholes (-1) and 2 states
    assert {r for _, r, _ in model.weights()} == set(spelled)


@needs_corpus
def test_corpus_weights_are_constants_and_roles_are_known():
    for name in READABLE:
        model = tflite_weights.open(os.path.join(CORPUS, name))
        for op, role, t in model.weights():
            assert role in operators.weight_roles(op).values()
            assert t.has_data, (name, op, role)
            assert t.subgraph == op.subgraph


@needs_corpus
def test_corpus_producers_and_consumers_agree_with_operator_lists():
    for name in READABLE:
        model = tflite_weights.open(os.path.join(CORPUS, name))
        for sg in model.subgraphs:
            for t in sg.tensors:
                cons = {op.index for op in sg.operators if t.index in op.inputs}
                prod = {op.index for op in sg.operators if t.index in op.outputs}
                assert [op.index for op in t.consumers] == sorted(cons)
                assert [op.index for op in t.producers] == sorted(prod)


# -- synthetic models ---------------------------------------------------------------------


def _fc_model(bias=True):
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1, 3])
    w = sg.tensor("w", "FLOAT32", [2, 3], np.ones((2, 3), np.float32))
    bias_i = sg.tensor("b", "FLOAT32", [2], np.zeros(2, np.float32)) if bias else -1
    y = sg.tensor("y", "FLOAT32", [1, 2])
    opt = S.FullyConnectedOptionsT()
    opt.fusedActivationFunction = S.ActivationFunctionType.RELU6
    opt.keepNumDims = True
    sg.op("FULLY_CONNECTED", [x, w, bias_i], [y], options=opt,
          options_type=S.BuiltinOptions.FullyConnectedOptions, version=9)
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    return b


def test_fully_connected_without_bias_keeps_minus_one():
    model = tflite_weights.open(_fc_model(bias=False).finish())
    (op,) = model.subgraphs[0].operators
    assert op.opcode == "FULLY_CONNECTED" and op.opcode_code == 9 and op.version == 9
    assert op.inputs == (0, 1, -1)
    x, w, none = op.input_tensors
    assert (x.name, w.name, none) == ("x", "w", None)
    assert op.options_type == "FullyConnectedOptions"
    assert op.options["fused_activation_function"] == "RELU6"
    assert op.options["keep_num_dims"] is True
    assert op.options["weights_format"] == "DEFAULT"
    assert op.custom_code is None and op.custom_options is None
    assert op.roles == {"weights": w}
    assert [(r, t.name) for _, r, t in model.weights()] == [("weights", "w")]


def test_opcodes_above_127_use_builtin_code_and_placeholder_byte():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [4])
    y = sg.tensor("y", "FLOAT32", [4])
    names = ["CUMSUM", "GELU", "STABLEHLO_CASE", "RIGHT_SHIFT"]
    for n in names:
        sg.op(n, [x], [y])
    data = b.finish()
    g = S.Model.GetRootAs(data, 0)
    assert {g.OperatorCodes(i).DeprecatedBuiltinCode() for i in range(4)} == {127}
    ops = tflite_weights.open(data).subgraphs[0].operators
    assert [op.opcode for op in ops] == names
    assert [op.opcode_code for op in ops] == [S.BuiltinOperator.__dict__[n] for n in names]


def test_old_file_with_only_the_deprecated_code():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1, 4, 4, 1])
    f = sg.tensor("f", "FLOAT32", [1, 1, 1, 1], np.ones(4, np.float32)[:1])
    y = sg.tensor("y", "FLOAT32", [1, 4, 4, 1])
    sg.op("ADD", [x, f], [y])
    sg.sg.operators[0].opcodeIndex = add_opcode(b, 0, 3, version=2)  # CONV_2D, old style
    data = b.finish()
    oc = S.Model.GetRootAs(data, 0).OperatorCodes(1)
    assert (oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == (0, 3)
    (op,) = tflite_weights.open(data).subgraphs[0].operators
    assert (op.opcode, op.opcode_code, op.version) == ("CONV_2D", 3, 2)
    assert op.operator_code.builtin_code == 0
    assert op.operator_code.deprecated_builtin_code == 3


def test_unknown_opcode_is_shown_by_number():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1])
    sg.op("ADD", [x], [x])
    sg.sg.operators[0].opcodeIndex = add_opcode(b, 999, 127)
    (op,) = tflite_weights.open(b.finish()).subgraphs[0].operators
    assert (op.opcode, op.opcode_code) == ("<999>", 999)
    assert "<999>" in repr(op)


def test_custom_operator_code_and_options():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [2])
    y = sg.tensor("y", "FLOAT32", [2])
    sg.op("CUSTOM", [x], [y], custom_code="MyOp", custom_options=b"\x01\x02\x03", version=3)
    (op,) = tflite_weights.open(b.finish()).subgraphs[0].operators
    assert (op.opcode, op.custom_code, op.version) == ("CUSTOM", "MyOp", 3)
    assert op.custom_options == b"\x01\x02\x03"
    assert op.custom_options_format == "FLEXBUFFERS"
    assert op.options_type is None and op.options == {}
    assert "'MyOp'" in repr(op)


def _large_custom_options_model(blob: bytes, size_delta=0):
    def build(offset):
        b = ModelBuilder()
        sg = b.subgraph()
        x = sg.tensor("x", "FLOAT32", [2])
        sg.op("CUSTOM", [x], [x], custom_code="Big")
        o = sg.sg.operators[0]
        o.largeCustomOptionsOffset = offset
        o.largeCustomOptionsSize = len(blob) + size_delta
        return b.finish()
    first = build(0xFFFFFFFF)
    pad = (-len(first)) % 16
    data = build(len(first) + pad)
    assert len(data) == len(first)
    return data + b"\0" * pad + blob


def test_large_custom_options_are_read_from_the_file_offset():
    blob = bytes(range(40))
    data = _large_custom_options_model(blob)
    (op,) = tflite_weights.open(data).subgraphs[0].operators
    assert op.large_custom_options_offset == len(data) - len(blob)
    assert op.custom_options == blob


def test_large_custom_options_beyond_the_file_raise_when_read():
    data = _large_custom_options_model(b"x" * 8, size_delta=100)
    model = tflite_weights.open(data)
    (op,) = model.subgraphs[0].operators
    with pytest.raises(InvalidModelError, match=r"operators\[0\]: large_custom_options_offset"):
        op.custom_options


def test_builtin_options_2_are_decoded():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [2])
    opt = S.StableHLOCompositeOptionsT()
    opt.name = "odml.rms_norm"
    opt.decompositionSubgraphIndex = 1
    opt.compositeAttributes = [5, 6]
    opt.version = 2
    sg.op("STABLEHLO_COMPOSITE", [x], [x])
    o = sg.sg.operators[0]
    o.builtinOptions2Type = S.BuiltinOptions2.StableHLOCompositeOptions
    o.builtinOptions2 = opt
    (op,) = tflite_weights.open(b.finish()).subgraphs[0].operators
    assert op.opcode == "STABLEHLO_COMPOSITE"
    assert op.options_type == "StableHLOCompositeOptions"
    assert op.options == {"name": "odml.rms_norm", "decomposition_subgraph_index": 1,
                          "composite_attributes": [5, 6],
                          "composite_attributes_format": "FLEXBUFFERS", "version": 2}


def test_bad_opcode_index_raises_only_when_used():
    b = _fc_model()
    b.m.subgraphs[0].operators[0].opcodeIndex = 7
    model = tflite_weights.open(b.finish())
    (op,) = model.subgraphs[0].operators
    assert op.inputs == (0, 1, 2)  # the rest of the operator still reads
    with pytest.raises(InvalidModelError,
                       match=r"operators\[0\]\.opcode_index is 7, but the model has 1 "
                             r"operator codes"):
        op.opcode
    assert "unreadable" in repr(op)
    with pytest.raises(InvalidModelError):
        list(model.weights())


def test_bad_input_index_raises_only_when_used():
    b = _fc_model()
    b.m.subgraphs[0].operators[0].inputs = [0, 1, 17]
    model = tflite_weights.open(b.finish())
    (op,) = model.subgraphs[0].operators
    assert op.inputs == (0, 1, 17) and op.opcode == "FULLY_CONNECTED"
    with pytest.raises(InvalidModelError,
                       match=r"inputs\[2\] is tensor 17, but subgraph 0 has 4 tensors"):
        op.input_tensors
    assert op.output_tensors[0].name == "y"
    # the graph index ignores an index that names no tensor
    assert [o.index for o in model.subgraphs[0].tensors[0].consumers] == [0]


def test_weights_through_dequantize_and_densify_report_the_stored_constant():
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1, 4])
    w16 = sg.tensor("w16", "FLOAT16", [3, 4], np.arange(12, dtype=np.float16))
    w32 = sg.tensor("w32", "FLOAT32", [3, 4])
    bq = sg.tensor("bq", "INT8", [3], np.array([1, 2, 3], np.int8),
                   quant=dict(scale=[0.5], zero_point=[0]))
    bs = sg.tensor("bs", "INT8", [3])
    bd = sg.tensor("bd", "FLOAT32", [3])
    y = sg.tensor("y", "FLOAT32", [1, 3])
    sg.op("DEQUANTIZE", [w16], [w32])
    sg.op("DENSIFY", [bq], [bs])
    sg.op("DEQUANTIZE", [bs], [bd])
    sg.op("FULLY_CONNECTED", [x, w32, bd], [y])
    model = tflite_weights.open(b.finish())
    got = [(op.opcode, role, t.name) for op, role, t in model.weights()]
    assert got == [("FULLY_CONNECTED", "weights", "w16"), ("FULLY_CONNECTED", "bias", "bq")]
    fc = model.subgraphs[0].operators[3]
    assert {r: t.name for r, t in fc.roles.items()} == {"weights": "w32", "bias": "bd"}
    assert [op.opcode for op in model["w32"].producers] == ["DEQUANTIZE"]


def test_non_constant_role_inputs_are_not_weights():
    b = ModelBuilder()
    sg = b.subgraph()
    a = sg.tensor("a", "FLOAT32", [2, 2])
    c = sg.tensor("c", "FLOAT32", [2, 2])
    w = sg.tensor("w", "FLOAT32", [2, 2], np.eye(2, dtype=np.float32))
    y = sg.tensor("y", "FLOAT32", [2, 2])
    z = sg.tensor("z", "FLOAT32", [2, 2])
    sg.op("BATCH_MATMUL", [a, c], [y])        # rhs computed: no weight
    sg.op("BATCH_MATMUL", [y, w], [z])        # constant rhs
    sg.op("GATHER", [w, a], [y])              # constant params
    model = tflite_weights.open(b.finish())
    got = [(op.index, role, t.name) for op, role, t in model.weights()]
    assert got == [(1, "weights", "w"), (2, "params", "w")]


@pytest.mark.parametrize("opcode,roles", [
    ("CONV_2D", {1: "filter", 2: "bias"}),
    ("DEPTHWISE_CONV_2D", {1: "filter", 2: "bias"}),
    ("CONV_3D", {1: "filter", 2: "bias"}),
    ("CONV_3D_TRANSPOSE", {1: "filter", 3: "bias"}),
    ("TRANSPOSE_CONV", {1: "weights", 3: "bias"}),
    ("EMBEDDING_LOOKUP", {1: "table"}),
    ("SVDF", {1: "weights_feature", 2: "weights_time", 3: "bias"}),
])
def test_role_positions_per_opcode(opcode, roles):
    b = ModelBuilder()
    sg = b.subgraph()
    n = max(roles) + 1
    idx = [sg.tensor(f"t{i}", "FLOAT32", [2], np.ones(2, np.float32)) for i in range(n)]
    out = sg.tensor("out", "FLOAT32", [2])
    sg.op(opcode, idx, [out])
    model = tflite_weights.open(b.finish())
    got = {t.name: role for _, role, t in model.weights()}
    assert got == {f"t{p}": r for p, r in roles.items()}


def test_lstm_basic_kernel_roles():
    b = ModelBuilder()
    sg = b.subgraph()
    idx = [sg.tensor(f"t{i}", "FLOAT32", [2], np.ones(2, np.float32)) for i in range(5)]
    opt = S.LSTMOptionsT()
    opt.kernelType = S.LSTMKernelType.BASIC
    sg.op("LSTM", idx, [idx[0]], options=opt, options_type=S.BuiltinOptions.LSTMOptions)
    model = tflite_weights.open(b.finish())
    assert {t.name: r for _, r, t in model.weights()} == {"t2": "weights", "t3": "bias"}


def test_bidirectional_lstm_roles_cover_both_directions_and_aux():
    roles = operators.WEIGHT_ROLES["BIDIRECTIONAL_SEQUENCE_LSTM"]
    assert roles[2] == "fw_input_to_forget_weights" and roles[19] == "bw_input_to_forget_weights"
    assert roles[34] == "bw_projection_bias" and roles[47] == "bw_aux_input_to_output_weights"
    assert not {0, 35, 36, 37, 38, 39} & set(roles)  # input, states, aux input


def test_graph_index_is_built_once_per_subgraph():
    model = tflite_weights.open(_fc_model().finish())
    sg = model.subgraphs[0]
    sg.tensors[0].consumers
    index = operators._graph(sg)
    sg.tensors[3].producers
    assert operators._graph(sg) is index
    assert [op.index for op in sg.tensors[3].producers] == [0]
    assert sg.tensors[3].consumers == ()


def test_operators_are_not_decoded_until_asked():
    model = tflite_weights.open(_fc_model().finish())
    ops = model.subgraphs[0].operators
    assert "operator" not in model._state.decoded()
    assert ops[0].opcode == "FULLY_CONNECTED"
    assert "operator" in model._state.decoded()


def test_operator_codes_lists_every_entry():
    b = _fc_model()
    add_opcode(b, 0, 3)
    codes = tflite_weights.open(b.finish()).operator_codes
    assert [c.name for c in codes] == ["FULLY_CONNECTED", "CONV_2D"]


# -- converter fixtures (fixtures/, when present) ------------------------------------------

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
FIXTURE_MODELS = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".tflite")) \
    if os.path.isdir(FIXTURES) else []
needs_fixtures = pytest.mark.skipif(not FIXTURE_MODELS, reason="fixtures/ is absent")


@needs_fixtures
@pytest.mark.parametrize("name", FIXTURE_MODELS)
def test_fixture_operators_match_generated_bindings(name):
    assert _operator_mismatches(os.path.join(FIXTURES, name)) == []


@pytest.mark.skipif("float16.tflite" not in FIXTURE_MODELS, reason="fixture absent")
def test_fixture_float16_weights_are_the_stored_float16_constants():
    """Optimize.DEFAULT with float16: FLOAT16 constant -> DEQUANTIZE -> consumer."""
    model = tflite_weights.open(os.path.join(FIXTURES, "float16.tflite"))
    weights = list(model.weights())
    assert weights and {t.type for _, _, t in weights} == {"FLOAT16"}
    for op, role, t in weights:
        wired = op.roles[role]
        assert wired is not t and not wired.has_data
        assert [p.opcode for p in wired.producers] == ["DEQUANTIZE"]


@pytest.mark.skipif("sparse.tflite" not in FIXTURE_MODELS, reason="fixture absent")
def test_fixture_sparse_weights_are_the_stored_sparse_constants():
    """EXPERIMENTAL_SPARSITY: sparse constant -> DENSIFY -> FULLY_CONNECTED."""
    model = tflite_weights.open(os.path.join(FIXTURES, "sparse.tflite"))
    sparse = [(op, t) for op, role, t in model.weights() if role == "weights" and t.is_sparse]
    assert sparse
    for op, t in sparse:
        assert [p.opcode for p in op.roles["weights"].producers] == ["DENSIFY"]


# -- every options table of the schema, written by the generated object API -------------

_SCALAR_SAMPLES = {"bool": True, "i8": 3, "u8": 200, "i16": -300, "u16": 60000,
                   "i32": -123456, "u32": 4000000000, "i64": -(2 ** 40), "u64": 2 ** 63 + 7,
                   "f32": 0.5, "f64": 0.25}
_VECTOR_SAMPLES = {"bool": [True, False, True], "f32": [0.5, -1.25], "f64": [0.25],
                   "u8": [1, 255], "i8": [-1, 2], "i32": [1, -2, 3], "u32": [7, 4000000000],
                   "i64": [-(2 ** 40), 5], "u16": [1, 65535], "i16": [-5, 5],
                   "u64": [2 ** 63 + 1]}


def _lower_camel(name):
    c = _camel(name)
    return c[:1].lower() + c[1:]


def _filled_options(member):
    obj = getattr(S, member + "T")()
    for f in _schema.TABLES[member].fields:
        attr = _lower_camel(f.name)
        if f.kind == "scalar":
            v = 1 if f.enum is not None else _SCALAR_SAMPLES[f.elem]
        elif f.kind == "vector":
            v = [0, 1] if f.enum is not None else list(_VECTOR_SAMPLES[f.elem])
        elif f.kind == "string":
            v = "s_" + f.name
        else:
            continue
        if hasattr(obj, attr):  # deprecated fields have no attribute
            setattr(obj, attr, v)
    return obj


@pytest.mark.parametrize("union,member", [
    (u, m) for u in ("BuiltinOptions", "BuiltinOptions2") for m in _schema.UNIONS[u]])
def test_every_options_table_decodes_like_the_generated_code(union, member):
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1])
    sg.op("CUSTOM", [x], [x], custom_code="probe")
    o = sg.sg.operators[0]
    code = getattr(getattr(S, union), member)
    if union == "BuiltinOptions":
        o.builtinOptionsType, o.builtinOptions = code, _filled_options(member)
    else:
        o.builtinOptions2Type, o.builtinOptions2 = code, _filled_options(member)
    data = b.finish()
    (op,) = tflite_weights.open(data).subgraphs[0].operators
    assert op.options_type == member
    gop = S.Model.GetRootAs(data, 0).Subgraphs(0).Operators(0)
    table = gop.BuiltinOptions() if union == "BuiltinOptions" else gop.BuiltinOptions2()
    gen = getattr(S, member)()
    gen.Init(table.Bytes, table.Pos)
    ours = op.options
    for f in _schema.TABLES[member].fields:
        if not hasattr(gen, _camel(f.name)):  # deprecated: the generated code drops it
            continue
        assert ours[f.name] == _generated_field(gen, f), (member, f.name)


# -- damaged bytes: only the package's error, never another exception ----------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tflite_weights.errors import TFLiteWeightsError  # noqa: E402


def _rich_model() -> bytes:
    b = _fc_model()
    sg = b.m.subgraphs[0]
    sb = b.subgraph("second")
    x = sb.tensor("x", "FLOAT16", [2], np.ones(2, np.float16))
    y = sb.tensor("y", "FLOAT32", [2])
    sb.op("DEQUANTIZE", [x], [y])
    sb.op("CUSTOM", [y], [y], custom_code="Mine", custom_options=b"abc")
    conv = S.Conv2DOptionsT()
    conv.strideW = conv.strideH = 2
    sb.op("CONV_2D", [y, y, -1], [y], options=conv, options_type=S.BuiltinOptions.Conv2DOptions)
    assert sg.operators
    return b.finish()


_RICH = _rich_model()


def _quiet(fn):
    try:
        return fn()
    except TFLiteWeightsError:
        return None


def _touch_everything(model):
    for sg in _quiet(lambda: model.subgraphs) or ():
        for op in _quiet(lambda: sg.operators) or ():
            repr(op)
            for attr in ("opcode", "opcode_code", "custom_code", "version", "inputs",
                         "outputs", "intermediates", "options_type", "options",
                         "custom_options", "input_tensors", "output_tensors",
                         "mutating_variable_inputs", "roles"):
                _quiet(lambda: getattr(op, attr))
        for t in _quiet(lambda: sg.tensors) or ():
            _quiet(lambda: (t.producers, t.consumers))
    _quiet(lambda: list(model.weights()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, len(_RICH) - 1), st.integers(0, 255)),
                      min_size=1, max_size=4))
def test_mutated_models_read_operators_or_raise_the_package_error(flips):
    """On a damaged copy, every operator field the reader returns is what the schema's
    generated bindings read from the same bytes (compared where both succeed)."""
    data = bytearray(_RICH)
    for pos, value in flips:
        data[pos] = value
    data = bytes(data)
    model = _quiet(lambda: tflite_weights.open(data))
    if model is None:
        return
    _touch_everything(model)
    ref = _guard(lambda: S.Model.GetRootAs(data, 0))
    for sg in _quiet(lambda: model.subgraphs) or ():
        for op in _quiet(lambda: sg.operators) or ():
            rop = _guard(lambda: ref.Subgraphs(sg.index).Operators(op.index))
            if rop is None:
                continue
            for ours, theirs in (
                    (lambda: op.opcode_index, lambda: rop.OpcodeIndex()),
                    (lambda: list(op.inputs), lambda: rop.InputsAsNumpy().tolist()
                     if rop.InputsLength() else []),
                    (lambda: list(op.outputs), lambda: rop.OutputsAsNumpy().tolist()
                     if rop.OutputsLength() else []),
                    (lambda: op.custom_options, lambda: rop.CustomOptionsAsNumpy().tobytes()
                     if rop.CustomOptionsLength() else None)):
                a, b = _quiet(ours), _guard(theirs)
                if a is not None and b is not None:
                    assert a == b, (sg.index, op.index)
            code = _quiet(lambda: op.operator_code)
            rcode = _guard(lambda: ref.OperatorCodes(rop.OpcodeIndex()))
            if code is not None and rcode is not None:
                want = _guard(lambda: max(rcode.BuiltinCode(), rcode.DeprecatedBuiltinCode()))
                if want is not None:
                    assert code.code == want


def _guard(fn):
    try:
        return fn()
    except Exception:  # the bindings do not check bounds
        return None
