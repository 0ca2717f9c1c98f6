"""Rules of docs/format.md that no other test pinned: buffers, quantization.

Each test pins one statement of the page, which names the test in brackets.
"""

from __future__ import annotations

import os
import struct

import ml_dtypes
import numpy as np
import pytest

import tflite_weights as tw

from tests.support.builders import ModelBuilder, run_interpreter, single_tensor_model
from tests.support.paths import CORPUS, FIXTURES

# -- Buffers: where values are, and what "no data" means -----------------------------------


def test_buffer_zero_means_no_data_even_when_the_sentinel_holds_bytes():
    b = ModelBuilder()
    b.m.buffers[0].data = np.frombuffer(b"\1\2\3\4", np.uint8)
    b.subgraph().tensor("t", "INT8", [4], buffer=0)
    with tw.open(b.finish()) as m:
        t = m["t"]
        assert t.buffer == 0 and not t.has_data
        with pytest.raises(tw.NoDataError):
            t.numpy()


def _data_and_offset_model() -> bytes:
    """ADD(x, c): c's buffer holds [1, 2, 3, 4] in ``data`` while its offset and size
    point at [10, 20, 30, 40], appended after the flatbuffer."""
    placeholder = 0x7EADBEEF00000000
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [4])
    c = sg.tensor("c", "FLOAT32", [4], np.array([1, 2, 3, 4], np.float32))
    y = sg.tensor("y", "FLOAT32", [4])
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    sg.op("ADD", [x, c], [y])
    buf = b.m.buffers[sg.sg.tensors[c].buffer]
    buf.offset, buf.size = placeholder + 1, placeholder + 2
    d = bytearray(b.finish())
    d += b"\0" * (-len(d) % 16)
    at = len(d)
    d += np.array([10, 20, 30, 40], np.float32).tobytes()
    for value, real in ((placeholder + 1, at), (placeholder + 2, 16)):
        pos = d.find(struct.pack("<Q", value))
        assert pos > 0
        d[pos:pos + 8] = struct.pack("<Q", real)
    return bytes(d)


def test_buffer_data_wins_over_its_offset():
    data = _data_and_offset_model()
    with tw.open(data) as m:
        c = m["c"]
        assert m.buffer(c.buffer).location == "inline"
        assert c.numpy().tolist() == [1, 2, 3, 4]
    # the runtime reads the same bytes: x + c with x = 0
    (out,) = run_interpreter(data, [np.zeros(4, np.float32)])
    assert out.tolist() == [1, 2, 3, 4]


def test_an_empty_data_vector_where_the_shape_needs_bytes_is_no_data():
    """Read as no data; the runtime refuses such a constant (ADD(x, c) with c's data
    vector present and empty)."""
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [4])
    c = sg.tensor("c", "FLOAT32", [4], b"")
    y = sg.tensor("y", "FLOAT32", [4])
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    sg.op("ADD", [x, c], [y])
    data = b.finish()
    with tw.open(data) as m:
        t = m["c"]
        assert t.buffer != 0 and m.buffer(t.buffer).size == 0  # present, and empty
        assert not t.has_data
        with pytest.raises(tw.NoDataError):
            t.numpy()
    with pytest.raises(RuntimeError, match="required_bytes <= bytes"):
        run_interpreter(data, [np.zeros(4, np.float32)])


def test_a_buffer_longer_than_the_shape_needs_is_read_from_its_start():
    raw = np.array([7, -8, 9], np.int16).tobytes()
    with tw.open(single_tensor_model("INT16", [2], raw)) as m:
        t = m["t"]
        assert t.numpy().tolist() == [7, -8]
        assert t.nbytes == 4


# -- Quantization ----------------------------------------------------------------------------

_DIMENSION = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
_BIAS_TYPE = {"INT8": "INT32", "INT16": "INT64"}


def _quantized_models():
    paths = [os.path.join(FIXTURES, f) for f in sorted(os.listdir(FIXTURES))
             if f.endswith(".tflite")]
    if os.path.isdir(CORPUS):
        paths += [os.path.join(CORPUS, f) for f in sorted(os.listdir(CORPUS))
                  if f.endswith((".tflite", ".bin")) and f != "litert_invalid_model.bin"]
    return paths


def test_the_converters_axes_and_bias_parameters():
    """In every fixture and corpus model with integer activations: per-channel weights of
    CONV_2D and FULLY_CONNECTED are quantized along axis 0, of DEPTHWISE_CONV_2D along
    axis 3, one scale per index; biases are INT32 (INT64 under INT16 activations) with
    scale ``input_scale * weight_scale[c]`` and zero point 0."""
    seen = set()
    for path in _quantized_models():
        with tw.open(path) as m:
            for op in (op for sg in m.subgraphs for op in sg.operators):
                if op.opcode not in _DIMENSION:
                    continue
                x, w, *rest = op.input_tensors
                bias = rest[0] if rest else None
                wq, xq = w.quantization, x.quantization
                if not (w.has_data and wq is not None and wq.scale.size
                        and xq is not None and xq.scale.size):
                    continue  # float, or dynamic-range (float activations)
                where = (os.path.basename(path), op.index, op.opcode)
                if wq.scale.size > 1:
                    axis = _DIMENSION[op.opcode]
                    assert wq.quantized_dimension == axis, where
                    assert wq.scale.size == w.shape[axis], where
                    seen.add((op.opcode, "per-channel"))
                if bias is not None and bias.has_data and bias.quantization is not None:
                    bq = bias.quantization
                    assert bias.type == _BIAS_TYPE[x.type], where
                    np.testing.assert_allclose(
                        bq.scale, np.float32(xq.scale[0]) * wq.scale, rtol=1e-6, err_msg=str(where))
                    assert not bq.zero_point.any(), where
                    seen.add(("bias", bias.type))
    assert seen >= {("CONV_2D", "per-channel"), ("DEPTHWISE_CONV_2D", "per-channel"),
                    ("FULLY_CONNECTED", "per-channel"), ("bias", "INT32"), ("bias", "INT64")}


def test_dequantize_rounds_once_from_float64():
    """Large int32 values: the float64 product rounded once, not float32 arithmetic
    (which rounds the value, then the product)."""
    q = np.array([2**31 - 1, 2**30 + 1, 123456789, -2**31 + 3, 16777217], np.int32)
    scale, zp = np.float32(0.1), 5
    with tw.open(single_tensor_model("INT32", [q.size], q, quant=dict(
            scale=[scale], zero_point=[zp]))) as m:
        out = m["t"].dequantize()
    exact = ((q.astype(np.float64) - zp) * np.float64(scale)).astype(np.float32)
    in_float32 = (q.astype(np.float32) - np.float32(zp)) * scale
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, exact)
    assert np.any(exact != in_float32)  # the values tell the two ways apart


@pytest.mark.parametrize("tname,dtype", [("INT8", np.int8), ("INT16", np.int16)])
def test_int8_and_int16_dequantize_equals_float32_arithmetic(tname, dtype):
    q = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, dtype=dtype)
    for scale, zp in ((np.float32(0.1), 0), (np.float32(3.0517578e-05), -7),
                      (np.float32(0.0078125), 17), (np.float32(1.3e-3), 3)):
        with tw.open(single_tensor_model(tname, [q.size], q, quant=dict(
                scale=[scale], zero_point=[zp]))) as m:
            out = m["t"].dequantize()
        np.testing.assert_array_equal(out, (q.astype(np.float32) - np.float32(zp)) * scale)


@pytest.mark.parametrize("tname", ["FLOAT8_E4M3FN", "FLOAT8_E5M2"])
def test_float8_dequantizes_to_float32(tname):
    dtype = getattr(ml_dtypes, tname.lower())
    values = np.array([1.5, -2.0, 0.25, 448 if tname == "FLOAT8_E4M3FN" else 57344], dtype)
    with tw.open(single_tensor_model(tname, [values.size], values)) as m:
        out = m["t"].dequantize()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.astype(np.float32))


def test_float32_values_are_returned_as_stored():
    values = np.array([1.5, -0.0, np.inf, 0.1], np.float32)
    raw = values.tobytes() + struct.pack("<I", 0x7FC01234)  # a NaN with a payload
    with tw.open(single_tensor_model("FLOAT32", [5], raw)) as m:
        out = m["t"].dequantize()
    assert out.dtype == np.float32 and out.tobytes() == raw
