"""The command line: output, exit codes (0 ok, 1 invalid model or differences, 2 usage),
one-line errors, and the files it writes."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tflite_weights
from tflite_weights.format import schema as _schema
from tflite_weights.cli import main

from tests.support.builders import ModelBuilder
from tests.support import paths as conftest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(conftest.CORPUS)
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def small_model(**values) -> bytes:
    b = ModelBuilder(description="small")
    sg = b.subgraph("main")
    x = sg.tensor("input", "INT8", [1, 4], quant=dict(scale=[0.5], zero_point=[-1]))
    w = sg.tensor("fc/weights", "INT8", [3, 4],
                  values.get("w", np.arange(12, dtype=np.int8) - 6),
                  quant=dict(scale=[0.1, 0.2, 0.3], zero_point=[0, 0, 0],
                             quantized_dimension=0))
    bias = sg.tensor("fc/bias", "INT32", [3], values.get("b", np.array([1, -2, 3], np.int32)),
                     quant=dict(scale=[0.05, 0.1, 0.15], zero_point=[0, 0, 0]))
    y = sg.tensor("output", "INT8", [1, 3], quant=dict(scale=[0.25], zero_point=[2]))
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    sg.op("FULLY_CONNECTED", [x, w, bias], [y], version=4)
    b.signature("serving_default", 0, {"in": x}, {"out": y})
    b.add_metadata("min_runtime_version", b"1.14.0\0\0\0\0\0\0\0\0\0\0")
    return b.finish()


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "small.tflite"
    p.write_bytes(small_model())
    return p


# -- inspect -----------------------------------------------------------------------------------


def test_inspect_text(capsys, model):
    code, out, err = run(capsys, "inspect", model)
    assert code == 0 and err == ""
    assert "file         small.tflite" in out and "description  small" in out
    assert "min runtime  1.14.0" in out
    assert "signature 'serving_default' (subgraph 0)" in out and "in=0" in out
    assert "subgraph 0 'main': 4 tensors, 1 operators" in out
    row = next(line for line in out.splitlines() if line.endswith("fc/weights"))
    assert row.split()[:6] == ["1", "INT8", "[3,4]", "per-channel(3)", "axis=0", "12"]
    row = next(line for line in out.splitlines() if line.endswith(" input"))
    assert "scale=0.5 zp=-1" in row and " - " in row


def test_inspect_ops_and_subgraph(capsys, model):
    code, out, _ = run(capsys, "inspect", model, "--ops", "--subgraph", "0")
    assert code == 0
    assert "FULLY_CONNECTED v4  [0,1,2] -> [3]" in out
    code, _, err = run(capsys, "inspect", model, "--subgraph", "3")
    assert code == 2 and "subgraph 3 does not exist" in err


def test_inspect_json_schema(capsys, model):
    code, out, _ = run(capsys, "inspect", model, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["format_version"] == 1
    assert doc["model"] == {"file": "small.tflite", "size": model.stat().st_size, "version": 3,
                            "description": "small", "subgraph_count": 1, "buffer_count": 6,
                            "min_runtime_version": "1.14.0"}
    sg = doc["subgraphs"][0]
    assert sg["inputs"] == [0] and sg["outputs"] == [3]
    w = sg["tensors"][1]
    assert w["name"] == "fc/weights" and w["shape"] == [3, 4] and w["type"] == "INT8"
    assert w["has_data"] is True and isinstance(w["data_offset"], int) and w["nbytes"] == 12
    assert w["quantization"]["scale"] == [float(np.float32(s)) for s in (0.1, 0.2, 0.3)]
    assert w["quantization"]["quantized_dimension"] == 0
    assert sg["tensors"][0]["has_data"] is False and sg["tensors"][0]["data_offset"] is None
    op = sg["operators"][0]
    assert op["opcode"] == "FULLY_CONNECTED" and op["inputs"] == [0, 1, 2] and op["version"] == 4
    assert doc["signatures"] == [{"key": "serving_default", "subgraph": 0, "inputs": {"in": 0},
                                  "outputs": {"out": 3}}]
    assert doc["metadata"]["min_runtime_version"] == "1.14.0"
    assert doc["errors"] == []


def _damage_tensor_name(data: bytes, index: int) -> bytes:
    """Point tensor ``index``'s name offset far outside the file."""
    d = bytearray(data)
    with tflite_weights.open(bytes(d)) as m:
        root = m._state.root
        sg = root.tables(_schema.slots("Model", "subgraphs")[0], "s")[0]
        t = sg.tables(_schema.slots("SubGraph", "tensors")[0], "t")[index]
        pos = t.field_pos(_schema.slots("Tensor", "name")[0])
    struct.pack_into("<I", d, pos, 0x7FFFFF00)
    return bytes(d)


def test_a_damaged_tensor_shows_its_error_and_fails_at_the_end(capsys, tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(_damage_tensor_name(small_model(), 2))
    code, out, err = run(capsys, "inspect", p)
    assert code == 1
    lines = out.splitlines()
    assert any(line.strip().startswith("2  error:") for line in lines)
    assert any(line.endswith("fc/weights") for line in lines)  # the others still show
    assert err.startswith("tflite-weights: error: subgraph 0 tensor 2: ")
    assert len(err.splitlines()) == 1
    code, out, _ = run(capsys, "inspect", p, "--json")
    doc = json.loads(out)
    assert code == 1 and "error" in doc["subgraphs"][0]["tensors"][2]
    assert doc["errors"][0]["where"] == "subgraph 0 tensor 2"


# -- show -------------------------------------------------------------------------------------


def test_show_by_name_and_index(capsys, model):
    code, out, _ = run(capsys, "show", model, "fc/weights")
    assert code == 0
    assert "tensor 0:1 'fc/weights'" in out and "per-channel(3) axis=0" in out
    assert "stored        min -6  max 5  mean -0.5  zeros 1 of 12" in out
    assert out.splitlines()[-3:] == ["[[-6 -5 -4 -3]", " [-2 -1  0  1]", " [ 2  3  4  5]]"]
    assert "dequantized   min -0.6" in out
    code, out2, _ = run(capsys, "show", model, "1")
    assert code == 0 and out2 == out


def test_show_limit_and_no_data(capsys, model):
    code, out, _ = run(capsys, "show", model, "fc/weights", "--limit", "5")
    assert code == 0 and "[-6 -5 -4 -3 -2]" in out and "(first 5 of 12 values" in out
    code, out, _ = run(capsys, "show", model, "input")
    assert code == 0 and "no stored values" in out and "values" not in out.splitlines()[-1]


def test_show_unknown_tensor_is_a_usage_error(capsys, model):
    code, out, err = run(capsys, "show", model, "fc/weight")
    assert code == 2 and out == ""
    assert err == ("tflite-weights: error: subgraph 0 has no tensor named 'fc/weight'; close "
                   "names: 'fc/weights'\n")


# -- export -----------------------------------------------------------------------------------


def test_export_c_to_a_file_and_to_stdout(capsys, model, tmp_path):
    out_h = tmp_path / "weights.h"
    code, out, err = run(capsys, "export", model, "--format", "c", "--output", out_h)
    assert code == 0 and out == "" and err == ""
    text = out_h.read_text()
    assert "static const int8_t small_fc_weights[12]" in text
    assert "#ifndef TFLW_WEIGHTS_H_" in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tflw-")] == []
    code, out, _ = run(capsys, "export", model, "--format", "c", "--output", "-")
    assert code == 0 and "static const int8_t small_fc_weights[12]" in out


def test_export_c_options(capsys, model, tmp_path):
    base = tmp_path / "w.h"
    code, _, _ = run(capsys, "export", model, "--format", "c", "-o", base, "--split",
                     "--prefix", "nn_", "--align", "32", "--section", ".rodata.nn",
                     "--requant", "--tensors", "fc/*")
    assert code == 0
    h, c = (tmp_path / "w.h").read_text(), (tmp_path / "w.c").read_text()
    assert "extern const int8_t nn_fc_weights[12] TFLW_ALIGNED(32) TFLW_SECTION;" in h
    assert '#include "w.h"' in c and 'section(".rodata.nn")' in h
    assert "nn_op0_multiplier" in h and "nn_output" not in h


@pytest.mark.parametrize("args,words", [
    (["--format", "npz", "-o", "-"], "stdout"),
    (["--format", "c", "-o", "-", "--split"], "stdout"),
    (["--format", "json", "-o", "x.json", "--split"], "--split applies to --format c"),
    (["--format", "c", "-o", "x.h", "--values"], "--values applies to --format json"),
    (["--format", "c", "-o", "x.h", "--prefix", "1x"], "prefix"),
    (["--format", "c", "-o", "x.h", "--align", "12"], "power of two"),
    (["--format", "c", "-o", "x.h", "--tensors", "nothing*"], "no tensor matches 'nothing*'"),
    (["--format", "pdf", "-o", "x"], "invalid choice"),
    (["-o", "x"], "--format"),
])
def test_export_usage_errors(capsys, model, tmp_path, args, words):
    os.chdir(tmp_path)
    code, out, err = run(capsys, "export", model, *args)
    assert code == 2 and words in err and len(err.splitlines()) == 1
    assert err.startswith("tflite-weights: error: ")
    assert not (tmp_path / "x.h").exists()


def test_export_npz_and_json(capsys, model, tmp_path):
    code, _, _ = run(capsys, "export", model, "--format", "npz", "-o", tmp_path / "w.npz",
                     "--dequantize", "--all")
    assert code == 0
    with np.load(tmp_path / "w.npz") as z:
        assert z["fc/weights"].tolist() == (np.arange(12) - 6).reshape(3, 4).tolist()
        assert "input__scale" in z.files and "input" not in z.files
        assert z["fc/weights__dequantized"].dtype == np.float32
    code, out, _ = run(capsys, "export", model, "--format", "json", "-o", "-", "--values",
                       "--tensors", "fc/bias")
    doc = json.loads(out)
    assert code == 0 and [t["name"] for t in doc["tensors"]] == ["fc/bias"]
    assert doc["tensors"][0]["values"] == [1, -2, 3]


def test_export_progress_only_on_a_terminal(capsys, model, tmp_path, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = run(capsys, "export", model, "--format", "c", "-o", tmp_path / "a.h")
    assert code == 0 and "\rexport c: 100.0%" in err and "wrote " in err
    code, _, err = run(capsys, "export", model, "--format", "c", "-o", tmp_path / "a.h", "-q")
    assert code == 0 and err == ""


def test_a_failed_export_leaves_no_file(capsys, model, tmp_path, monkeypatch):
    from tflite_weights.export import c_header

    def boom(*a, **k):
        raise tflite_weights.InvalidModelError("damaged on purpose")
    monkeypatch.setattr(c_header, "export_c", boom)
    code, _, err = run(capsys, "export", model, "--format", "c", "-o", tmp_path / "a.h")
    assert code == 1 and "damaged on purpose" in err
    assert list(tmp_path.iterdir()) == [model]


# -- verify -------------------------------------------------------------------------------------


def test_verify_sound_and_damaged(capsys, model, tmp_path):
    code, out, err = run(capsys, "verify", model)
    assert code == 0 and out == "small.tflite: sound\n" and err == ""
    bad = tmp_path / "bad.tflite"
    d = bytearray(small_model())
    d[0:4] = b"\0\0\0\0"
    bad.write_bytes(bytes(d))
    code, out, err = run(capsys, "verify", bad)
    assert code == 1 and out == ""
    assert err == ("tflite-weights: error: bad.tflite: Model (root offset): offset is 0 (it "
                   "would point at itself) (byte 0)\n")


def test_verify_all_lists_every_defect(capsys, tmp_path):
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("a", "INT8", [4], np.zeros(2, np.int8), buffer=None)
    sg.tensor("b", "INT8", [2], quant=dict(scale=[0.5, 0.5], zero_point=[0]))
    p = tmp_path / "two.tflite"
    p.write_bytes(b.finish())
    code, _, err = run(capsys, "verify", p)
    assert code == 1 and "(1 more defect; --all lists them)" in err
    code, _, err = run(capsys, "verify", p, "--all")
    assert code == 1 and len(err.splitlines()) == 2


@needs_corpus
def test_verify_corpus(capsys):
    code, out, err = run(capsys, "verify", CORPUS / "litert_invalid_model.bin")
    assert code == 1 and "not a TFLite model" in err
    code, out, err = run(capsys, "verify", CORPUS / "tflm_person_detect.tflite")
    assert code == 0 and out.startswith("tflm_person_detect.tflite: sound, 14 warnings")
    code, out, err = run(capsys, "verify", CORPUS / "tflm_person_detect.tflite", "--all")
    assert code == 0 and err.count("tflite-weights: warning: ") == 14


# -- diff ---------------------------------------------------------------------------------------


def test_diff(capsys, model, tmp_path):
    code, out, _ = run(capsys, "diff", model, model)
    assert code == 0 and out == "no differences\n"
    other = tmp_path / "other.tflite"
    w = np.arange(12, dtype=np.int8) - 6
    w[5] += 3
    other.write_bytes(small_model(w=w))
    code, out, _ = run(capsys, "diff", model, other)
    assert code == 1
    line = next(x for x in out.splitlines() if "fc/weights" in x)
    assert "values differ at 1 of 12 elements, max |a-b| = 3" in line
    assert "dequantized max |a-b| = 0.6" in line


def test_diff_added_removed_and_retyped(capsys, tmp_path):
    def build(names, types):
        b = ModelBuilder()
        sg = b.subgraph()
        for n, t in zip(names, types):
            sg.tensor(n, t, [2], np.zeros(2, np.float32 if t == "FLOAT32" else np.int8))
        return b.finish()
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    a.write_bytes(build(["x", "y", "", ""], ["INT8", "INT8", "INT8", "INT8"]))
    b.write_bytes(build(["x", "z", "", ""], ["FLOAT32", "INT8", "INT8", "FLOAT32"]))
    code, out, _ = run(capsys, "diff", a, b)
    assert code == 1
    assert "  - removed  1 'y' INT8 [2]" in out
    assert "  + added    1 'z' INT8 [2]" in out
    assert "  ~ changed  0 'x': type INT8 -> FLOAT32" in out
    assert "  ~ changed  3 '': type INT8 -> FLOAT32" in out  # unnamed: matched by index
    assert " 2 ''" not in out


# -- errors and the entry points ----------------------------------------------------------------


def test_missing_and_invalid_files_are_one_line_errors(capsys, tmp_path):
    code, out, err = run(capsys, "inspect", tmp_path / "missing.tflite")
    assert code == 1 and err == f"tflite-weights: error: {tmp_path / 'missing.tflite'}: No such " \
                                "file or directory\n"
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"This is not a model at all.")
    code, out, err = run(capsys, "show", junk, "x")
    assert code == 1 and len(err.splitlines()) == 1 and "file identifier" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "inspect", tmp_path / "missing.tflite", "--debug")
    assert code == 1 and "Traceback" in err and err.endswith("No such file or directory\n")


def test_internal_errors_are_one_line_without_debug(capsys, model, monkeypatch):
    from tflite_weights import cli

    def broken(args):
        raise RuntimeError("a bug")
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with(parser, "inspect", broken))
    code, _, err = run(capsys, "inspect", model)
    assert code == 1 and err == ("tflite-weights: error: internal error: RuntimeError: a bug "
                                 "(--debug shows the traceback)\n")


def _with(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["inspect"], ["inspect", "m", "--nope"]])
def test_usage_errors_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tflite-weights: error: ") and len(err.splitlines()) == 1


def test_python_dash_m_and_the_console_script_entry(model):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "tflite_weights", "--version"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == f"tflite-weights {tflite_weights.__version__}"
    r = subprocess.run([sys.executable, "-m", "tflite_weights", "verify", str(model)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "sound" in r.stdout
    cfg = (ROOT / "setup.cfg").read_text()
    assert "tflite-weights = tflite_weights.cli:main" in cfg


def test_a_missing_module_of_the_package_is_an_error_not_a_silent_gap(capsys, tmp_path,
                                                                     monkeypatch):
    """The package's own modules are not optional: were one missing from an install,
    ``inspect --ops`` must fail loudly instead of printing a model without its
    operators."""
    monkeypatch.setitem(sys.modules, "tflite_weights.operators", None)  # import raises
    p = tmp_path / "small.tflite"
    p.write_bytes(small_model())
    code, out, err = run(capsys, "inspect", p, "--ops")
    assert code == 1 and "internal error: ModuleNotFoundError" in err
