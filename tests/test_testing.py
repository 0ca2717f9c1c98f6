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
from tflite_weights import state as state_module, testing
from tflite_weights.format import types as dtypes
from tflite_weights.testing import (Difference, Report, assert_matches_interpreter,
                                    compare_with_dump, compare_with_interpreter)

from tests.support.builders import ModelBuilder
from tests.support.paths import FIXTURES, corpus_files

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
@pytest.mark.parametrize("fieldname", ["blockwise scales", "block_size"])
def test_a_changed_blockwise_field_is_reported_as_exactly_that_difference(corpus, fieldname):
    # no golden has blockwise parameters: the live dump of the corpus model serves
    path = os.path.join(corpus, "litert_blockwise_quantized.tflite")
    dump, arrays = testing.run_interpreter_dump(path)
    with tw.open(path) as m:
        assert compare_with_dump(m, dump, arrays).differences == []
        e = next(e for e in dump["tensors"] if e["quantization_parameters"].get("block_size"))
        qp = e["quantization_parameters"]
        if fieldname == "block_size":
            expected = Difference(0, e["index"], e["name"], fieldname, qp["block_size"],
                                  qp["block_size"] * 2)
            qp["block_size"] *= 2
        else:
            before = list(qp["scales"])
            qp["scales"][1] *= 2
            expected = Difference(0, e["index"], e["name"], fieldname, before, qp["scales"])
        report = compare_with_dump(m, dump, arrays)
    assert report.differences == [expected], str(report)


@needs_interpreter
def test_on_interpreter_failure_modes(corpus):
    path = os.path.join(corpus, "tflm_person_detect_vela.tflite")
    with pytest.raises(pytest.skip.Exception, match="refused"):
        assert_matches_interpreter(path)
    with pytest.raises(AssertionError, match="ethos-u"):
        assert_matches_interpreter(path, on_interpreter_failure="fail")
    report = assert_matches_interpreter(path, on_interpreter_failure="ignore")
    assert report.status == "refused" and not report.ok
    # compare_with_interpreter takes the same choice (the README documents it there too)
    assert compare_with_interpreter(path).status == "refused"  # default: the report
    with pytest.raises(pytest.skip.Exception, match="refused"):
        compare_with_interpreter(path, on_interpreter_failure="skip")
    with pytest.raises(AssertionError, match="ethos-u"):
        compare_with_interpreter(path, on_interpreter_failure="fail")
    with pytest.raises(ValueError, match="on_interpreter_failure must be one of"):
        compare_with_interpreter(path, on_interpreter_failure="raise")


@needs_interpreter
def test_a_report_of_many_refusals_reads_as_separate_messages(corpus):
    """person_detect: the interpreter refuses it with one message per bad tensor, run
    together; the report separates them and says plainly that the model does not
    match."""
    report = compare_with_interpreter(os.path.join(corpus, "tflm_person_detect.tflite"))
    text = str(report)
    assert not report.ok and text.startswith(f"{report.model}: NOT OK: the interpreter refused")
    assert text.count("; ") >= 3 and ".Tensor" not in text  # "Was 3.Tensor 33" split


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


# -- one changed field of a golden, one reported difference ----------------------------------
# Each case changes one field the comparison covers in a copy of a committed golden
# and returns the one Difference it must cause.  The expected values come from the
# golden itself (the unchanged golden matches the reader exactly, which
# test_every_golden_used_here_matches_unchanged checks), never from the reader.
def _entry(dump, index, subgraph=0):
    entries = dump["tensors"] if subgraph == 0 else next(
        o["tensors"] for o in dump["other_subgraphs"] if o["subgraph"] == subgraph)
    return next(e for e in entries if e["index"] == index)


def _per_channel(dump):
    return next(e for e in dump["tensors"] if len(e["quantization_parameters"]["scales"]) > 1)


def _per_tensor_nonzero_zp(dump):
    return next(e for e in dump["tensors"] if len(e["quantization_parameters"]["scales"]) == 1
                and e["quantization_parameters"]["zero_points"][0] != 0)


def _diff(e, fieldname, ours, theirs, subgraph=0):
    return Difference(subgraph, e["index"], e.get("name", ""), fieldname, ours, theirs)


def _values_diff(e, label, before, after):
    """The difference the comparison must report when the interpreter's array for
    ``e`` reads ``after`` instead of ``before`` (same dtype), found here by the bits."""
    size = before.dtype.itemsize
    bad = np.flatnonzero(before.reshape(-1).view(f"u{size}") != after.reshape(-1).view(f"u{size}"))
    assert bad.size, "the change must change some element"
    i = int(bad[0])
    return _diff(e, f"{label} ({bad.size} of {before.size} differ, first at flat index {i})",
                 before.reshape(-1)[i].item(), after.reshape(-1)[i].item())


def _scale(dump, arrays):
    e = _per_channel(dump)
    qp = e["quantization_parameters"]
    before = list(qp["scales"])
    qp["scales"][1] *= 2  # exact in float32
    return _diff(e, "quantization scales", before, qp["scales"])


def _zero_point(dump, arrays):
    e = _per_tensor_nonzero_zp(dump)
    qp = e["quantization_parameters"]
    before = list(qp["zero_points"])
    qp["zero_points"][0] += 1
    return _diff(e, "quantization zero points", before, qp["zero_points"])


def _quantized_dimension(dump, arrays):
    # the depthwise filter: per channel along its last axis
    e = next(e for e in dump["tensors"] if e["quantization_parameters"]["quantized_dimension"])
    qp = e["quantization_parameters"]
    assert qp["quantized_dimension"] == 3 and len(qp["scales"]) == e["shape"][3] > 1
    qp["quantized_dimension"] = 0
    return _diff(e, "quantized_dimension", 3, 0)


def _legacy_per_tensor(dump, arrays):
    e = _per_tensor_nonzero_zp(dump)
    before = list(e["quantization"])
    e["quantization"] = [before[0], before[1] + 1]
    return _diff(e, "legacy quantization tuple", before, e["quantization"])


def _legacy_per_channel(dump, arrays):
    e = _per_channel(dump)
    assert e["quantization"] == [0.0, 0]
    qp = e["quantization_parameters"]
    e["quantization"] = [qp["scales"][0], qp["zero_points"][0]]
    return _diff(e, "legacy quantization tuple", [0.0, 0], e["quantization"])


def _described(fieldname, new):
    def change(dump, arrays):
        e = _per_channel(dump)
        desc = e["before_allocate"]  # the description the comparison reads
        before = desc[fieldname]
        desc[fieldname] = new(before)
        return _diff(e, fieldname, before, desc[fieldname])
    change.__name__ = "_" + fieldname
    return change


def _data_offset(dump, arrays):
    e = next(e for e in dump["tensors"] if e["data_source"] == "model_file")
    before = e["data_offset"]
    e["data_offset"] += 4
    return _diff(e, "data_offset", before, before + 4)


def _sparse_data_offset(dump, arrays):
    e = _sparse_entry(dump)
    assert e["data_source"] == "model_file"  # where its stored values start
    e["data_offset"] += 4
    return _diff(e, "data_offset", e["data_offset"] - 4, e["data_offset"])


def _constant_read_as_null(dump, arrays):
    e = next(e for e in dump["tensors"] if e["npz_key"])
    e.update(value_before_allocate="null", npz_key=None, npz_layout=None, data_source=None,
             data_offset=None)
    return _diff(e, "has_data", True, False)


def _activation_read_as_constant(dump, arrays):
    e = next(e for e in dump["tensors"] if e["value_before_allocate"] == "null")
    e["value_before_allocate"] = "ok"
    return _diff(e, "has_data", False, True)


def _one_value(flip):
    def change(dump, arrays):
        e = next(e for e in dump["tensors"] if e["npz_key"] and arrays[e["npz_key"]].size > 2
                 and arrays[e["npz_key"]].dtype == np.dtype(flip))
        before = arrays[e["npz_key"]]
        after = before.copy()
        bits = after.reshape(-1).view(f"u{after.dtype.itemsize}")
        bits[2] ^= 1  # the lowest bit of one element
        arrays[e["npz_key"]] = after
        label = ("sparse stored values" if e["npz_layout"] == "sparse_stored_values"
                 else "values")
        expected = _values_diff(e, label, before, after)
        assert expected.field.startswith(f"{label} (1 of ")
        return expected
    change.__name__ = f"_one_{np.dtype(flip).name}_value"
    return change


def _swapped_bytes(dtype):
    """The bytes of every element swapped, the dtype kept: what a reader with the wrong
    byte order would see next to the interpreter."""
    def change(dump, arrays):
        e = next(e for e in dump["tensors"] if e["npz_key"]
                 and arrays[e["npz_key"]].dtype == np.dtype(dtype))
        before = arrays[e["npz_key"]]
        arrays[e["npz_key"]] = after = before.byteswap()
        return _values_diff(e, "values", before, after)
    change.__name__ = f"_swapped_{np.dtype(dtype).name}_bytes"
    return change


def _big_endian_dtype(dump, arrays):
    """The same values in a big-endian array: the interpreter's arrays are native."""
    e = next(e for e in dump["tensors"] if e["npz_key"]
             and arrays[e["npz_key"]].dtype == np.dtype("<f2"))
    before = arrays[e["npz_key"]]
    arrays[e["npz_key"]] = before.astype(">f2")
    return _diff(e, "values dtype", "<f2", ">f2")


def _value_shape(dump, arrays):
    e = next(e for e in dump["tensors"] if e["npz_key"] and arrays[e["npz_key"]].ndim == 2)
    before = arrays[e["npz_key"]]
    arrays[e["npz_key"]] = before.T
    return _diff(e, "value shape", list(before.shape), list(before.T.shape))


def _one_more_sparse_value(dump, arrays):
    e = _sparse_entry(dump)
    before = arrays[e["npz_key"]]
    arrays[e["npz_key"]] = np.append(before, before[:1])
    return _diff(e, "sparse stored value count", before.size, before.size + 1)


def _string_value(dump, arrays):
    e = next(e for e in dump["tensors"] if "string_value" in e)
    before = list(e["string_value"])
    e["string_value"][1] = "ff" + e["string_value"][1]
    return _diff(e, "string values", before, e["string_value"])


def _sparse_entry(dump):
    return next(e for e in dump["tensors"] if e["sparsity_parameters"])


def _sparsity_name_form(sp):
    """The golden's sparsity_parameters in the reader's to_dict() form."""
    return {"traversal_order": sp["traversal_order"], "block_map": sp["block_map"],
            "dim_metadata": [
                {"format": "DENSE", "dense_size": d["dense_size"]} if d["format"] == 0 else
                {"format": "SPARSE_CSR", "array_segments": d["array_segments"],
                 "array_indices": d["array_indices"]}
                for d in sp["dim_metadata"]]}


def _sparsity_traversal_order(dump, arrays):
    e = _sparse_entry(dump)
    sp = e["sparsity_parameters"]
    assert sp["traversal_order"] == [0, 1]
    sp["traversal_order"] = [1, 0]
    return _diff(e, "sparsity traversal_order[0]", 0, 1)


def _sparsity_block_map(dump, arrays):
    e = _sparse_entry(dump)
    assert e["sparsity_parameters"]["block_map"] == []
    e["sparsity_parameters"]["block_map"] = [1]
    return _diff(e, "sparsity block_map", [], [1])


def _sparsity_dense_size(dump, arrays):
    e = _sparse_entry(dump)
    level = e["sparsity_parameters"]["dim_metadata"][0]
    assert level["format"] == 0
    level["dense_size"] += 1
    return _diff(e, "sparsity dim_metadata[0].dense_size", level["dense_size"] - 1,
                 level["dense_size"])


def _sparsity_format(dump, arrays):
    e = _sparse_entry(dump)
    level = e["sparsity_parameters"]["dim_metadata"][0]
    level["format"] = 1
    return _diff(e, "sparsity dim_metadata[0].format", "DENSE", "SPARSE_CSR")


def _sparsity_index_vector(key):
    def change(dump, arrays):
        e = _sparse_entry(dump)
        level = e["sparsity_parameters"]["dim_metadata"][1]
        assert level["format"] == 1
        before = level[key][3]
        level[key][3] += 1
        return _diff(e, f"sparsity dim_metadata[1].{key}[3]", before, before + 1)
    change.__name__ = f"_sparsity_{key}"
    return change


def _sparsity_levels(dump, arrays):
    e = _sparse_entry(dump)
    levels = e["sparsity_parameters"]["dim_metadata"]
    levels.append({"format": 0, "dense_size": 1})
    return _diff(e, "sparsity dim_metadata levels", 2, 3)


def _sparsity_dropped(dump, arrays):
    e = _sparse_entry(dump)
    ours = _sparsity_name_form(e["sparsity_parameters"])
    e["sparsity_parameters"] = {}
    return _diff(e, "sparsity parameters", ours, {})


def _sparsity_on_a_dense_tensor(dump, arrays):
    sp = copy.deepcopy(_sparse_entry(dump)["sparsity_parameters"])
    e = next(e for e in dump["tensors"] if not e["sparsity_parameters"])
    e["sparsity_parameters"] = sp
    return _diff(e, "sparsity parameters", {}, sp)


def _signature_part(part):
    def change(dump, arrays):
        sig = dump["signatures"]["serving_default"]
        before = sorted(sig[part])
        sig[part] = sig[part] + ["extra"]
        return Difference(0, None, "serving_default", f"signature {part}", before,
                          sorted(sig[part]))
    change.__name__ = f"_signature_{part}"
    return change


def _signature_index(part):
    def change(dump, arrays):
        details = dump["signature_runners"]["serving_default"][part]
        name, det = next(iter(details.items()))
        det["index"] += 1
        return Difference(0, det["index"] - 1, name, f"signature {part} index",
                          det["index"] - 1, det["index"])
    change.__name__ = f"_signature_{part}_index"
    return change


def _signature_subgraph(dump, arrays):
    runner = dump["signature_runners"]["encode"]
    assert runner["subgraph_index"] == 1
    runner["subgraph_index"] = 0
    return Difference(1, None, "encode", "signature subgraph", 1, 0)


def _signature_keys(dump, arrays):
    before = sorted(dump["signatures"])
    dump["signatures"]["other"] = {"inputs": [], "outputs": []}
    return Difference(0, None, "", "signature keys", before, sorted(dump["signatures"]))


def _subgraph_count(dump, arrays):
    n = dump["num_subgraphs"]
    dump["num_subgraphs"] = n + 1
    return Difference(0, None, "", "subgraph count", n, n + 1)


def _subgraph_exists(dump, arrays):
    dump["other_subgraphs"].append({"subgraph": dump["num_subgraphs"], "tensors": []})
    return Difference(dump["num_subgraphs"], None, "", "subgraph exists", False, True)


def _tensor_exists(dump, arrays):
    e = copy.deepcopy(dump["tensors"][0])
    e["index"] = 1000
    dump["tensors"].append(e)
    return _diff(e, "tensor exists", False, True)


ONE_FIELD = [
    ("ptq_int8", _scale),
    ("ptq_int8", _zero_point),
    ("int16x8", _scale),
    ("depthwise", _quantized_dimension),
    ("ptq_int8", _legacy_per_tensor),
    ("ptq_int8", _legacy_per_channel),
    ("ptq_int8", _described("dtype", lambda d: "uint8")),
    ("ptq_int8", _described("shape", lambda s: s[:-1] + [s[-1] + 1])),
    ("ptq_int8", _described("shape_signature", lambda s: [-1] + s[1:])),
    ("ptq_int8", _described("name", lambda n: n + "_renamed")),
    ("qat_conv", _data_offset),
    ("sparse", _sparse_data_offset),
    ("ptq_int8", _constant_read_as_null),
    ("ptq_int8", _activation_read_as_constant),
    ("ptq_int8", _one_value("i1")),
    ("qat_conv", _one_value("<i4")),
    ("float16", _one_value("<f2")),
    ("int16x8", _one_value("<i8")),
    ("sparse", _one_value("<f4")),       # the stored values of the sparse kernel
    ("sparse_int8", _one_value("i1")),
    ("float16", _swapped_bytes("<f2")),
    ("ptq_int8", _swapped_bytes("<i4")),
    ("int16x8", _swapped_bytes("<i8")),
    ("float16", _big_endian_dtype),
    ("ptq_int8", _value_shape),
    ("sparse", _one_more_sparse_value),
    ("strings", _string_value),
    ("sparse", _sparsity_traversal_order),
    ("sparse", _sparsity_block_map),
    ("sparse", _sparsity_dense_size),
    ("sparse", _sparsity_format),
    ("sparse_int8", _sparsity_index_vector("array_segments")),
    ("sparse", _sparsity_index_vector("array_indices")),
    ("sparse", _sparsity_levels),
    ("sparse", _sparsity_dropped),
    ("sparse", _sparsity_on_a_dense_tensor),
    ("qat_conv", _signature_part("inputs")),
    ("qat_conv", _signature_part("outputs")),
    ("ptq_int8", _signature_index("inputs")),
    ("ptq_int8", _signature_index("outputs")),
    ("multi_signature", _signature_subgraph),
    ("multi_signature", _signature_keys),
    ("control_flow", _subgraph_count),
    ("ptq_int8", _tensor_exists),
    ("control_flow", _subgraph_exists),
]


@pytest.mark.parametrize("name", sorted({name for name, _ in ONE_FIELD}))
def test_every_golden_used_here_matches_unchanged(name):
    dump, arrays = _golden(name)
    report = _compare_golden(name, dump, arrays)
    assert report.ok and report.differences == [], str(report)
    assert report.tensors_compared > 0 and report.values_compared > 0
    assert report.signatures_compared == len(dump["signatures"]) > 0


@pytest.mark.parametrize("name, change", ONE_FIELD,
                         ids=[f"{n}-{c.__name__.strip('_')}" for n, c in ONE_FIELD])
def test_one_changed_field_is_reported_as_exactly_that_difference(name, change):
    dump, arrays = _golden(name)
    dump, arrays = copy.deepcopy(dump), dict(arrays)
    expected = change(dump, arrays)
    report = _compare_golden(name, dump, arrays)
    assert report.differences == [expected], str(report)
    assert not report.ok
    assert str(expected) in str(report)


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
    table = state_module._DTYPE_TABLE.copy()
    table[code] = wrong
    monkeypatch.setattr(state_module, "_DTYPE_TABLE", table)
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
