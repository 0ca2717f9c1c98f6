"""npz and JSON exports: bit-exact round trips, documented keys, exact floats."""

import io
import json
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import tflite_weights
from tflite_weights.export import select_tensors
from tflite_weights.export.json_export import export_json, json_values, tensor_record
from tflite_weights.export.npz import META_KEY, export_npz, npz_key

from tests.support.builders import ModelBuilder
from tests.test_export_c import rich_model
from tests.support import paths as conftest

CORPUS = Path(conftest.CORPUS)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    p = tmp_path_factory.mktemp("npz") / "rich.tflite"
    p.write_bytes(rich_model())
    return p


def _load(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop(META_KEY)))
    return arrays, meta


# -- npz ------------------------------------------------------------------------------------


def test_npz_round_trip_is_bit_exact(rich, tmp_path):
    out = tmp_path / "w.npz"
    with tflite_weights.open(rich) as m:
        export_npz(m, out)
        arrays, meta = _load(out)
        for t in select_tensors(m):
            key = npz_key(t.name, t.subgraph, t.index)
            entry = meta["tensors"][key]
            assert entry["name"] == t.name and entry["type"] == t.type
            got = arrays[key]
            v = t.numpy()
            if t.type == "STRING":
                offs = arrays[key + "__offsets"]
                strings = [got[offs[i]:offs[i + 1]].tobytes() for i in range(offs.size - 1)]
                assert strings == v.reshape(-1).tolist()
            elif t.type in ("BFLOAT16", "FLOAT8_E4M3FN"):
                assert got.dtype == (np.uint16 if t.type == "BFLOAT16" else np.uint8)
                assert got.tobytes() == np.ascontiguousarray(v).tobytes()
            else:
                assert got.dtype == v.dtype and got.shape == v.shape
                assert got.tobytes() == np.ascontiguousarray(v).tobytes()  # NaN included
            q = t.quantization
            if q is not None and q.scale.size:
                assert arrays[key + "__scale"].tobytes() == np.asarray(q.scale, "<f4").tobytes()
                assert arrays[key + "__zero_point"].tolist() == q.zero_point.tolist()
                assert int(arrays[key + "__quantized_dimension"]) == q.quantized_dimension
    assert meta["format_version"] == 1 and meta["source"]["file"] == "rich.tflite"


def test_npz_dequantize_and_all(rich, tmp_path):
    out = tmp_path / "w.npz"
    with tflite_weights.open(rich) as m:
        export_npz(m, out, tensors=select_tensors(m, include_all=True), dequantize=True)
        arrays, meta = _load(out)
        assert np.array_equal(arrays["w/int8__dequantized"], m["w/int8"].dequantize())
        assert np.array_equal(arrays["i4__dequantized"], m["i4"].dequantize())
    assert "act" not in arrays and "act__scale" in arrays  # no values, parameters kept
    assert meta["tensors"]["act"]["arrays"] == ["act__scale", "act__zero_point",
                                                "act__quantized_dimension"]


def test_npz_keys_are_sanitised_unique_and_safe():
    assert npz_key("conv/w:0", 0, 3) == "conv/w_0"
    assert npz_key("../../etc/passwd", 0, 1) == "__/__/etc/passwd"
    assert npz_key("/abs", 0, 1) == "abs"
    assert npz_key("", 0, 7) == "tensor_7"
    assert npz_key("x", 2, 0) == "sg2/x"
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("x__scale", "FLOAT32", [1], np.ones(1, np.float32))
    sg.tensor("x", "INT8", [1], np.ones(1, np.int8), quant=dict(scale=[0.5], zero_point=[0]))
    sg.tensor("x", "INT8", [1], np.ones(1, np.int8))
    buf = io.BytesIO()
    with tflite_weights.open(b.finish()) as m:
        summary = export_npz(m, buf)
    assert summary["keys"] == ["x__scale", "x#1", "x#2"]
    buf.seek(0)
    names = zipfile.ZipFile(buf).namelist()
    assert "x#1__scale.npy" in names and "x__scale.npy" in names


def test_npz_output_is_deterministic(rich, tmp_path):
    with tflite_weights.open(rich) as m:
        export_npz(m, tmp_path / "a.npz")
        export_npz(m, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    info = zipfile.ZipFile(tmp_path / "a.npz").infolist()[0]
    assert info.date_time == (1980, 1, 1, 0, 0, 0)


# -- JSON ------------------------------------------------------------------------------------


def test_json_floats_are_exact_and_non_finite_values_are_strings():
    x = np.array([0.1, -2.5, 1e-45, np.inf, -np.inf, np.nan], np.float32)
    got = json_values(x)
    text = json.dumps(got, allow_nan=False)
    back = json.loads(text)
    for a, b in zip(back[:3], x[:3]):
        assert np.float32(a).tobytes() == b.tobytes()
    assert back[3:] == ["Infinity", "-Infinity", "NaN"]
    assert json_values(np.array([1 + 2j], np.complex64)) == [[1.0, 2.0]]
    assert json_values(np.array([1.5], ml_dtypes.bfloat16)) == [1.5]


def test_json_export_records_and_values(rich, tmp_path):
    buf = io.StringIO()
    with tflite_weights.open(rich) as m:
        export_json(m, buf, values=True, dequantize=True)
        doc = json.loads(buf.getvalue())
        assert doc["format_version"] == 1
        assert doc["model"]["file"] == "rich.tflite" and len(doc["model"]["sha256"]) == 64
        by_name = {t["name"]: t for t in doc["tensors"]}
        w = by_name["w/int8"]
        assert w["values"] == m["w/int8"].numpy().tolist()
        assert w["quantization"]["scale"] == [float(s) for s in m["w/int8"].quantization.scale]
        assert w["quantization"]["summary"] == "per-channel(7) axis=0"
        assert np.array_equal(np.array(w["dequantized"], np.float32), m["w/int8"].dequantize())
        f = np.array([v if not isinstance(v, str) else np.nan
                      for row in by_name["f32"]["values"] for v in row], np.float32)
        ref = m["f32"].numpy().reshape(-1)
        finite = np.isfinite(ref)
        assert f[finite].tobytes() == ref[finite].tobytes()
        assert by_name["names"]["values"] == ["hello", "", "café"]
        assert by_name["names"]["values_encoding"] == "utf-8"
        assert by_name["i4"]["values"] == m["i4"].numpy().tolist()
        assert by_name["w/int8"]["data_offset"] == m["w/int8"].data_offset


def test_json_without_values_has_metadata_only(rich):
    buf = io.StringIO()
    with tflite_weights.open(rich) as m:
        export_json(m, buf)
    doc = json.loads(buf.getvalue())
    assert all("values" not in t for t in doc["tensors"])
    assert {"shape", "type", "buffer", "quantization", "nbytes", "has_data"} <= set(
        doc["tensors"][0])


def test_tensor_record_of_an_activation():
    b = ModelBuilder()
    b.subgraph().tensor("a", "INT8", [1, 2], quant=dict(scale=[0.5], zero_point=[1]))
    with tflite_weights.open(b.finish()) as m:
        rec = tensor_record(m["a"], values=True)
    assert rec["has_data"] is False and rec["data_offset"] is None and "values" not in rec


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus")
def test_corpus_person_detect_round_trips(tmp_path):
    with tflite_weights.open(CORPUS / "tflm_person_detect.tflite") as m:
        export_npz(m, tmp_path / "pd.npz")
        arrays, meta = _load(tmp_path / "pd.npz")
        n = 0
        for t in select_tensors(m):
            key = npz_key(t.name, t.subgraph, t.index)
            assert arrays[key].tobytes() == np.ascontiguousarray(t.numpy()).tobytes()
            n += 1
    assert n == len(meta["tensors"]) > 50
