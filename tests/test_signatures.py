"""SignatureDefs against the live interpreter and the generated bindings.

The interpreter runs in a subprocess: some corpus models crash it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tflite_weights
from tflite_weights.errors import InvalidModelError

from tests.support.builders import S, ModelBuilder

from tests.support.paths import CORPUS  # noqa: E402
MODELS = sorted(f for f in os.listdir(CORPUS) if not f.endswith(".md")) \
    if os.path.isdir(CORPUS) else []
READABLE = [f for f in MODELS if f != "litert_invalid_model.bin"]
needs_corpus = pytest.mark.skipif(not MODELS, reason="../shared/corpus is absent")

_INTERPRETER_SCRIPT = r"""
import json, sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
it = Interpreter(model_path=sys.argv[1],
                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
full = it._get_full_signature_list()
out = {"list": it.get_signature_list(), "full": {}}
for key, sd in full.items():
    out["full"][key] = {"subgraph": int(it._interpreter.GetSubgraphIndexFromSignature(key)),
                        "inputs": {k: int(v) for k, v in sd["inputs"].items()},
                        "outputs": {k: int(v) for k, v in sd["outputs"].items()}}
print(json.dumps(out))
"""


def interpreter_signatures(path):
    """The interpreter's view of the signatures, or None when it cannot load the model."""
    try:
        pytest.importorskip("ai_edge_litert.interpreter")
        r = subprocess.run([sys.executable, "-c", _INTERPRETER_SCRIPT, path],
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _ours(model):
    return {k: {"subgraph": s.subgraph,
                "inputs": {n: t.index for n, t in s.inputs.items()},
                "outputs": {n: t.index for n, t in s.outputs.items()}}
            for k, s in model.signatures.items()}


def _generated(data):
    g = S.Model.GetRootAs(data, 0)
    out = {}
    for i in range(g.SignatureDefsLength()):
        sd = g.SignatureDefs(i)

        def maps(n, get):
            return {get(j).Name().decode(): get(j).TensorIndex() for j in range(n)}
        out[sd.SignatureKey().decode()] = {
            "subgraph": sd.SubgraphIndex(),
            "inputs": maps(sd.InputsLength(), sd.Inputs),
            "outputs": maps(sd.OutputsLength(), sd.Outputs)}
    return out


@needs_corpus
@pytest.mark.parametrize("name", READABLE)
def test_corpus_signatures_match_generated_bindings_in_file_order(name):
    data = open(os.path.join(CORPUS, name), "rb").read()
    model = tflite_weights.open(data)
    ours, gen = _ours(model), _generated(data)
    assert ours == gen
    for key in ours:  # file order, not just equal mappings
        assert list(ours[key]["inputs"]) == list(gen[key]["inputs"])
        assert list(ours[key]["outputs"]) == list(gen[key]["outputs"])


@needs_corpus
@pytest.mark.parametrize("name", [f for f in READABLE if f in (
    "litert_multi_signatures.bin", "litert_add_quantized_int8.bin",
    "litert_multi_subgraphs_while.bin", "litert_call_once_mul.bin",
    "tflm_dtln_noise_suppression.tflite", "tflm_hello_world_int8.tflite",
    "tflm_trained_lstm_int8.tflite", "litert_single_add_default_a16w8_recipe_quantized.tflite",
    "litert_dynamic_shapes.bin")])
def test_corpus_signatures_match_the_interpreter(name):
    path = os.path.join(CORPUS, name)
    live = interpreter_signatures(path)
    if live is None:
        pytest.skip(f"the interpreter cannot load {name} (it crashes or refuses)")
    model = tflite_weights.open(path)
    assert set(model.signatures) == set(live["list"])
    for key, sig in model.signatures.items():
        assert sorted(sig.inputs) == sorted(live["list"][key]["inputs"])
        assert sorted(sig.outputs) == sorted(live["list"][key]["outputs"])
        assert _ours(model)[key] == live["full"][key]


@needs_corpus
def test_multi_signature_model_has_two_subgraphs_by_key():
    model = tflite_weights.open(os.path.join(CORPUS, "litert_multi_signatures.bin"))
    sigs = model.signatures
    assert list(sigs) == ["add", "sub"]
    assert (sigs["add"].subgraph, sigs["sub"].subgraph) == (0, 1)
    assert sigs["sub"].graph is model.subgraphs[1]
    assert sigs["sub"].inputs["x"] is model.subgraphs[1].tensors[0]


def _two_output_model():
    """Signature outputs [n, out] while SubGraph.outputs is [5, 1]."""
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1, 4])
    n = sg.tensor("neg", "FLOAT32", [1, 4])
    c = sg.tensor("c", "FLOAT32", [1, 4], np.ones((1, 4), np.float32))
    t3 = sg.tensor("t3", "FLOAT32", [1, 4])
    t4 = sg.tensor("t4", "FLOAT32", [1, 4])
    out = sg.tensor("sum", "FLOAT32", [1, 4])
    assert (x, n, out) == (0, 1, 5)
    sg.op("NEG", [x], [n])
    sg.op("ADD", [x, c], [t3])
    sg.op("ADD", [t3, c], [t4])
    sg.op("ADD", [t4, n], [out])
    sg.sg.inputs, sg.sg.outputs = [x], [out, n]
    b.signature("serving_default", 0, {"x": x}, {"n": n, "out": out})
    return b


def test_signature_outputs_follow_the_signature_not_the_subgraph(tmp_path):
    data = _two_output_model().finish()
    model = tflite_weights.open(data)
    assert model.subgraphs[0].outputs == (5, 1)
    sig = model.signatures["serving_default"]
    assert list(sig.outputs) == ["n", "out"]
    assert [t.name for t in sig.outputs.values()] == ["neg", "sum"]
    assert sig.output_indices == {"n": 1, "out": 5}
    assert sig.to_dict() == {"key": "serving_default", "subgraph": 0,
                             "inputs": {"x": 0}, "outputs": {"n": 1, "out": 5}}
    path = tmp_path / "two.tflite"
    path.write_bytes(data)
    live = interpreter_signatures(str(path))
    if live is None:
        pytest.skip("the interpreter cannot load the synthetic model")
    assert live["full"]["serving_default"] == _ours(model)["serving_default"]


def test_signature_with_bad_tensor_index_raises_when_used():
    b = _two_output_model()
    b.m.signatureDefs[0].outputs[1].tensorIndex = 42
    model = tflite_weights.open(b.finish())
    sig = model.signatures["serving_default"]  # listing works
    assert sig.output_indices == {"n": 1, "out": 42}
    assert sig.inputs["x"].name == "x"
    with pytest.raises(InvalidModelError,
                       match=r"signature_defs\[0\] \('serving_default'\): output 'out' names "
                             r"tensor 42, but subgraph 0 has 6 tensors"):
        sig.outputs


def test_signature_with_bad_subgraph_index_raises_when_used():
    b = _two_output_model()
    b.m.signatureDefs[0].subgraphIndex = 3
    model = tflite_weights.open(b.finish())
    sig = model.signatures["serving_default"]
    assert sig.subgraph == 3
    with pytest.raises(InvalidModelError, match="subgraph_index is 3, but the model has 1"):
        sig.inputs
    assert "serving_default" in repr(sig)


def test_signature_without_key_is_refused_when_signatures_are_read():
    b = _two_output_model()
    b.m.signatureDefs[0].signatureKey = None
    model = tflite_weights.open(b.finish())
    with pytest.raises(InvalidModelError, match=r"signature_defs\[0\] has no signature_key"):
        model.signatures


def test_model_without_signatures_has_an_empty_mapping():
    b = ModelBuilder()
    b.subgraph().tensor("x", "FLOAT32", [1])
    assert dict(tflite_weights.open(b.finish()).signatures) == {}


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
FIXTURE_MODELS = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".tflite")) \
    if os.path.isdir(FIXTURES) else []


@pytest.mark.skipif(not FIXTURE_MODELS, reason="fixtures/ is absent")
@pytest.mark.parametrize("name", FIXTURE_MODELS)
def test_fixture_signatures_match_the_interpreter(name):
    path = os.path.join(FIXTURES, name)
    model = tflite_weights.open(path)
    assert _ours(model) == _generated(open(path, "rb").read())
    live = interpreter_signatures(path)
    if live is None:
        pytest.skip(f"the interpreter cannot load {name}")
    assert _ours(model) == live["full"]


@pytest.mark.skipif("multi_signature.tflite" not in FIXTURE_MODELS, reason="fixture absent")
def test_fixture_multi_signature_keys():
    model = tflite_weights.open(os.path.join(FIXTURES, "multi_signature.tflite"))
    assert set(model.signatures) == {"encode", "decode"}
