"""The reader core: types, packing, buffers, quantization, the API contract.

Synthetic models are written with the schema's generated object API
(tests/builders.py), an implementation independent of the reader; expected
values come from the arrays the test wrote, packed by the simple loop below
(not by the package's own packer).
"""

from __future__ import annotations

import os
import pathlib
import struct
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import ModelBuilder, single_tensor_model
from tests.support import paths as conftest
from tests.support import oracle

rng = np.random.default_rng(1234)


def pack_low_bits_first(values, bits):
    """Reference packer: element i in byte i*bits//8 at bit (i % (8//bits))*bits."""
    per = 8 // bits
    out = bytearray((len(values) + per - 1) // per)
    for i, v in enumerate(values):
        out[i // per] |= (int(v) & ((1 << bits) - 1)) << ((i % per) * bits)
    return bytes(out)


def string_buffer(strings):
    """TFLite's string layout: int32 n, int32 offsets[n+1] from the buffer start, bytes."""
    n = len(strings)
    header = 4 * (n + 2)
    offsets, pos = [], header
    for s in strings:
        offsets.append(pos)
        pos += len(s)
    offsets.append(pos)
    return struct.pack(f"<{n + 2}i", n, *offsets) + b"".join(strings)


# -- every TensorType code ----------------------------------------------------------------
FIXED = {
    "FLOAT32": np.dtype("<f4"), "FLOAT16": np.dtype("<f2"), "INT32": np.dtype("<i4"),
    "UINT8": np.dtype("u1"), "INT64": np.dtype("<i8"), "BOOL": np.dtype(bool),
    "INT16": np.dtype("<i2"), "COMPLEX64": np.dtype("<c8"), "INT8": np.dtype("i1"),
    "FLOAT64": np.dtype("<f8"), "COMPLEX128": np.dtype("<c16"), "UINT64": np.dtype("<u8"),
    "UINT32": np.dtype("<u4"), "UINT16": np.dtype("<u2"),
    "BFLOAT16": np.dtype(ml_dtypes.bfloat16), "FLOAT8_E4M3FN": np.dtype(ml_dtypes.float8_e4m3fn),
    "FLOAT8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}


def random_values(dtype, shape):
    """Arbitrary bit patterns of ``dtype`` (NaNs included for floats): bit-exactness."""
    n = int(np.prod(shape))
    if dtype == np.dtype(bool):
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_width_types_come_out_bit_exact_as_zero_copy_views(name):
    dtype = FIXED[name]
    values = random_values(dtype, (3, 5, 2))
    data = single_tensor_model(name, values.shape, values)
    with tw.open(data) as m:
        t = m["t"]
        assert t.type == name and t.dtype == dtype
        out = t.numpy()
        assert out.dtype == dtype and out.shape == (3, 5, 2)
        assert out.tobytes() == values.tobytes()
        assert not out.flags.writeable
        assert np.shares_memory(out, np.frombuffer(data, np.uint8))
        assert t.nbytes == values.nbytes and t.has_data


@pytest.mark.parametrize("name,bits,signed", [("INT4", 4, True), ("UINT4", 4, False),
                                              ("INT2", 2, True)])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 3), (4, 4)])
def test_sub_byte_types_unpack_flat_low_bits_first(name, bits, signed, shape):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    n = int(np.prod(shape))
    values = rng.integers(lo, hi + 1, n)
    packed = pack_low_bits_first(values, bits)
    with tw.open(single_tensor_model(name, shape, packed)) as m:
        t = m["t"]
        out = t.numpy()
        assert out.dtype == (np.int8 if signed else np.uint8)
        assert out.shape == shape and not out.flags.writeable
        np.testing.assert_array_equal(out.reshape(-1), values)
        assert t.raw().tobytes() == packed  # the stored form stays reachable
        assert t.nbytes == len(packed) == -(-n * bits // 8)


def test_string_tensors_give_an_object_array_of_bytes():
    strings = [b"AB", b"", b"\xff\x00z", "héllo".encode()]
    with tw.open(single_tensor_model("STRING", [2, 2], string_buffer(strings))) as m:
        out = m["t"].numpy()
        assert out.dtype == object and out.shape == (2, 2)
        assert out.reshape(-1).tolist() == strings


def test_string_layout_example_from_the_runtime_header():
    raw = bytes([2, 0, 0, 0, 16, 0, 0, 0, 18, 0, 0, 0, 18, 0, 0, 0]) + b"AB"
    with tw.open(single_tensor_model("STRING", [2], raw)) as m:
        assert m["t"].numpy().tolist() == [b"AB", b""]


@pytest.mark.parametrize("raw", [b"\x01\x00", struct.pack("<4i", 5, 0, 0, 0),
                                 struct.pack("<4i", 1, 12, 99, 99) + b"x",
                                 struct.pack("<5i", 2, 16, 12, 16, 16)])
def test_damaged_string_buffers_raise_the_package_error(raw):
    with tw.open(single_tensor_model("STRING", [1], raw)) as m:
        with pytest.raises(tw.InvalidModelError):
            m["t"].numpy()


@pytest.mark.parametrize("name", ["RESOURCE", "VARIANT"])
def test_resource_and_variant_have_no_values(name):
    b = ModelBuilder()
    b.subgraph().tensor("t", name, [])
    with tw.open(b.finish()) as m:
        t = m["t"]
        assert t.type == name and t.dtype is None and not t.has_data
        with pytest.raises(tw.UnsupportedError, match=name):
            t.numpy()


def test_every_type_code_of_the_schema_is_covered_here():
    covered = set(FIXED) | {"INT4", "UINT4", "INT2", "STRING", "RESOURCE", "VARIANT"}
    assert covered == set(tw.format.types.TYPES[c].name for c in tw.format.types.TYPES)
    assert len(covered) == 23


def test_unknown_type_code_is_reported_not_guessed():
    with tw.open(single_tensor_model(99, [2], b"\0\0")) as m:
        t = m["t"]
        assert t.type == "<99>" and t.dtype is None
        with pytest.raises(tw.UnsupportedError, match="99"):
            t.numpy()


# -- quantization -------------------------------------------------------------------------
def test_per_tensor_quantization_and_dequantize():
    q = rng.integers(-128, 128, (4, 6)).astype(np.int8)
    data = single_tensor_model("INT8", q.shape, q, quant=dict(scale=[0.05], zero_point=[-3]))
    with tw.open(data) as m:
        t = m["t"]
        qp = t.quantization
        assert qp.scale.dtype == np.float32 and qp.zero_point.dtype == np.int64
        assert qp.scale.tolist() == [np.float32(0.05)] and qp.zero_point.tolist() == [-3]
        assert not qp.is_per_channel and qp.quantized_dimension == 0
        expected = ((q.astype(np.float64) + 3) * np.float64(np.float32(0.05))).astype(np.float32)
        out = t.dequantize()
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("axis", [0, 1, 3])
def test_per_channel_dequantize_along_the_quantized_dimension(axis):
    shape = (3, 2, 2, 5)
    q = rng.integers(-127, 128, shape).astype(np.int8)
    n = shape[axis]
    scale = (rng.random(n) / 10 + 0.001).astype(np.float32)
    zp = rng.integers(-5, 5, n)
    data = single_tensor_model("INT8", shape, q, quant=dict(
        scale=scale, zero_point=zp, quantized_dimension=axis))
    with tw.open(data) as m:
        t = m["t"]
        assert t.quantization.is_per_channel and t.quantization.quantized_dimension == axis
        out = t.dequantize()
    expected = np.empty(shape, np.float32)
    for c in range(n):
        idx = [slice(None)] * 4
        idx[axis] = c
        expected[tuple(idx)] = ((q[tuple(idx)].astype(np.float64) - zp[c])
                                * np.float64(scale[c])).astype(np.float32)
    np.testing.assert_array_equal(out, expected)


def test_a_single_zero_point_broadcasts_over_channels():
    q = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    data = single_tensor_model("INT8", q.shape, q, quant=dict(
        scale=[1, 2, 4], zero_point=[1], quantized_dimension=0))
    with tw.open(data) as m:
        out = m["t"].dequantize()
    np.testing.assert_array_equal(out, (q - 1) * np.array([[1], [2], [4]], np.float32))


def test_int4_per_channel_dequantize_uses_unpacked_values():
    values = rng.integers(-8, 8, 15)
    data = single_tensor_model("INT4", [3, 5], pack_low_bits_first(values, 4), quant=dict(
        scale=[0.5, 0.25, 2.0], zero_point=[0, 0, 0], quantized_dimension=0))
    with tw.open(data) as m:
        out = m["t"].dequantize()
    np.testing.assert_array_equal(out, values.reshape(3, 5) * np.array([[0.5], [0.25], [2.0]]))


@pytest.mark.parametrize("quant,match", [
    (dict(scale=[1.0] * 8, zero_point=[0] * 8, quantized_dimension=3), r"quantized_dimension 3"),
    (dict(scale=[1.0] * 3, zero_point=[0] * 3, quantized_dimension=0), r"3 scales; dimension 0 has 8"),
    (dict(scale=[1.0, 2.0], zero_point=[0, 0, 0], quantized_dimension=0), r"3 zero points"),
    (dict(scale=[1.0]), r"no zero.point"),
])
def test_parameters_that_do_not_fit_raise_with_the_numbers_but_values_still_read(quant, match):
    q = np.arange(8, dtype=np.int8)
    with tw.open(single_tensor_model("INT8", [8], q, quant=quant)) as m:
        t = m["t"]
        with pytest.raises(tw.QuantizationError, match=match):
            t.dequantize()
        np.testing.assert_array_equal(t.numpy(), q)


def test_no_scale_means_no_quantization():
    with tw.open(single_tensor_model("INT8", [2], b"\1\2", quant=dict(min=[0.0], max=[1.0]))) as m:
        assert m["t"].quantization is None
        with pytest.raises(tw.QuantizationError, match="without quantization"):
            m["t"].dequantize()


def test_min_max_are_kept():
    with tw.open(single_tensor_model("UINT8", [2], b"\1\2", quant=dict(
            scale=[0.1], zero_point=[128], min=[-12.8], max=[12.7]))) as m:
        q = m["t"].quantization
        assert q.min.tolist() == [np.float32(-12.8)] and q.max.tolist() == [np.float32(12.7)]


@pytest.mark.parametrize("name", ["FLOAT16", "BFLOAT16"])
def test_half_floats_dequantize_to_float32(name):
    values = np.array([1.5, -2.25, 1e-3], dtype=FIXED[name])
    with tw.open(single_tensor_model(name, [3], values)) as m:
        out = m["t"].dequantize()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.astype(np.float32))


def test_custom_quantization_bytes_are_exposed():
    with tw.open(single_tensor_model("INT8", [1], b"\1", quant=dict(
            scale=[1.0], zero_point=[0], custom=b"\x01\x02\x03"))) as m:
        q = m["t"].quantization
        assert q.details_type == "CustomQuantization" and q.custom == b"\x01\x02\x03"


# -- buffers ------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [16, 4, 1])
def test_offset_buffers_outside_the_flatbuffer(align):
    b = ModelBuilder()
    sg = b.subgraph()
    a = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.integers(-100, 100, 7).astype(np.int16)
    sg.tensor("a", "FLOAT32", a.shape, a, offset=True)
    sg.tensor("c", "INT16", c.shape, c, offset=True)
    data = b.finish(align=align)
    with tw.open(data) as m:
        np.testing.assert_array_equal(m["a"].numpy(), a)
        np.testing.assert_array_equal(m["c"].numpy(), c)
        buf = m.buffer(m["a"].buffer)
        assert buf.location == "offset" and buf.size == a.nbytes
        assert m["a"].data_offset == buf.file_offset
        assert data[buf.file_offset:buf.file_offset + a.nbytes] == a.tobytes()


def _patch_buffer_fields(data: bytes, offset: int, size: int, new_offset: int, new_size: int):
    out = bytearray(data)
    for old, new in ((offset, new_offset), (size, new_size)):
        at = out.find(struct.pack("<Q", old))
        assert at >= 0
        out[at:at + 8] = struct.pack("<Q", new)
    return bytes(out)


def test_offset_zero_and_one_mean_no_data_and_out_of_range_is_an_error():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("a", "INT8", [4], b"\1\2\3\4", offset=True)
    sg.tensor("ok", "INT8", [1], b"\7")
    data = b.finish()
    with tw.open(data) as m:
        buf = m.buffer(m["a"].buffer)
        off, size = buf.file_offset, buf.size
    for new_off, expect in ((1, None), (len(data) - 2, "beyond the end")):
        damaged = _patch_buffer_fields(data, off, size, new_off, size)
        with tw.open(damaged) as m:
            t = m["a"]
            if expect is None:
                assert not t.has_data
                with pytest.raises(tw.NoDataError):
                    t.numpy()
            else:
                with pytest.raises(tw.InvalidModelError, match=expect):
                    t.numpy()
            assert m["ok"].numpy().tolist() == [7]  # the others still read


def test_buffer_zero_and_missing_buffers_table_mean_no_data():
    # the converter's habit: a non-constant points at its own buffer, which has no data
    b = ModelBuilder()
    b.subgraph().tensor("x", "FLOAT32", [1, 4])
    b.subgraph("other").tensor("y", "FLOAT32", [1, 4], buffer=0)
    with tw.open(b.finish()) as m:
        t = m["x"]
        assert t.buffer == 1 and not m.buffer(1).has_data
        assert not t.has_data and t.nbytes == 0 and t.data_offset is None
        with pytest.raises(tw.NoDataError, match="no stored data"):
            t.numpy()
        u = m.tensor("y", subgraph=1)  # buffer 0, the sentinel
        assert u.buffer == 0 and not u.has_data and u.data_offset is None
        with pytest.raises(tw.NoDataError, match="no stored data"):
            u.numpy()
    # buffer 0 holding bytes (the runtime only warns) still means no data
    b = ModelBuilder()
    b.m.buffers[0].data = np.arange(16, dtype=np.uint8)
    b.subgraph().tensor("x", "UINT8", [16], buffer=0)
    with tw.open(b.finish()) as m:
        assert m.buffer(0).has_data and not m["x"].has_data
        with pytest.raises(tw.NoDataError):
            m["x"].numpy()
    b = ModelBuilder()
    b.subgraph().tensor("x", "FLOAT32", [1, 4], buffer=0)
    b.m.buffers = None
    with tw.open(b.finish()) as m:
        assert m.buffer_count == 0 and not m["x"].has_data


def test_buffer_index_out_of_range_is_an_error_for_that_tensor_only():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("bad", "INT8", [1], buffer=50)
    sg.tensor("good", "INT8", [2], b"\1\2")
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="buffer 50 does not exist"):
            m["bad"].numpy()
        assert m["good"].numpy().tolist() == [1, 2]


def test_one_buffer_backs_tensors_of_different_types_in_several_subgraphs():
    b = ModelBuilder()
    raw = np.arange(8, dtype=np.uint8)
    buf = b.buffer(raw)
    b.subgraph("a").tensor("u8", "UINT8", [8], buffer=buf)
    b.subgraph("b").tensor("i16", "INT16", [2, 2], buffer=buf)
    b.subgraph("c").tensor("f32", "FLOAT32", [1], buffer=buf)
    with tw.open(b.finish()) as m:
        sgs = m.subgraphs
        np.testing.assert_array_equal(sgs[0]["u8"].numpy(), raw)
        np.testing.assert_array_equal(sgs[1]["i16"].numpy(), raw.view("<i2").reshape(2, 2))
        np.testing.assert_array_equal(sgs[2]["f32"].numpy(), raw[:4].view("<f4"))


def test_buffer_shorter_than_the_shape_needs_is_an_error():
    with tw.open(single_tensor_model("INT32", [4], b"\0" * 12)) as m:
        with pytest.raises(tw.InvalidModelError, match="needs 16 bytes.*holds 12"):
            m["t"].numpy()


def test_trailing_bytes_after_the_flatbuffer_are_normal():
    values = np.arange(6, dtype=np.float32)
    data = single_tensor_model("FLOAT32", [6], values) + b"PK\x03\x04 trailing" * 100
    with tw.open(data) as m:
        np.testing.assert_array_equal(m["t"].numpy(), values)


def test_scalars_and_empty_tensors():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("scalar", "FLOAT32", [], np.array(2.5, np.float32))
    sg.tensor("empty", "INT8", [0, 3], b"")
    with tw.open(b.finish()) as m:
        s = m["scalar"].numpy()
        assert s.shape == () and float(s) == 2.5
        e = m["empty"].numpy()
        assert e.shape == (0, 3) and e.dtype == np.int8


# -- the API contract ---------------------------------------------------------------------
def _contract_model():
    b = ModelBuilder(description="contract")
    sg = b.subgraph("main")
    x = sg.tensor("input", "FLOAT32", [1, 4], shape_signature=[-1, 4])
    w = sg.tensor("w", "INT8", [2, 4], np.arange(8, dtype=np.int8),
                  quant=dict(scale=[0.5, 0.25], zero_point=[0, 0]))
    dup1 = sg.tensor("dup", "FLOAT32", [1])
    dup2 = sg.tensor("dup", "FLOAT32", [1])
    state = sg.tensor("state", "FLOAT32", [1, 2], is_variable=True)
    y = sg.tensor("output", "FLOAT32", [1, 2])
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    b.subgraph("second").tensor("other", "INT32", [1], np.array([7], np.int32))
    b.add_metadata("min_runtime_version", b"1.14.0".ljust(16, b"\0"))
    b.add_metadata("extra", b"\x00\x01")
    return b.finish(), (x, w, dup1, dup2, state, y)


def test_model_subgraph_tensor_contract(tmp_path):
    data, (x, w, dup1, dup2, state, y) = _contract_model()
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    for source in (str(path), path, data, bytearray(data), memoryview(data)):
        with tw.open(source) as m:
            assert isinstance(m, tw.Model)
            assert m.version == 3 and m.description == "contract"
            assert [sg.name for sg in m.subgraphs] == ["main", "second"]
            assert [s.index for s in m.subgraphs] == [0, 1]
            sg = m.subgraphs[0]
            assert sg.inputs == (x,) and sg.outputs == (y,)
            assert m.tensors == sg.tensors and len(m.tensors) == 6
            assert m.keys() == ["input", "w", "dup", "dup", "state", "output"]
            assert "w" in m and "nope" not in m and "other" not in m
            t = m["w"]
            assert (t.index, t.subgraph, t.name, t.type, t.shape) == (w, 0, "w", "INT8", (2, 4))
            assert t.dtype == np.int8 and t.has_data and t.nbytes == 8
            assert isinstance(t.quantization, tw.Quantization)
            inp = m["input"]
            assert inp.shape == (1, 4) and inp.shape_signature == (-1, 4)
            assert not inp.has_data and inp.quantization is None
            assert m["w"].shape_signature == (2, 4)
            assert m["state"].is_variable and not m["input"].is_variable
            assert m.tensor("other", subgraph=1).numpy().tolist() == [7]
            assert m[1] is m.tensors[1]
            assert m.metadata["min_runtime_version"].startswith(b"1.14.0\0")
            assert m.metadata["extra"] == b"\x00\x01"


def test_missing_and_ambiguous_names_raise_a_key_error_naming_candidates():
    data, _ = _contract_model()
    with tw.open(data) as m:
        with pytest.raises(tw.TensorNotFoundError) as e:
            m["outptu"]
        assert isinstance(e.value, KeyError) and isinstance(e.value, tw.TFLiteWeightsError)
        assert "'output'" in str(e.value)
        with pytest.raises(KeyError, match=r"2 tensors named 'dup' \(indices 2, 3\)"):
            m["dup"]
        assert m.get("nope") is None
        with pytest.raises(tw.TensorNotFoundError, match="no tensor 99"):
            m[99]


def test_repr_shows_name_type_shape_quantization():
    data, _ = _contract_model()
    with tw.open(data) as m:
        assert repr(m["w"]) == "<Tensor 0:1 'w' INT8 [2, 4] per-channel(2) axis=0>"
        assert "2 subgraph" not in repr(m) and "bytes" in repr(m)


def test_close_releases_the_mapping_and_views_stay_valid(tmp_path):
    data, _ = _contract_model()
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    m = tw.open(path)
    view = m["w"].numpy()
    t = m["w"]
    m.close()
    assert m.closed
    np.testing.assert_array_equal(view, np.arange(8).reshape(2, 4))  # still valid
    with pytest.raises(tw.ClosedModelError):
        m.subgraphs[0].tensors[0].quantization  # already decoded: still fine
        t.is_variable
    with tw.open(path) as m2:
        m2["w"].numpy()
    assert m2.closed


def test_nothing_is_decoded_at_open(tmp_path):
    data, _ = _contract_model()
    with tw.open(data) as m:
        assert m._state.decoded() == set()  # no record, no column, no cache yet
        assert m.version == 3  # the header was read


def test_importing_the_package_loads_no_heavy_dependency():
    code = ("import sys, tflite_weights, tflite_weights.cli\n"
            "bad = [m for m in ('tensorflow', 'tf_keras', 'keras', 'ai_edge_litert', "
            "'tflite_runtime', 'tflite', 'flatbuffers') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).parent.parent, check=True)
    assert out.stdout.strip() == ""


# -- malformed input ----------------------------------------------------------------------
@pytest.mark.parametrize("data,match", [
    (b"", "too short"),
    (b"\x00" * 7, "too short"),
    (b"\x08\x00\x00\x00TFL2\x00\x00\x00\x00", "file identifier"),
    (b"\xff\xff\xff\x00TFL3\x00\x00\x00\x00", "outside the data"),
    (b"\x08\x00\x00\x00TFL3\xf0\xff\xff\x7f", "vtable"),
])
def test_malformed_headers_raise_invalid_model_error(data, match):
    with pytest.raises(tw.InvalidModelError, match=match):
        tw.open(data)


def test_an_empty_file_is_refused(tmp_path):
    p = tmp_path / "empty.tflite"
    p.write_bytes(b"")
    with pytest.raises(tw.InvalidModelError, match="empty"):
        tw.open(p)


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        tw.open(tmp_path / "nope.tflite")


def test_wrong_schema_version_is_refused():
    b = ModelBuilder()
    b.subgraph().tensor("t", "INT8", [1], b"\1")
    b.m.version = 2
    with pytest.raises(tw.InvalidModelError, match="version is 2"):
        tw.open(b.finish())


def _read_everything(m, seen=None):
    """Touch every field the reader offers; return the errors met (all must be ours).
    ``seen`` (a dict), when given, receives what was read: (subgraph, tensor, field) ->
    a comparable value."""
    errors = []
    seen = {} if seen is None else seen
    try:
        seen["description"] = m.description
        seen["metadata"] = dict(m.metadata)
    except tw.TFLiteWeightsError as e:
        errors.append(e)
    try:
        subgraphs = m.subgraphs
    except tw.TFLiteWeightsError as e:
        return errors + [e]
    for sg in subgraphs:
        try:
            seen[sg.index, "sg"] = (sg.name, sg.inputs, sg.outputs)
            tensors = sg.tensors
        except tw.TFLiteWeightsError as e:
            errors.append(e)
            continue
        for t in tensors:
            key = (sg.index, t.index)
            try:
                seen[key + ("fields",)] = (t.name, t.shape, t.type, t.buffer,
                                           t.shape_signature, t.is_variable)
                repr(t)
                q = t.quantization
                seen[key + ("quantization",)] = None if q is None else (
                    q.scale.tobytes(), q.zero_point.tobytes(), q.quantized_dimension)
                if not t.has_data:
                    continue
                seen[key + ("values",)] = (t.nbytes, t.raw().tobytes(), _bits(t.numpy()))
            except tw.TFLiteWeightsError as e:
                errors.append(e)
                continue
            if t.quantization is not None or t.type in ("FLOAT16", "BFLOAT16"):
                try:
                    seen[key + ("dequantized",)] = _bits(t.dequantize())
                except tw.TFLiteWeightsError as e:
                    errors.append(e)
    return errors


def _bits(a: np.ndarray):
    """A comparable form of an array: dtype, shape and bit patterns."""
    if a.dtype == object:
        return ("object", a.shape, tuple(a.reshape(-1).tolist()))
    return (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())


def _synthetic_rich_model():
    b = ModelBuilder()
    sg = b.subgraph("main")
    sg.tensor("w", "INT8", [4, 3], rng.integers(-9, 9, (4, 3)).astype(np.int8),
              quant=dict(scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0] * 4))
    sg.tensor("s", "STRING", [2], string_buffer([b"ab", b"c"]))
    sg.tensor("p", "INT4", [5], pack_low_bits_first([1, -2, 3, -4, 5], 4))
    sg.tensor("o", "FLOAT32", [3], np.ones(3, np.float32), offset=True)
    sg.tensor("x", "FLOAT32", [1, 3])
    b.add_metadata("min_runtime_version", b"2.3.0".ljust(16, b"\0"))
    return b.finish()


def test_every_truncation_raises_only_the_package_errors():
    """A truncated file cannot change the bytes that remain, so whatever still reads
    must read exactly as from the whole file; the rest raises the package's errors."""
    data = _synthetic_rich_model()
    whole: dict = {}
    assert _read_everything(tw.open(data), whole) == []
    assert sum(1 for k in whole if k[-1] == "values") == 4
    readable = 0
    for n in range(0, len(data), 3):
        try:
            m = tw.open(data[:n])
        except tw.TFLiteWeightsError:
            continue
        got: dict = {}
        _read_everything(m, got)
        for k, v in got.items():
            if k == "metadata":
                assert all(whole[k].get(name) == raw for name, raw in v.items())
                continue
            assert v == whole[k], (n, k)
        readable += sum(1 for k in got if k[-1] == "values")
    assert readable > 0  # some truncations leave constants readable: they were compared


def test_byte_flips_raise_only_the_package_errors():
    """On damaged copies, whatever the reader returns must be what the schema's
    generated bindings read from the same bytes (an independent reader without
    bounds checks: compared only where both succeed)."""
    S = pytest.importorskip("ai_edge_litert.schema_py_generated")
    data = bytearray(_synthetic_rich_model())
    r = np.random.default_rng(7)
    compared = 0
    for _ in range(400):
        d = bytes(_flip(bytearray(data), r))
        try:
            m = tw.open(d)
        except tw.TFLiteWeightsError:
            continue
        got: dict = {}
        _read_everything(m, got)
        ref = oracle._guard(lambda: S.Model.GetRootAs(d, 0))
        for (si, ti, field), v in [(k, v) for k, v in got.items()
                                   if isinstance(k, tuple) and len(k) == 3]:
            rsg = oracle._guard(lambda: ref.Subgraphs(si))
            theirs = rsg and oracle.describe_tensor(S, ref, rsg, ti)
            if theirs is None:
                continue
            if field == "fields":
                name, shape, _, buffer, _, _ = v
                assert (name.encode("utf-8", "surrogateescape") == theirs["name"]
                        or "\\" in name)  # undecodable bytes are kept as escapes
                assert (shape, buffer) == (theirs["shape"], theirs["buffer"])
                compared += 1
            elif field == "values" and theirs["data"] is not None and not theirs["sparse"]:
                assert v[1] == theirs["data"]
                compared += 1
    assert compared > 100


def _flip(d: bytearray, r) -> bytearray:
    for pos in r.integers(0, len(d), 3):
        d[pos] = r.integers(0, 256)
    return d


def test_a_damaged_tensor_does_not_stop_the_others():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("a", "INT8", [2], b"\1\2")
    sg.tensor("b", "INT8", [2], b"\3\4")
    data = bytearray(b.finish())
    with tw.open(bytes(data)) as m:
        m.tensors
        opos = m.subgraphs[0]._cols.start  # offset of tensor 0's table
    struct.pack_into("<I", data, opos, 0x7FFFFFF0)  # tensor 0 points far outside
    with tw.open(bytes(data)) as m:
        t0, t1 = m.tensors
        assert t1.name == "b" and t1.numpy().tolist() == [3, 4]
        with pytest.raises(tw.InvalidModelError, match=r"tensors\[0\]"):
            t0.name


# -- independent cross-checks on the real corpus --------------------------------------------
from tests.support.paths import corpus_files  # noqa: E402

CORPUS = [p for p in corpus_files() if not p.endswith("invalid_model.bin")]


@pytest.mark.skipif(not corpus_files(), reason="../shared/corpus is absent")
def test_the_invalid_corpus_file_is_refused():
    path = [p for p in corpus_files() if p.endswith("invalid_model.bin")][0]
    with pytest.raises(tw.InvalidModelError, match="identifier"):
        tw.open(path)


@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_corpus_models_read_completely(path):
    with tw.open(path) as m:
        errors = _read_everything(m)
    # the only expected defects: dequantize() on parameters that do not fit (person_detect's
    # rank-1 biases with quantized_dimension 3)
    for e in errors:
        assert isinstance(e, tw.QuantizationError), e
    if os.path.basename(path) != "tflm_person_detect.tflite":
        assert errors == []


# every model at hand: the committed fixtures (so a fresh clone checks something), the
# corpus when present, and synthetic models with the newest schema's features
FIXTURE_MODELS = sorted(str(p) for p in pathlib.Path(conftest.FIXTURES).glob("*.tflite"))
_SYNTHETIC = {"rich": _synthetic_rich_model}
CROSS_CHECKED = ([pytest.param(p, id="fixture-" + os.path.basename(p)) for p in FIXTURE_MODELS]
                 + [pytest.param(p, id=os.path.basename(p)) for p in CORPUS]
                 + [pytest.param(k, id="synthetic-" + k) for k in _SYNTHETIC])


def _model_bytes(source: str) -> bytes:
    return _SYNTHETIC[source]() if source in _SYNTHETIC else pathlib.Path(source).read_bytes()


def test_the_cross_checks_cover_every_fixture():
    assert len(FIXTURE_MODELS) >= 14  # a clone without the corpus still checks these


def _agree_with_bindings(S, raw: bytes, m) -> int:
    """Compare every tensor with the generated bindings ``S``; returns how many
    constants had their values compared."""
    ref = S.Model.GetRootAs(raw, 0)
    assert len(m.subgraphs) == ref.SubgraphsLength()
    values = 0
    for si, sg in enumerate(m.subgraphs):
        rsg = ref.Subgraphs(si)
        assert len(sg.tensors) == rsg.TensorsLength()
        assert list(sg.inputs) == list(rsg.InputsAsNumpy() if rsg.InputsLength() else [])
        assert list(sg.outputs) == list(rsg.OutputsAsNumpy() if rsg.OutputsLength() else [])
        assert sg.name == (rsg.Name() or b"").decode()
        for t in sg.tensors:
            d = oracle.describe_tensor(S, ref, rsg, t.index)
            assert d is not None
            assert t.name.encode() == d["name"]
            assert t.shape == d["shape"]
            assert t.type_code == d["type_code"] and t.buffer == d["buffer"]
            if d["type"] is not None:
                assert t.type == d["type"]
            assert t.is_variable == d["is_variable"]
            q, rq = t.quantization, d["quantization"]
            if rq is None:
                assert q is None
            else:
                for f in ("scale", "zero_point", "min", "max"):
                    assert oracle.same_values(np.asarray(getattr(q, f)), rq[f]), f
                assert q.quantized_dimension == rq["quantized_dimension"]
            stored = d["data"]
            if stored is not None and not t.is_sparse:
                assert t.raw().tobytes() == stored
                expect = oracle.values_from_bytes(t.type, t.shape, stored)
                if expect is not None and t.compression is None:
                    assert oracle.same_values(t.numpy(), expect), (t.index, t.name)
                    values += 1
    return values


@pytest.mark.parametrize("source", CROSS_CHECKED)
def test_models_agree_with_the_schema_generated_bindings(source):
    S = pytest.importorskip("ai_edge_litert.schema_py_generated")
    raw = _model_bytes(source)
    with tw.open(raw) as m:
        values = _agree_with_bindings(S, raw, m)
        constants = sum(1 for t in m.all_tensors()
                        if t.type in FIXED and t.buffer and m.buffer(t.buffer).location ==
                        "inline" and not t.is_sparse and t.compression is None
                        and t.external_buffer == 0)
        assert values == constants  # every plain inline constant was compared


@pytest.mark.parametrize("source", CROSS_CHECKED)
def test_models_agree_with_the_tflite_package(source):
    tflite = pytest.importorskip("tflite")
    raw = _model_bytes(source)
    ref = tflite.Model.GetRootAs(raw, 0)
    with tw.open(raw) as m:
        assert m.version == ref.Version()
        assert m.description == (ref.Description().decode() if ref.Description() is not None
                                 else None)
        assert m.buffer_count == ref.BuffersLength()
        assert len(m.subgraphs) == ref.SubgraphsLength()
        for si, sg in enumerate(m.subgraphs):
            rsg = ref.Subgraphs(si)
            assert len(sg.tensors) == rsg.TensorsLength()
            for t in sg.tensors:
                rt = rsg.Tensors(t.index)
                assert t.name.encode() == (rt.Name() or b"")
                assert t.buffer == rt.Buffer()
                assert t.type_code == rt.Type()
                assert t.shape == tuple(rt.ShapeAsNumpy().tolist() if rt.ShapeLength() else ())
                q, rq = t.quantization, rt.Quantization()
                if q is not None and rq is not None:
                    assert q.min.tolist() == (rq.MinAsNumpy().tolist() if rq.MinLength() else [])
                    assert q.max.tolist() == (rq.MaxAsNumpy().tolist() if rq.MaxLength() else [])
            for oi, op in enumerate(sg.operators):
                rop = rsg.Operators(oi)
                assert op.opcode_index == rop.OpcodeIndex()
                assert list(op.inputs) == (rop.InputsAsNumpy().tolist()
                                           if rop.InputsLength() else [])
                assert list(op.outputs) == (rop.OutputsAsNumpy().tolist()
                                            if rop.OutputsLength() else [])
