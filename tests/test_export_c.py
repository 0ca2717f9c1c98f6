"""C header export: compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic and run.

Each test writes a header, generates a C program that prints, for every
array, its element count, a position-weighted checksum of its bytes and a
few sampled values, runs it, and compares with numpy's view of the same
tensors.  The checksum covers the exact bytes, so float literals must
round-trip to the stored bits.
"""

import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import tflite_weights
from tflite_weights.export import select_tensors
from tflite_weights.export.c_header import (
    CExportError,
    _dec_tokens,
    _f32_tokens,
    _f64_tokens,
    c_identifier,
    export_c,
)

from tests.support.builders import ModelBuilder, S
from tests.test_fixedpoint import reference
from tests.support import paths as conftest

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
CORPUS = Path(conftest.CORPUS)


# -- compiling and running ----------------------------------------------------------------

_PRELUDE = r"""
#include <stdio.h>
#include <stddef.h>
static unsigned long long sum_bytes(const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  unsigned long long h = 0;
  size_t i;
  for (i = 0; i < n; i++) h += (unsigned long long)b[i] * (unsigned long long)(i + 1);
  return h;
}
"""

_FMT = {  # C type -> (printf format, cast)
    "int8_t": ("%lld", "(long long)"), "int16_t": ("%lld", "(long long)"),
    "int32_t": ("%lld", "(long long)"), "int64_t": ("%lld", "(long long)"),
    "uint8_t": ("%llu", "(unsigned long long)"), "uint16_t": ("%llu", "(unsigned long long)"),
    "uint32_t": ("%llu", "(unsigned long long)"), "uint64_t": ("%llu", "(unsigned long long)"),
    "float": ("%.9g", "(double)"), "double": ("%.17g", ""),
}


def arrays_in(header_text: str) -> "list[tuple[str, str, int]]":
    """(C type, name, count) of every array defined or declared in the text."""
    pat = re.compile(r"^(?:static |extern )?const (\w+) (\w+)\[(\d+)\]", re.M)
    return [(m.group(1), m.group(2), int(m.group(3))) for m in pat.finditer(header_text)]


def run_c(tmp_path: Path, header: str, arrays, extra_sources=(), main_body: str = "",
          align: "int | None" = None, aligned: "set[str] | None" = None
          ) -> "dict[str, tuple]":
    """Compile a program including ``header`` that prints each array: name, count,
    checksum, alignment ok, first/middle/last values.  Returns name -> fields.

    With ``align``, the program checks at run time that the address of each array
    of ``aligned`` (default: every array) is a multiple of ``align``; the others
    report "aligned" unchecked."""
    lines = [_PRELUDE, f'#include "{header}"', "int main(void) {", "  (void)sum_bytes;"]
    for ctype, name, count in arrays:
        fmt, cast = _FMT[ctype]
        mid = count // 2
        checked = align and (aligned is None or name in aligned)
        al = f"(int)(((size_t){name}) % {align} == 0)" if checked else "1"
        lines.append(
            f'  printf("%s %lu %llu %d {fmt} {fmt} {fmt}\\n", "{name}", '
            f"(unsigned long)(sizeof({name}) / sizeof({name}[0])), "
            f"sum_bytes({name}, sizeof({name})), {al}, "
            f"{cast}{name}[0], {cast}{name}[{mid}], {cast}{name}[{count - 1}]);")
    lines.append(main_body)
    lines.append("  return 0;\n}\n")
    src = tmp_path / "main.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "main"
    cmd = [GCC, *CFLAGS, "-I", str(tmp_path), str(src), *map(str, extra_sources), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 7:
            result[f[0]] = (int(f[1]), int(f[2]), f[3] == "1", f[4], f[5], f[6])
    return result


def checksum(raw: bytes) -> int:
    b = np.frombuffer(raw, np.uint8).astype(np.uint64)
    return int(np.sum(b * np.arange(1, b.size + 1, dtype=np.uint64), dtype=np.uint64))


def _value(text: str, ctype: str):
    if ctype in ("float", "double"):
        return float(text)
    return int(text)


def check_array(res, name, ctype, expected: np.ndarray):
    """``expected``: the values whose bytes the C array must hold."""
    count, csum, aligned, first, mid, last = res[name]
    flat = np.ascontiguousarray(expected).reshape(-1)
    assert count == flat.size, name
    assert csum == checksum(flat.tobytes()), f"{name}: bytes differ"
    assert aligned, f"{name}: not aligned"
    for text, i in ((first, 0), (mid, flat.size // 2), (last, flat.size - 1)):
        want = flat[i]
        got = _value(text, ctype)
        if ctype == "float":
            assert np.float32(got).tobytes() == np.float32(want).tobytes() or \
                (math.isnan(got) and math.isnan(float(want))), (name, i, text, want)
        elif ctype == "double":
            assert got == float(want) or (math.isnan(got) and math.isnan(float(want)))
        else:
            assert got == int(want), (name, i, text, want)


# -- a model with every type ----------------------------------------------------------------


def rich_model() -> bytes:
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    sg = b.subgraph()
    f32 = rng.integers(0, 2 ** 32, 1000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f32 = np.where(np.isfinite(f32), f32, np.float32(1.5)).astype(np.float32)
    f32[:6] = [0.0, -0.0, np.float32(1e-45), np.float32(3.4028235e38), np.inf, -np.inf]
    f32[7] = np.nan
    f64 = rng.integers(0, 2 ** 63, 300, dtype=np.uint64).view(np.float64)
    f64 = np.where(np.isfinite(f64), f64, 2.5)
    f64[:3] = [5e-324, -0.0, np.pi]
    sg.tensor("w/int8", "INT8", [7, 9], rng.integers(-128, 128, 63).astype(np.int8),
              quant=dict(scale=rng.uniform(0.001, 0.1, 7).astype(np.float32),
                         zero_point=[0] * 7, quantized_dimension=0))
    sg.tensor("u8", "UINT8", [33], rng.integers(0, 256, 33).astype(np.uint8),
              quant=dict(scale=[0.0039215689], zero_point=[128]))
    sg.tensor("i16", "INT16", [3, 5], rng.integers(-2 ** 15, 2 ** 15, 15).astype(np.int16))
    sg.tensor("u16", "UINT16", [11], rng.integers(0, 2 ** 16, 11).astype(np.uint16))
    i32 = rng.integers(-2 ** 31, 2 ** 31, 50).astype(np.int32)
    i32[0] = -2 ** 31
    sg.tensor("bias", "INT32", [50], i32,
              quant=dict(scale=rng.uniform(1e-6, 1e-4, 50).astype(np.float32),
                         zero_point=[0] * 50, quantized_dimension=0))
    sg.tensor("i64", "INT64", [4], np.array([-2 ** 63, 2 ** 63 - 1, 0, -5], np.int64))
    sg.tensor("u32", "UINT32", [3], np.array([0, 2 ** 32 - 1, 7], np.uint32))
    sg.tensor("u64", "UINT64", [3], np.array([0, 2 ** 64 - 1, 7], np.uint64))
    sg.tensor("f32", "FLOAT32", [10, 100], f32)
    sg.tensor("f64", "FLOAT64", [300], f64)
    sg.tensor("f16", "FLOAT16", [9], rng.standard_normal(9).astype(np.float16))
    sg.tensor("bf16", "BFLOAT16", [5], np.array([1, -2, 0.5, 3e38, 1e-30], ml_dtypes.bfloat16))
    sg.tensor("f8", "FLOAT8_E4M3FN", [4], np.array([1, -2, 0.5, 448], ml_dtypes.float8_e4m3fn))
    sg.tensor("flags", "BOOL", [6], np.array([1, 0, 1, 1, 0, 0], np.bool_))
    sg.tensor("c64", "COMPLEX64", [3], np.array([1 + 2j, -3.5j, 7], np.complex64))
    sg.tensor("i4", "INT4", [3, 5], bytes([0x21, 0x43, 0xF5, 0x87, 0x9A, 0xBC, 0x0D, 0x7]),
              quant=dict(scale=[0.25], zero_point=[0]))
    sg.tensor("u4", "UINT4", [3], bytes([0x21, 0x0F]))
    sg.tensor("i2", "INT2", [5], bytes([0b11100100, 0b01]))
    strings = [b"hello", b"", b"caf\xc3\xa9"]
    header = np.array([3, 20, 25, 25, 30], np.int32).tobytes()
    sg.tensor("names", "STRING", [3], header + b"".join(strings))
    sg.tensor("act", "INT8", [1, 7], quant=dict(scale=[0.05], zero_point=[-3]))
    return b.finish()


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    d = tmp_path_factory.mktemp("rich")
    p = d / "rich.tflite"
    p.write_bytes(rich_model())
    return p


def _export(model_path, tmp_path, name="m.h", **kw) -> str:
    with tflite_weights.open(model_path) as m, open(tmp_path / name, "wb") as h:
        export_c(m, h, header_name=name, **kw)
    return (tmp_path / name).read_text()


_NP = {"int8_t": "i1", "uint8_t": "u1", "int16_t": "<i2", "uint16_t": "<u2", "int32_t": "<i4",
       "uint32_t": "<u4", "int64_t": "<i8", "uint64_t": "<u8", "float": "<f4", "double": "<f8"}


def _expected_bytes(t, ctype: str) -> np.ndarray:
    """What the C data array of a tensor must hold (packed kept packed), as the
    numpy type of the C element type."""
    if t.type == "STRING":
        return np.frombuffer(b"".join(t.numpy().tolist()), np.uint8)
    if t.type in ("INT4", "UINT4", "INT2"):
        return t.raw()[: -(-t.size * t.type_info.bits // 8)]
    return np.ascontiguousarray(t.numpy()).reshape(-1).view(_NP[ctype])


@needs_gcc
@pytest.mark.parametrize("align", [16, 64, 256])
def test_every_type_compiles_and_holds_the_stored_bytes(rich, tmp_path, align):
    text = _export(rich, tmp_path, prefix="m_", align=align, section=".rodata.weights")
    arrays = arrays_in(text)
    data_names = {n for _, n, _ in arrays if "TFLW_ALIGNED" in _line_of(text, n)}
    res = run_c(tmp_path, "m.h", arrays, align=align, aligned=data_names)
    with tflite_weights.open(rich) as m:
        by_ident = {}
        for t in select_tensors(m):
            by_ident["m_" + c_identifier(t.name)] = t
        for ident, t in by_ident.items():
            ctype = next(c for c, n, _ in arrays if n == ident)
            expected = _expected_bytes(t, ctype)
            check_array(res, ident, ctype, expected)
            assert ident in data_names
            q = t.quantization
            if q is not None and q.scale.size:
                check_array(res, ident + "_scale", "float", np.asarray(q.scale))
                check_array(res, ident + "_zero_point", "int32_t",
                            np.asarray(q.zero_point, np.int32))
            if t.shape:
                check_array(res, ident + "_dims", "int32_t", np.asarray(t.shape, np.int32))
        strings = m["names"].numpy().tolist()
        offs = np.cumsum([0] + [len(s) for s in strings]).astype(np.uint32)
        check_array(res, "m_names_offsets", "uint32_t", offs)
    assert "m_act" not in res  # no stored values: not exported without --all
    assert 'section(".rodata.weights")' in text


def _line_of(text: str, name: str) -> str:
    m = re.search(rf"^.*const \w+ {name}\[.*$", text, re.M)
    return m.group(0)


@needs_gcc
def test_macros_describe_each_tensor(rich, tmp_path):
    _export(rich, tmp_path, prefix="m_")
    prog = """
  printf("%d %d %d %d\\n", M_W_INT8_RANK, M_W_INT8_COUNT, M_W_INT8_BYTES, M_W_INT8_QUANT_COUNT);
  printf("%d %d %d\\n", M_I4_COUNT, M_I4_BYTES, M_I4_BITS);
  printf("%.9g %d\\n", (double)M_U8_SCALE_VALUE, M_U8_ZERO_POINT_VALUE);
  printf("%s %d\\n", M_MODEL_SHA256, M_TENSOR_COUNT);
"""
    src = tmp_path / "macros.c"
    src.write_text(f'#include <stdio.h>\n#include "m.h"\nint main(void) {{\n{prog}  return 0;\n}}\n')
    exe = tmp_path / "macros"
    subprocess.run([GCC, *CFLAGS, str(src), "-o", str(exe)], check=True, cwd=tmp_path)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "2 63 63 7"
    assert out[1] == "15 8 4"
    assert np.float32(float(out[2].split()[0])) == np.float32(0.0039215689)
    assert out[2].endswith(" 128")
    sha, count = out[3].split()
    import hashlib
    assert sha == hashlib.sha256(Path(rich).read_bytes()).hexdigest()
    with tflite_weights.open(rich) as m:
        assert int(count) == len(select_tensors(m))


@needs_gcc
def test_unpacked_sub_byte_types_hold_one_element_per_byte(rich, tmp_path):
    text = _export(rich, tmp_path, prefix="m_", unpack=True)
    arrays = [a for a in arrays_in(text) if a[1] in ("m_i4", "m_u4", "m_i2")]
    res = run_c(tmp_path, "m.h", arrays)
    with tflite_weights.open(rich) as m:
        for name in ("i4", "u4", "i2"):
            t = m[name]
            ctype = next(c for c, n, _ in arrays if n == "m_" + name)
            assert ctype == ("uint8_t" if name == "u4" else "int8_t")
            check_array(res, "m_" + name, ctype, t.numpy())
        assert m["i4"].numpy().reshape(-1)[:4].tolist() == [1, 2, 3, 4]


@needs_gcc
def test_all_adds_tensors_without_values(rich, tmp_path):
    with tflite_weights.open(rich) as m:
        tensors = select_tensors(m, include_all=True)
        with open(tmp_path / "m.h", "wb") as h:
            export_c(m, h, tensors=tensors, prefix="m_")
    text = (tmp_path / "m.h").read_text()
    assert "#define M_ACT_BYTES 0" in text and "m_act[" not in text
    res = run_c(tmp_path, "m.h", [a for a in arrays_in(text) if a[1].startswith("m_act")])
    check_array(res, "m_act_scale", "float", np.array([0.05], np.float32))
    check_array(res, "m_act_zero_point", "int32_t", np.array([-3], np.int32))


@needs_gcc
def test_split_pair_links_and_matches_the_header_only_form(rich, tmp_path):
    with tflite_weights.open(rich) as m:
        with open(tmp_path / "w.h", "wb") as h, open(tmp_path / "w.c", "wb") as c:
            export_c(m, h, c, prefix="m_", header_name="w.h")
    htext = (tmp_path / "w.h").read_text()
    assert "static" not in htext and "extern const int8_t m_w_int8[63]" in htext
    arrays = arrays_in((tmp_path / "w.c").read_text())
    # sizeof() needs the definition: print from a second translation unit via the
    # extern declarations plus known sizes
    res = run_c(tmp_path, "w.h", [], extra_sources=[tmp_path / "w.c"],
                main_body='  printf("%d %d\\n", (int)m_w_int8[0], (int)m_bias[1]);')
    del res
    exe_out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True,
                             check=True).stdout.split()
    with tflite_weights.open(rich) as m:
        assert int(exe_out[0]) == int(m["w/int8"].numpy().reshape(-1)[0])
        assert int(exe_out[1]) == int(m["bias"].numpy()[1])
    assert {n for _, n, _ in arrays} >= {"m_w_int8", "m_bias", "m_f32"}


def test_output_is_deterministic(rich, tmp_path):
    a = _export(rich, tmp_path, "a.h")
    b = _export(rich, tmp_path, "a.h")
    assert a == b
    assert "rich.tflite" in a.splitlines()[0] and str(tmp_path) not in a


def test_large_arrays_take_the_threaded_path_and_stay_in_order(tmp_path, monkeypatch):
    from tflite_weights.export import c_header
    rng = np.random.default_rng(9)
    big = rng.integers(-128, 128, (1 << 23) + 37).astype(np.int8)
    b = ModelBuilder()
    b.subgraph().tensor("big", "INT8", [big.size], big)
    p = tmp_path / "big.tflite"
    p.write_bytes(b.finish())
    monkeypatch.setattr(c_header, "_use_threads", lambda total: False)
    sequential = _export(p, tmp_path, prefix="b_")
    monkeypatch.setattr(c_header, "_use_threads", lambda total: True)
    text = _export(p, tmp_path, prefix="b_")
    assert text == sequential
    body = text[text.index("b_big[") :]
    body = body[body.index("{") + 1: body.index("};")]
    values = np.array(body.replace(",", " ").split(), dtype=np.int64)
    assert np.array_equal(values, big)


# -- identifiers -------------------------------------------------------------------------------


def test_identifiers_are_sanitised_and_unique(tmp_path):
    b = ModelBuilder()
    sg = b.subgraph()
    for name in ("conv/weights", "conv.weights", "conv_weights_scale", "", "3x3", "int",
                 "conv_weights", "tensor"):
        sg.tensor(name, "INT8", [2], np.array([1, 2], np.int8),
                  quant=dict(scale=[0.5], zero_point=[0]))
    sg2 = b.subgraph("second")
    sg2.tensor("conv/weights", "INT8", [1], np.array([3], np.int8))
    p = tmp_path / "n.tflite"
    p.write_bytes(b.finish())
    text = _export(p, tmp_path, prefix="")
    names = [n for _, n, _ in arrays_in(text) if not n.endswith(("_dims", "_scale",
                                                                 "_zero_point"))]
    assert names == ["conv_weights", "conv_weights_2", "conv_weights_scale_2", "tensor_3",
                     "t_3x3", "int_2", "conv_weights_3", "tensor_2", "sg1_conv_weights"]
    if GCC:
        run_c(tmp_path, "m.h", [])


def test_c_identifier():
    assert c_identifier("MobilenetV1/Conv2d_0/weights") == "mobilenetv1_conv2d_0_weights"
    assert c_identifier("__x__") == "x"
    assert c_identifier("") == "tensor"
    assert c_identifier("7up") == "t_7up"


@pytest.mark.parametrize("kw,words", [
    (dict(prefix="9bad"), "prefix"),
    (dict(align=3), "power of two"),
    (dict(align=0), "power of two"),
    (dict(section='a"b'), "section"),
    (dict(section="a b"), "section"),
    (dict(header_name='a"b.h'), "include"),
])
def test_bad_options_are_refused(rich, kw, words):
    with tflite_weights.open(rich) as m, pytest.raises(CExportError, match=words):
        export_c(m, io.BytesIO(), **kw)


# -- number formatting ----------------------------------------------------------------------


def test_float32_text_round_trips_every_finite_pattern_sampled():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2 ** 32, 200000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    text = _f32_tokens(x).tobytes().decode()
    back = np.array(text.replace("f,", " ").split(), dtype=np.float64).astype(np.float32)
    assert np.array_equal(back.view(np.uint32), x.view(np.uint32))


def test_float64_hex_text_round_trips():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2 ** 64, 20000, dtype=np.uint64).view(np.float64)
    x = x[np.isfinite(x)]
    toks = _f64_tokens(x).tobytes().decode().split(",")[:-1]
    back = np.array([float.fromhex(t.strip()) for t in toks])
    assert np.array_equal(back.view(np.uint64), x.view(np.uint64))


def test_integer_text():
    v = np.array([0, 7, -7, 10, -10, 2 ** 63 - 1, -2 ** 63], np.int64)
    text = _dec_tokens(v, 26).tobytes().decode()
    assert [t.strip() for t in text.split(",")[:-1]] == [
        "0", "7", "-7", "10", "-10", "9223372036854775807", "(-9223372036854775807-1)"]


# -- requantization ---------------------------------------------------------------------------


def requant_model() -> bytes:
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "INT8", [1, 4, 4, 3], quant=dict(scale=[0.0235], zero_point=[-1]))
    wc = sg.tensor("conv/w", "INT8", [5, 3, 3, 3], rng.integers(-127, 128, 135).astype(np.int8),
                   quant=dict(scale=rng.uniform(1e-4, 0.05, 5).astype(np.float32),
                              zero_point=[0] * 5, quantized_dimension=0))
    bc = sg.tensor("conv/b", "INT32", [5], np.zeros(5, np.int32))
    y = sg.tensor("y", "INT8", [1, 4, 4, 5], quant=dict(scale=[0.0711], zero_point=[3]))
    opts = S.Conv2DOptionsT()
    opts.strideW = opts.strideH = 1
    sg.op("CONV_2D", [x, wc, bc], [y], options=opts, options_type=S.BuiltinOptions.Conv2DOptions,
          version=3)
    wd = sg.tensor("dw/w", "INT8", [1, 3, 3, 5], rng.integers(-127, 128, 45).astype(np.int8),
                   quant=dict(scale=[0.0123], zero_point=[0], quantized_dimension=3))
    z = sg.tensor("z", "INT8", [1, 4, 4, 5], quant=dict(scale=[2.5], zero_point=[0]))
    dopts = S.DepthwiseConv2DOptionsT()
    dopts.strideW = dopts.strideH = dopts.depthMultiplier = 1
    sg.op("DEPTHWISE_CONV_2D", [y, wd, -1], [z], options=dopts,
          options_type=S.BuiltinOptions.DepthwiseConv2DOptions)
    wf = sg.tensor("fc/w", "INT8", [2, 80], rng.integers(-127, 128, 160).astype(np.int8),
                   quant=dict(scale=[3e-12], zero_point=[0]))
    o = sg.tensor("o", "INT8", [1, 2], quant=dict(scale=[0.5], zero_point=[0]))
    sg.op("FULLY_CONNECTED", [z, wf, -1], [o])
    wfloat = sg.tensor("float/w", "FLOAT32", [2, 80], np.zeros(160, np.float32))
    sg.op("FULLY_CONNECTED", [z, wfloat, -1], [o])
    return b.finish()


@needs_gcc
def test_requantization_matches_the_reference(tmp_path):
    p = tmp_path / "rq.tflite"
    p.write_bytes(requant_model())
    text = _export(p, tmp_path, prefix="r_", requant=True)
    arrays = [a for a in arrays_in(text) if a[1].startswith("r_op")]
    assert [n for _, n, _ in arrays] == ["r_op0_multiplier", "r_op0_shift", "r_op1_multiplier",
                                        "r_op1_shift", "r_op2_multiplier", "r_op2_shift"]
    res = run_c(tmp_path, "m.h", arrays)
    with tflite_weights.open(p) as m:
        cases = [(0, "x", "conv/w", "y", 5), (1, "y", "dw/w", "z", 5), (2, "z", "fc/w", "o", 1)]
        for op, xi, wi, yi, n in cases:
            sx = float(m[xi].quantization.scale[0])
            sy = float(m[yi].quantization.scale[0])
            ws = m[wi].quantization.scale.tolist()
            if len(ws) == 1:
                ws = ws * n
            want = [reference(sx * w / sy) for w in ws]
            check_array(res, f"r_op{op}_multiplier", "int32_t",
                        np.array([q for q, _ in want], np.int32))
            check_array(res, f"r_op{op}_shift", "int32_t",
                        np.array([s for _, s in want], np.int32))
        # op 2: 0.0 7-ish * 3e-12 / 0.5 is below 2**-31: flushed to zero
        assert res["r_op2_multiplier"][3] == "0"
    assert "FLOAT32" not in "".join(n for _, n, _ in arrays)
    assert "operator 0:3" not in text  # float weights: no requantization


# -- the corpus ---------------------------------------------------------------------------


@needs_gcc
@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus")
@pytest.mark.parametrize("split", [False, True])
def test_person_detect_header_compiles(tmp_path, split):
    model = CORPUS / "tflm_person_detect.tflite"
    with tflite_weights.open(model) as m:
        if split:
            with open(tmp_path / "pd.h", "wb") as h, open(tmp_path / "pd.c", "wb") as c:
                export_c(m, h, c, header_name="pd.h", requant=True)
        else:
            with open(tmp_path / "pd.h", "wb") as h:
                export_c(m, h, header_name="pd.h", requant=True)
        text = (tmp_path / ("pd.c" if split else "pd.h")).read_text()
        arrays = arrays_in(text)
        weights = [t for t in select_tensors(m) if t.type == "INT8"][0]
        ident = "tflm_person_detect_" + c_identifier(weights.name)
        expected = np.array(weights.numpy())
    if split:
        r = subprocess.run([GCC, *CFLAGS, "-c", str(tmp_path / "pd.c"), "-o",
                            str(tmp_path / "pd.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return
    res = run_c(tmp_path, "pd.h", arrays, align=16)
    assert len(res) == len(arrays)
    check_array(res, ident, "int8_t", expected)


@needs_gcc
@pytest.mark.parametrize("align", [64, 256])
def test_the_command_line_alignment_reaches_the_compiled_arrays(tmp_path, align):
    """``--align N`` is checked where it matters: the address of every data array in
    a compiled program (16 would pass by luck on x86-64, whose default is 16)."""
    from tflite_weights.cli import main
    out = tmp_path / "ptq.h"
    assert main(["export", str(conftest.FIXTURES + "/ptq_int8.tflite"), "--format", "c",
                 "--align", str(align), "--prefix", "p_", "-o", str(out), "-q"]) == 0
    text = out.read_text()
    arrays = arrays_in(text)
    data = {n for _, n, _ in arrays if "TFLW_ALIGNED" in _line_of(text, n)}
    with tflite_weights.open(conftest.FIXTURES + "/ptq_int8.tflite") as m:
        assert len(data) == len(select_tensors(m)) == 5
    res = run_c(tmp_path, "ptq.h", arrays, align=align, aligned=data)
    assert sorted(n for n in data if not res[n][2]) == []
