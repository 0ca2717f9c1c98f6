"""verify(): the structural walk and the model rules, pinned against the interpreter.

Every defect the verifier reports as one the interpreter refuses is checked
against ai-edge-litert's interpreter itself, run in a subprocess (it can
crash on damaged files): it must refuse the same file.  Random byte
corruptions check the structural walk both ways against the interpreter's
flatbuffers verifier ("The model is not a valid Flatbuffer buffer").
"""

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tflite_weights
from tflite_weights.format import schema as _schema
from tflite_weights import verify as V
from tflite_weights.verify import Defect, errors_of, verify

from tests.support.builders import S, ModelBuilder
from tests.support import paths as conftest

CORPUS = Path(conftest.CORPUS)
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus")


def corpus_models():
    if not CORPUS.is_dir():
        return []
    return sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".tflite", ".bin"))


# -- the interpreter as a second opinion ---------------------------------------------------

_RUNNER = textwrap.dedent("""
    import sys, json, os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ai_edge_litert.interpreter import Interpreter
    paths = sys.argv[1:]
    for p in paths:
        data = open(p, "rb").read()
        try:
            it = Interpreter(model_content=data)
            it.allocate_tensors()
            r = "ok"
        except Exception as e:
            msg = str(e)
            r = "invalid_flatbuffer" if "not a valid Flatbuffer" in msg else "refused"
        sys.stdout.write(json.dumps(r) + "\\n")
        sys.stdout.flush()
""")


def interpreter_verdicts(blobs, tmp_path) -> list:
    """"ok", "refused", "invalid_flatbuffer" or "crash" for each model, from the
    interpreter in a subprocess (restarted after a crash)."""
    pytest.importorskip("ai_edge_litert.interpreter")
    paths = []
    for i, b in enumerate(blobs):
        p = tmp_path / f"m{i}.tflite"
        p.write_bytes(bytes(b))
        paths.append(str(p))
    out = []
    while len(out) < len(paths):
        proc = subprocess.run([sys.executable, "-c", _RUNNER, *paths[len(out):]],
                              capture_output=True, text=True, timeout=300)
        got = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        out.extend(got)
        if len(out) < len(paths):
            out.append("crash")  # the next model killed the process
    return out


# -- a small valid model and ways to damage it ---------------------------------------------


def add_model(**tweak) -> "ModelBuilder":
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


def good_model() -> bytes:
    return add_model().finish()


def test_a_clean_model_has_no_defect():
    assert verify(good_model()) == []


def test_defect_text_says_where_what_and_the_byte():
    d = Defect("Model.subgraphs[0]", "something", 12)
    assert str(d) == "Model.subgraphs[0]: something (byte 12)"
    assert d.is_error and errors_of([d, Defect("x", "y", None, "warning")]) == [d]


def test_paths_bytes_and_models_are_accepted(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(good_model())
    assert verify(p) == [] and verify(str(p)) == []
    with tflite_weights.open(p) as m:
        assert verify(m) == []
    with pytest.raises(OSError):
        verify(tmp_path / "missing.tflite")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert "empty" in verify(empty)[0].what


# -- model rules -------------------------------------------------------------------------


def _tensor(b, i, sg=0):
    return b.m.subgraphs[sg].tensors[i]


def _m_version(b):
    b.m.version = 2


def _m_no_subgraph(b):
    b.m.subgraphs = []
    b.m.signatureDefs = []


def _m_buffer_index(b):
    _tensor(b, 1).buffer = 99


def _m_opcode_index(b):
    b.m.subgraphs[0].operators[0].opcodeIndex = 5


def _m_op_input(b):
    b.m.subgraphs[0].operators[0].inputs = [0, 7]


def _m_type(b):
    _tensor(b, 0).type = 99


def _m_data_short(b):
    _tensor(b, 1).shape = [1, 8]


def _m_variable_with_data(b):
    _tensor(b, 1).isVariable = True


def _m_qdim(b):
    q = _tensor(b, 1).quantization
    q.scale, q.zeroPoint, q.quantizedDimension = [0.5] * 4, [0] * 4, 2


def _m_scale_count(b):
    q = _tensor(b, 1).quantization
    q.scale, q.zeroPoint = [0.5, 0.5, 0.5], [0, 0, 0]


def _m_zero_point_count(b):
    _tensor(b, 1).quantization.zeroPoint = [0, 0]


def _m_no_zero_point(b):
    _tensor(b, 1).quantization.zeroPoint = None


def _m_custom_without_code(b):
    b.m.operatorCodes[0].builtinCode = 32
    b.m.operatorCodes[0].deprecatedBuiltinCode = 32
    b.m.operatorCodes[0].customCode = None


def _m_sparsity_half(b):
    sp = S.SparsityParametersT()
    sp.traversalOrder = [0, 1]
    _tensor(b, 1).sparsity = sp


def _m_signature_subgraph(b):
    b.m.signatureDefs[0].subgraphIndex = 3


def _m_signature_tensor(b):
    b.m.signatureDefs[0].inputs[0].tensorIndex = 40


def _m_string_layout(b):
    t = _tensor(b, 1)
    t.type = S.TensorType.STRING
    t.quantization = None
    b.m.buffers[t.buffer].data = np.frombuffer(struct.pack("<4i", 4, 99, 0, 0), np.uint8)


def _m_subgraph_output(b):
    b.m.subgraphs[0].outputs = [12]


def _m_negative_scale(b):
    _tensor(b, 1).quantization.scale = [-0.5]


MODEL_RULES = [
    # (tweak, where starts with, words in the message, the interpreter refuses it too)
    (_m_version, "Model.version", "schema version is 2", True),
    (_m_no_subgraph, "Model.subgraphs", "no subgraph", True),
    (_m_buffer_index, "Model.subgraphs[0].tensors[1].buffer", "buffer 99", True),
    (_m_opcode_index, "Model.subgraphs[0].operators[0].opcode_index", "opcode_index 5", True),
    (_m_op_input, "Model.subgraphs[0].operators[0].inputs[1]", "input tensor 7", True),
    (_m_type, "Model.subgraphs[0].tensors[0].type", "tensor type 99", True),
    (_m_data_short, "Model.subgraphs[0].tensors[1]", "needs 8 bytes, buffer", True),
    (_m_variable_with_data, "Model.subgraphs[0].tensors[1]", "variable tensor", True),
    (_m_qdim, "Model.subgraphs[0].tensors[1].quantization", "quantized_dimension 2", True),
    (_m_scale_count, "Model.subgraphs[0].tensors[1].quantization", "3 scales", True),
    (_m_zero_point_count, "Model.subgraphs[0].tensors[1].quantization", "2 zero points", True),
    (_m_no_zero_point, "Model.subgraphs[0].tensors[1].quantization", "no zero_point", True),
    (_m_custom_without_code, "Model.operator_codes[0]", "no custom_code", True),
    (_m_sparsity_half, "Model.subgraphs[0].tensors[1].sparsity", "both", True),
    (_m_signature_subgraph, "Model.signature_defs[0]", "subgraph_index 3", False),
    (_m_signature_tensor, "Model.signature_defs[0].inputs[0]", "tensor 40", False),
    (_m_string_layout, "Model.subgraphs[0].tensors[1]", "string", False),
    (_m_subgraph_output, "Model.subgraphs[0].outputs[0]", "subgraph output 12", True),
    (_m_negative_scale, "Model.subgraphs[0].tensors[1].quantization", "-0.5", False),
]


@pytest.mark.parametrize("tweak,where,words,refused", MODEL_RULES,
                         ids=[r[0].__name__[3:] for r in MODEL_RULES])
def test_model_rules(tweak, where, words, refused):
    b = add_model()
    tweak(b)
    defects = errors_of(verify(b.finish()))
    assert defects, "no defect found"
    d = defects[0]
    assert d.where.startswith(where) and words in d.what, str(d)
    assert isinstance(d.offset, int)
    if not refused:
        assert "stricter" in d.what


def test_the_interpreter_refuses_what_verify_says_it_refuses(tmp_path):
    blobs = []
    for tweak, *_ in MODEL_RULES:
        b = add_model()
        tweak(b)
        blobs.append(b.finish())
    verdicts = interpreter_verdicts([good_model()] + blobs, tmp_path)
    assert verdicts[0] == "ok"
    for (tweak, _, _, refused), v in zip(MODEL_RULES, verdicts[1:]):
        if refused:
            assert v in ("refused", "invalid_flatbuffer", "crash"), (tweak.__name__, v)


def test_warnings_do_not_make_a_model_unsound():
    b = add_model()
    b.m.buffers[0].data = np.frombuffer(b"\x01\x02", np.uint8)       # runtime warns
    q = _tensor(b, 1).quantization
    q.scale = [0.0]                                                   # odd, not refused
    b.add_metadata("min_runtime_version", b"1.5.0")                   # no NUL
    md = S.MetadataT()
    md.name, md.buffer = "dangling", 77                               # skipped by the runtime
    b.m.metadata.append(md)
    _tensor(b, 1).shape = [1, 2]                                      # buffer larger than needed
    defects = verify(b.finish())
    assert errors_of(defects) == []
    text = " | ".join(d.what for d in defects)
    for words in ("sentinel buffer 0", "zero scale", "not NUL-terminated",
                  "names buffer 77", "the rest is ignored"):
        assert words in text


# -- the structure ---------------------------------------------------------------------------


def _root(data):
    m = tflite_weights.open(bytes(data))
    return m, m._state.root


def _slot(table, field):
    return _schema.TABLES[table].slot(field)


def _tensor_table(data, i=0):
    m, root = _root(data)
    sg = root.tables(_slot("Model", "subgraphs"), "subgraphs")[0]
    return sg.tables(_slot("SubGraph", "tensors"), "tensors")[i]


def _patch(data, pos, fmt, value):
    struct.pack_into(fmt, data, pos, value)


def c_root_zero(d):
    _patch(d, 0, "<I", 0)


def c_root_misaligned(d):
    _patch(d, 0, "<I", struct.unpack_from("<I", d, 0)[0] + 2)


def c_root_outside(d):
    _patch(d, 0, "<I", len(d) + 64)


def c_root_negative(d):
    _patch(d, 0, "<I", 0x80000010)


def c_name_not_terminated(d):
    t = _tensor_table(d)
    start, n = t.vector(_slot("Tensor", "name"), 1, "name")
    d[start + n] = ord("!")


def c_shape_huge(d):
    t = _tensor_table(d)
    pos = t.field_pos(_slot("Tensor", "shape"))
    target = pos + struct.unpack_from("<I", d, pos)[0]
    _patch(d, target, "<I", 0x3FFFFFFF)


def c_vtable_odd(d):
    m, root = _root(d)
    _patch(d, root.vt, "<H", struct.unpack_from("<H", d, root.vt)[0] + 1)


def c_vtable_outside(d):
    t = _tensor_table(d)
    _patch(d, t.pos, "<i", -(len(d) + 100))


def c_scalar_misaligned(d):
    t = _tensor_table(d, 1)
    slot = _slot("Tensor", "buffer")
    vpos = t.vt + 4 + 2 * slot
    _patch(d, vpos, "<H", struct.unpack_from("<H", d, vpos)[0] + 1)


def c_offset_field_zero(d):
    t = _tensor_table(d)
    _patch(d, t.field_pos(_slot("Tensor", "name")), "<I", 0)


def c_element_zero(d):
    m, root = _root(d)
    v = root.vector(_slot("Model", "buffers"), 4, "buffers")
    _patch(d, v[0], "<I", 0)


STRUCTURE = [
    # (corruption, words, the interpreter's verifier refuses it too)
    (c_root_zero, "offset is 0", True),
    (c_root_misaligned, "not 4-byte aligned", True),
    (c_root_outside, "lies outside the flatbuffer", True),
    (c_root_negative, "signed 32-bit range", True),
    (c_name_not_terminated, "not NUL-terminated", True),
    (c_shape_huge, "vector", True),
    (c_vtable_odd, "odd size", True),
    (c_vtable_outside, "vtable", True),
    (c_scalar_misaligned, "aligned", True),
    (c_offset_field_zero, "offset is 0", True),
    (c_element_zero, "element offset 0", False),
]


@pytest.mark.parametrize("corrupt,words,refused", STRUCTURE,
                         ids=[s[0].__name__[2:] for s in STRUCTURE])
def test_structure_rules(corrupt, words, refused):
    d = bytearray(good_model())
    corrupt(d)
    errs = errors_of(verify(bytes(d)))
    assert errs and words in errs[0].what, [str(e) for e in errs]
    assert errs[0].where.startswith("Model")
    if not refused:
        assert "stricter" in errs[0].what


def test_the_interpreters_verifier_agrees_on_each_structure_rule(tmp_path):
    blobs = []
    for corrupt, *_ in STRUCTURE:
        d = bytearray(good_model())
        corrupt(d)
        blobs.append(d)
    verdicts = interpreter_verdicts(blobs, tmp_path)
    for (corrupt, _, refused), v in zip(STRUCTURE, verdicts):
        if refused:
            assert v == "invalid_flatbuffer", (corrupt.__name__, v)
        else:
            assert v != "invalid_flatbuffer", (corrupt.__name__, v)


def test_random_corruptions_agree_with_the_interpreters_verifier(tmp_path):
    """One flipped byte at a time, all over a small model: whenever the interpreter's
    flatbuffers verifier refuses the file, the structural walk finds an error too;
    whenever the walk accepts the structure, so does the verifier; and when only the
    walk refuses, the rule it applied is one documented as stricter."""
    base = good_model()
    rng = np.random.default_rng(1234)
    positions = rng.choice(len(base), size=min(160, len(base)), replace=False)
    blobs, ours = [], []
    for pos in positions.tolist():
        d = bytearray(base)
        d[pos] ^= int(rng.integers(1, 256))
        blobs.append(d)
        ours.append([x for x in errors_of(verify(bytes(d))) if _is_structural(x)])
    verdicts = interpreter_verdicts(blobs, tmp_path)
    assert verdicts.count("invalid_flatbuffer") >= 10  # the sample does exercise the verifier
    for pos, mine, theirs in zip(positions.tolist(), ours, verdicts):
        if theirs == "invalid_flatbuffer":
            assert mine, f"byte {pos}: the interpreter's verifier refuses, verify() does not"
        elif mine:
            assert all("stricter" in x.what for x in mine), \
                (pos, theirs, [str(x) for x in mine])


_STRUCTURAL_WORDS = ("aligned", "outside the flatbuffer", "offset is 0", "signed 32-bit",
                     "NUL-terminated", "vtable", "vector declares", "table declares",
                     "field offset", "element offset", "nested more", "more than",
                     "identifier", "too short")


def _is_structural(d) -> bool:
    return any(w in d.what for w in _STRUCTURAL_WORDS)


# -- limits ------------------------------------------------------------------------------------


def _chain(n: int) -> bytes:
    """A flatbuffer of ``n`` nested Node tables (Node: child:Node value:i32)."""
    import flatbuffers
    b = flatbuffers.Builder(0)
    child = None
    for i in range(n):
        b.StartObject(2)
        if child is not None:
            b.PrependUOffsetTRelativeSlot(0, child, 0)
        b.PrependInt32Slot(1, i + 1, 0)
        child = b.EndObject()
    b.Finish(child)
    return bytes(b.Output())


@pytest.fixture
def node_schema(monkeypatch):
    tables = dict(_schema.TABLES)
    tables.update(_schema.parse_tables("Node: child:Node value:i32"))
    monkeypatch.setattr(_schema, "TABLES", tables)


def _walk(data: bytes, root: str = "Node") -> list:
    defects = []
    fb = V.FlatBuffer(data)
    V._Structure(fb, fb.size, defects, root_name=root).walk(None)
    return defects


def test_nesting_deeper_than_64_tables_is_refused(node_schema):
    assert _walk(_chain(64)) == []
    d = _walk(_chain(65))
    assert len(d) == 1 and "nested more than 64" in d[0].what


# -- the corpus -------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("name", corpus_models())
def test_corpus_models(name):
    defects = verify(CORPUS / name)
    if name == "litert_invalid_model.bin":
        assert errors_of(defects) and "not a TFLite model" in defects[0].what
    else:
        assert errors_of(defects) == [], [str(d) for d in defects[:3]]


@needs_corpus
def test_person_detect_bias_axes_are_warnings():
    defects = verify(CORPUS / "tflm_person_detect.tflite")
    assert defects and all(d.severity == "warning" for d in defects)
    assert all("quantized_dimension 3" in d.what and "shape [" in d.what for d in defects)
