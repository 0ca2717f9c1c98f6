"""tflite_weights.testing: live comparisons with the interpreter, and their behaviour.

The live comparisons run the LiteRT interpreter (the `test` extra installs
ai-edge-litert; no TensorFlow) in a subprocess over every fixture and every
corpus model.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

import tflite_weights as tw
from tflite_weights import dtypes, testing
from tflite_weights import model as model_module
from tflite_weights.testing import (Difference, Report, assert_matches_interpreter,
                                    compare_with_dump, compare_with_interpreter)

from builders import ModelBuilder
from conftest import FIXTURES, corpus_files

needs_interpreter = pytest.mark.skipif(not testing.interpreter_available(),
                                       reason="no TFLite interpreter installed")

FIXTURE_MODELS = sorted(os.path.join(FIXTURES, f) for f in os.listdir(FIXTURES)
                        if f.endswith(".tflite"))
CORPUS = [p for p in corpus_files() if not p.endswith("invalid_model.bin")]

# what the interpreter does with these corpus models (SOURCES.md): its failures are
# reported as such, never as differences
INTERPRETER_FAILS = {
    "litert_blockwise_quantized.tflite": "crashed",
    "litert_sparse_tensor.bin": "refused",            # custom op FakeOp
    "tflm_audio_preprocessor_int8.tflite": "refused",  # signal-processing custom ops
    "tflm_person_detect.tflite": "refused",           # quantized_dimension 3 on rank-1
    "tflm_person_detect_vela.tflite": "refused",      # ethos-u custom op
}


@needs_interpreter
@pytest.mark.parametrize("path", FIXTURE_MODELS + CORPUS, ids=os.path.basename)
def test_reader_matches_the_live_interpreter(path):
    report = compare_with_interpreter(path)
    assert report.differences == [], str(report)
    expected = INTERPRETER_FAILS.get(os.path.basename(path), "ok")
    assert report.status == expected, str(report)
    with tw.open(path) as m:
        n = sum(len(sg.tensors) for sg in m.subgraphs)
    if report.status == "ok":
        assert report.tensors_compared == n


@needs_interpreter
def test_a_crash_in_allocate_still_compares_what_the_interpreter_read_before(corpus):
    report = compare_with_interpreter(os.path.join(corpus, "litert_blockwise_quantized.tflite"))
    assert report.status == "crashed" and report.interpreter_failed
    assert "allocate_tensors" in report.error
    assert report.tensors_compared == 5 and report.values_compared == 2
    assert report.differences == []


@needs_interpreter
def test_on_interpreter_failure_modes(corpus):
    path = os.path.join(corpus, "tflm_person_detect_vela.tflite")
    with pytest.raises(pytest.skip.Exception, match="refused"):
        assert_matches_interpreter(path)
    with pytest.raises(AssertionError, match="ethos-u"):
        assert_matches_interpreter(path, on_interpreter_failure="fail")
    report = assert_matches_interpreter(path, on_interpreter_failure="ignore")
    assert report.status == "refused" and not report.ok


@needs_interpreter
def test_models_from_bytes_and_open_models_are_compared_too():
    path = os.path.join(FIXTURES, "ptq_int8.tflite")
    with open(path, "rb") as f:
        data = f.read()
    assert compare_with_interpreter(data).ok
    with tw.open(data) as m:
        assert assert_matches_interpreter(m).ok
    with tw.open(path) as m:
        assert compare_with_interpreter(m).ok


@needs_interpreter
def test_synthetic_types_match_the_interpreter():
    b = ModelBuilder()
    sg = b.subgraph()
    rng = np.random.default_rng(3)
    for name, dtype in (("FLOAT32", "<f4"), ("FLOAT16", "<f2"), ("INT32", "<i4"),
                        ("UINT8", "u1"), ("INT64", "<i8"), ("INT16", "<i2"), ("INT8", "i1"),
                        ("FLOAT64", "<f8"), ("BOOL", "u1")):
        v = rng.integers(0, 2 if name == "BOOL" else 100, (2, 3)).astype(dtype)
        sg.tensor(name.lower(), name, [2, 3], v,
                  quant=dict(scale=[0.5, 0.25], zero_point=[1, 2]) if name == "INT8" else None)
    sg.tensor("int4", "INT4", [3], bytes([0x21, 0x0f]))
    sg.tensor("offset", "INT16", [4], np.arange(4, dtype=np.int16), offset=True)
    sg.tensor("activation", "FLOAT32", [1, 3])
    report = compare_with_interpreter(b.finish())
    assert report.ok, str(report)
    assert report.values_compared == 11


@needs_interpreter
def test_synthetic_sparse_tensors_match_the_interpreter():
    # each index width, a block map and none: the interpreter widens the index vectors
    # to int and reports formats as 0/1, the reader keeps them as stored
    b = ModelBuilder()
    sg = b.subgraph()
    for kind in ("u8", "u16", "i32"):
        sg.tensor(f"csr_{kind}", "FLOAT32", [2, 4], np.array([1, 2, 3], "<f4"),
                  sparsity=dict(traversal_order=[0, 1], block_map=[], dim_metadata=[
                      ("DENSE", 2), ("CSR", [0, 1, 3], [2, 0, 3], kind)]))
        sg.tensor(f"blocked_{kind}", "INT8", [2, 4], np.arange(4, dtype=np.int8),
                  sparsity=dict(traversal_order=[0, 1, 2], block_map=[1], dim_metadata=[
                      ("DENSE", 2), ("CSR", [0, 1, 2], [0, 1], kind), ("DENSE", 2)]))
    sg.tensor("no_block_map", "FLOAT32", [2, 2], np.array([5, 6], "<f4"),
              sparsity=dict(traversal_order=[1, 0], dim_metadata=[
                  ("DENSE", 2), ("CSR", [0, 1, 2], [1, 0], "u8")]))
    report = compare_with_interpreter(b.finish())
    assert report.ok, str(report)
    assert report.tensors_compared == report.values_compared == 7


def _golden(name):
    with open(os.path.join(FIXTURES, "goldens", name + ".json")) as f:
        dump = json.load(f)
    with np.load(os.path.join(FIXTURES, "goldens", name + ".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    return dump, arrays


def _compare_golden(name, dump, arrays):
    with tw.open(os.path.join(FIXTURES, name + ".tflite")) as m:
        return compare_with_dump(m, dump, arrays, Report(model=name))


def test_nan_payloads_are_compared_bit_for_bit():
    # compared as values, two NaNs differ even when their bits agree and their payloads
    # cannot be told apart; compared as bits, both come out right
    b = ModelBuilder()
    b.subgraph().tensor("h", "FLOAT16", [3], np.array([0x7e01, 0x3c00, 0xfe00], "<u2"))
    entry = {"index": 0, "name": "h", "shape": [3], "shape_signature": [3],
             "dtype": "float16", "quantization": [0.0, 0],
             "quantization_parameters": {"scales": [], "zero_points": [],
                                         "quantized_dimension": 0},
             "sparsity_parameters": {}, "value_before_allocate": "ok",
             "npz_key": "t0", "npz_layout": "dense"}
    dump = {"status": "ok", "num_subgraphs": 1, "tensors": [entry], "other_subgraphs": []}
    with tw.open(b.finish()) as m:
        same = compare_with_dump(m, dump, {"t0": np.array([0x7e01, 0x3c00, 0xfe00],
                                                          "<u2").view("<f2")})
        other = compare_with_dump(m, dump, {"t0": np.array([0x7e00, 0x3c00, 0xfe00],
                                                           "<u2").view("<f2")})
    assert same.ok and same.values_compared == 1, str(same)
    assert other.differences == [Difference(0, 0, "h", "values (1 of 3 differ, first at "
                                            "flat index 0)", "nan (bits 0x7e01)",
                                            "nan (bits 0x7e00)")], str(other)


def test_a_float16_reader_with_the_wrong_byte_order_is_caught(monkeypatch):
    dump, arrays = _golden("float16")
    assert _compare_golden("float16", dump, arrays).ok
    halves = [e for e in dump["tensors"] if e["npz_key"] and e["dtype"] == "float16"]
    assert halves
    # the reader decodes FLOAT16 as big-endian: the same bytes, other values
    code = next(c for c, info in dtypes.TYPES.items() if info.name == "FLOAT16")
    wrong = np.dtype(">f2")
    monkeypatch.setitem(dtypes.TYPES, code, dataclasses.replace(dtypes.TYPES[code], dtype=wrong))
    table = model_module._DTYPE_TABLE.copy()
    table[code] = wrong
    monkeypatch.setattr(model_module, "_DTYPE_TABLE", table)
    with tw.open(os.path.join(FIXTURES, "float16.tflite")) as m:
        # the patch took: same bytes as the interpreter's array, other dtype
        t = m.subgraphs[0].tensors[halves[0]["index"]]
        assert t.numpy().dtype == wrong
        assert t.numpy().tobytes() == arrays[halves[0]["npz_key"]].tobytes()
        report = compare_with_dump(m, dump, arrays, Report(model="float16"))
    by_tensor = {}
    for d in report.differences:
        by_tensor.setdefault(d.tensor, []).append(d.field)
    assert set(by_tensor) == {e["index"] for e in halves}, str(report)
    for fields in by_tensor.values():
        assert fields[0] == "values dtype" and fields[1].startswith("values ("), fields
    assert not report.ok


def test_differences_are_found_and_reported_readably():
    dump, arrays = _golden("qat_conv")
    bad = copy.deepcopy(dump)
    entry = next(e for e in bad["tensors"] if len(e["quantization_parameters"]["scales"]) > 1)
    entry["quantization_parameters"]["scales"][2] *= 1.5
    entry["quantization"] = [0.125, 3]
    key = next(e["npz_key"] for e in bad["tensors"] if e.get("npz_key") and
               arrays[e["npz_key"]].dtype == np.int8)
    arrays = dict(arrays)
    arrays[key] = arrays[key].copy()
    arrays[key].reshape(-1)[5] += 1
    bad["signatures"]["serving_default"]["outputs"] = ["other"]
    report = _compare_golden("qat_conv", bad, arrays)
    fields = sorted(d.field for d in report.differences)
    assert "quantization scales" in fields
    assert "legacy quantization tuple" in fields
    assert any(f.startswith("values (1 of") for f in fields)
    assert "signature outputs" in fields
    text = str(report)
    head, *lines = text.splitlines()
    assert head.startswith("qat_conv: NOT OK: 4 differences;") and head.endswith(":")
    assert len(lines) == 4 and all(" ours " in x and ", interpreter " in x for x in lines)
    assert not report.ok


def test_the_head_line_says_plainly_whether_the_model_matches():
    dump, arrays = _golden("ptq_int8")
    ok = _compare_golden("ptq_int8", dump, arrays)
    assert str(ok).startswith("ptq_int8: OK: no differences; 9 tensors, 5 values, "
                              "1 signatures compared with interpreter ai-edge-litert")
    assert "\n" not in str(ok)
    refused = copy.deepcopy(dump)
    refused.update(status="refused", error_stage="allocate_tensors", error=(
        "quantized_dimension must be in range [0, 1). Was 3.Tensor 33 has invalid "
        "quantization parameters.Encountered unresolved custom op: ethos-u.\nSee "
        "instructions: https://www.tensorflow.org/lite/guide/ops_custom Node number 0 "
        "(ethos-u) failed to prepare."))
    report = _compare_golden("ptq_int8", refused, arrays)
    assert not report.ok and report.differences == []
    text = str(report)
    assert "\n" not in text
    assert text.startswith("ptq_int8: NOT OK: the interpreter refused the model: "
                           "quantized_dimension must be in range [0, 1). Was 3; "
                           "Tensor 33 has invalid quantization parameters; "
                           "Encountered unresolved custom op: ethos-u; "
                           "See instructions: https://www.tensorflow.org/lite/guide/ops_custom; "
                           "Node number 0 (ethos-u) failed to prepare; "
                           "no differences in what it reported; 9 tensors"), text
    crashed = Report(model="m", status="crashed", error="killed by signal 11 during load")
    assert str(crashed) == ("m: NOT OK: the interpreter crashed: killed by signal 11 during "
                            "load; no differences in what it reported; 0 tensors, 0 values, "
                            "0 signatures compared with interpreter -")


def test_legacy_tuple_is_zero_for_per_channel_and_filled_per_tensor():
    dump, arrays = _golden("ptq_int8")
    with tw.open(os.path.join(FIXTURES, "ptq_int8.tflite")) as m:
        per_channel = [t.index for t in m.tensors
                       if t.quantization is not None and t.quantization.is_per_channel]
        per_tensor = [t.index for t in m.tensors
                      if t.quantization is not None and not t.quantization.is_per_channel]
    assert per_channel and per_tensor
    by_index = {e["index"]: e for e in dump["tensors"]}
    assert all(by_index[i]["quantization"] == [0.0, 0] for i in per_channel)
    assert all(by_index[i]["quantization"][0] != 0.0 for i in per_tensor)


def test_skips_cleanly_without_an_interpreter(tmp_path):
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or testing.interpreter_available(python):
        pytest.skip("no Python without an interpreter on this machine")
    with pytest.raises(pytest.skip.Exception, match="no TFLite interpreter"):
        compare_with_interpreter(os.path.join(FIXTURES, "ptq_int8.tflite"), python=python)
