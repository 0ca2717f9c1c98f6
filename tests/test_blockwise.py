"""Blockwise and multi-axis quantization: resolved parameters, dequantization, the
runtime's EMBEDDING_LOOKUP kernel and the corpus model."""

import subprocess
import sys

import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import ModelBuilder, run_interpreter
from tflite_weights.numerics.values import pack_bits

from tests.support.paths import corpus_path as corpus  # noqa: E402

BITS = {"INT8": 8, "INT4": 4, "INT2": 2, "UINT4": 4, "UINT8": 8}


def qrange(tname):
    bits = BITS[tname]
    if tname.startswith("U"):
        return 0, 1 << bits
    return -(1 << (bits - 1)), 1 << (bits - 1)


def stored(q, tname):
    bits = BITS[tname]
    if bits < 8:
        return pack_bits(q, bits)
    return q.astype(np.uint8 if tname.startswith("U") else np.int8)


def reference(q, scale_grid, zp_grid, block):
    """A loop over elements: value = scale[block of element] * (q - zp[block])."""
    out = np.empty(q.shape, np.float32)
    for idx in np.ndindex(q.shape):
        b = tuple(i // s for i, s in zip(idx, block))
        out[idx] = np.float32(scale_grid[b]) * np.float32(int(q[idx]) - int(zp_grid[b]))
    return out


def blockwise_model(tname, shape, block_size, *, scale_type="FLOAT16", zp=None, zp_type="INT32",
                    seed=0, input_first=True, zero_points=None):
    rng = np.random.default_rng(seed)
    lo, hi = qrange(tname)
    q = rng.integers(lo, hi, size=shape)
    rows = int(np.prod(shape[:-1]))
    nb = shape[-1] // block_size
    sc = (rng.random(rows * nb) + 0.05).astype(np.float16 if scale_type == "FLOAT16"
                                               else np.float32)
    b = ModelBuilder()
    sg = b.subgraph()
    if input_first:
        sg.tensor("x", "FLOAT32", [1, shape[-1]])
    s = sg.tensor("scales", scale_type, [rows, nb], sc)
    zi = -1
    if zp is not None:
        zi = sg.tensor("zps", zp_type, [np.size(zp)], np.asarray(zp).astype(
            {"INT32": np.int32, "INT64": np.int64, "INT8": np.int8}[zp_type]))
    if zero_points is not None:
        zi = zero_points
    sg.tensor("w", tname, list(shape), stored(q, tname),
              quant=dict(blockwise=dict(scales=s, zero_points=zi, block_size=block_size)))
    return b, q, sc.astype(np.float32).reshape(rows, nb)


# -- resolved parameters -------------------------------------------------------------


def test_resolved_parameters_of_an_int4_fully_connected_weight():
    b, q, sc = blockwise_model("INT4", (6, 64), 32)
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.details_type == "BlockwiseQuantization" and qp.is_blockwise
        assert qp.block_size == 32 and qp.block_shape == (1, 32)
        assert qp.block_scale.shape == (6, 2) and qp.block_scale.dtype == np.float32
        np.testing.assert_array_equal(qp.block_scale, sc)  # [r, b] = scales[r * 2 + b]
        assert qp.block_zero_point.shape == (6, 2) and not qp.block_zero_point.any()
        assert qp.scale.size == 0 and qp.zero_point.size == 0  # the stored vectors
        assert not qp.block_scale.flags.writeable
        assert qp.to_dict()["block_shape"] == [1, 32]


@pytest.mark.parametrize("tname", ["INT8", "INT4", "INT2", "UINT4"])
@pytest.mark.parametrize("scale_type", ["FLOAT16", "FLOAT32"])
def test_dequantize_matches_an_element_loop(tname, scale_type):
    shape, bs = (4, 32), 8
    lo, hi = qrange(tname)
    zp = np.arange(16) % (hi - lo) + lo if tname.startswith("U") else None
    b, q, sc = blockwise_model(tname, shape, bs, scale_type=scale_type, zp=zp, seed=3)
    zgrid = np.zeros((4, 4), np.int64) if zp is None else np.asarray(zp).reshape(4, 4)
    with tw.open(b.finish()) as m:
        got = m["w"].dequantize()
        assert got.dtype == np.float32 and got.shape == shape and not got.flags.writeable
        np.testing.assert_array_equal(got, reference(q, sc, zgrid, (1, bs)))
        np.testing.assert_array_equal(m["w"].quantization.block_zero_point, zgrid)


def test_a_single_zero_point_is_broadcast_to_every_block():
    b, q, sc = blockwise_model("INT8", (2, 16), 8, zp=[3], zp_type="INT64")
    with tw.open(b.finish()) as m:
        np.testing.assert_array_equal(m["w"].quantization.block_zero_point, np.full((2, 2), 3))
        np.testing.assert_array_equal(m["w"].dequantize(),
                                      reference(q, sc, np.full((2, 2), 3), (1, 8)))


def test_rank_one_tensor_blocks_along_its_only_axis():
    b, q, sc = blockwise_model("INT8", (64,), 32, scale_type="FLOAT32")
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.block_shape == (32,) and qp.block_scale.shape == (2,)
        np.testing.assert_array_equal(m["w"].dequantize(),
                                      reference(q, sc.reshape(2), np.zeros(2), (32,)))


def test_three_d_tensor_blocks_along_the_last_axis():
    b, q, sc = blockwise_model("INT4", (2, 3, 8), 4, seed=9)
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.block_scale.shape == (2, 3, 2)
        np.testing.assert_array_equal(
            m["w"].dequantize(), reference(q, sc.reshape(2, 3, 2), np.zeros((2, 3, 2)), (1, 1, 4)))


def test_block_shape_gives_two_dimensional_blocks():
    rng = np.random.default_rng(4)
    q = rng.integers(-8, 8, size=(4, 8))
    sc = (rng.random(4) + 0.5).astype(np.float16)
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT16", [2, 2], sc)
    w = sg.tensor("w", "INT4", [4, 8], pack_bits(q, 4),
                  quant=dict(blockwise=dict(scales=s, zero_points=-1, block_size=0)))
    sg.sg.tensors[w].quantization.details.blockShape = [2, 4]
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.block_shape == (2, 4) and qp.block_scale.shape == (2, 2)
        np.testing.assert_array_equal(
            m["w"].dequantize(),
            reference(q, sc.astype(np.float32).reshape(2, 2), np.zeros((2, 2)), (2, 4)))


# -- zero_points: -1, absent (reads as tensor 0), explicit ----------------------------


def test_absent_zero_points_field_naming_a_float_input_means_no_zero_points():
    # zero_points=0 is the flatbuffers default, so the field is omitted from the file
    b, q, sc = blockwise_model("INT4", (2, 16), 8, zero_points=0)
    with tw.open(b.finish()) as m:
        w = m["w"]
        assert w.quantization.blockwise.zero_points == 0
        assert m.tensors[0].type == "FLOAT32"  # what tensor 0 is
        np.testing.assert_array_equal(w.quantization.block_zero_point, np.zeros((2, 2)))
        np.testing.assert_array_equal(w.dequantize(), reference(q, sc, np.zeros((2, 2)),
                                                                (1, 8)))


def test_zero_points_index_zero_is_used_when_tensor_zero_holds_zero_points():
    rng = np.random.default_rng(2)
    q = rng.integers(-128, 128, size=(2, 16))
    b = ModelBuilder()
    sg = b.subgraph()
    z = sg.tensor("zps", "INT32", [4], np.array([1, -2, 3, -4], np.int32))
    s = sg.tensor("scales", "FLOAT32", [4], np.array([0.5, 1, 2, 4], np.float32))
    sg.tensor("w", "INT8", [2, 16], q.astype(np.int8),
              quant=dict(blockwise=dict(scales=s, zero_points=z, block_size=8)))
    assert z == 0
    with tw.open(b.finish()) as m:
        zg = np.array([[1, -2], [3, -4]])
        np.testing.assert_array_equal(m["w"].quantization.block_zero_point, zg)
        np.testing.assert_array_equal(
            m["w"].dequantize(), reference(q, np.array([[0.5, 1], [2, 4]]), zg, (1, 8)))


@pytest.mark.parametrize("index,match", [(1, "not a whole-byte integer tensor"),
                                         (57, "only 3 tensors"),
                                         (-2, "invalid")])
def test_unusable_explicit_zero_points_are_an_error(index, match):
    b, q, sc = blockwise_model("INT4", (2, 16), 8, zero_points=index)
    with tw.open(b.finish()) as m:
        w = m["w"]
        assert w.quantization.block_scale is None  # not resolvable; repr still works
        assert "blockwise" in repr(w)
        with pytest.raises(tw.QuantizationError, match=match):
            w.dequantize()


# -- damaged scales ------------------------------------------------------------------


def damaged(**kw):
    rng = np.random.default_rng(0)
    q = rng.integers(-8, 8, size=(2, 16))
    b = ModelBuilder()
    sg = b.subgraph()
    scale_kw = kw.pop("scale", dict(type="FLOAT16", shape=[4], data=np.ones(4, np.float16)))
    s = sg.tensor("scales", scale_kw["type"], scale_kw["shape"], scale_kw["data"])
    bw = dict(scales=s, zero_points=-1, block_size=8)
    bw.update(kw)
    sg.tensor("w", "INT4", [2, 16], pack_bits(q, 4), quant=dict(blockwise=bw))
    return b.finish()


@pytest.mark.parametrize("kw,match", [
    (dict(scales=9), "scale tensor index 9 is outside"),
    (dict(scales=1), "names the tensor itself"),
    (dict(block_size=0), "block_size is 0"),
    (dict(block_size=-8), "block_size is -8"),
    (dict(block_size=6), "not a multiple of the block extent 6"),
    (dict(scale=dict(type="FLOAT16", shape=[3], data=np.ones(3, np.float16))),
     "4 blocks, but its scale tensor 0 .* holds 3 values"),
    (dict(scale=dict(type="INT32", shape=[4], data=np.ones(4, np.int32))), "a float tensor"),
    (dict(scale=dict(type="FLOAT16", shape=[4], data=None)), "cannot be read"),
])
def test_damaged_blockwise_parameters_raise_quantization_error(kw, match):
    with tw.open(damaged(**kw)) as m:
        w = m["w"]
        assert w.quantization.block_scale is None
        with pytest.raises(tw.QuantizationError, match=match):
            w.dequantize()
        np.asarray(w.numpy())  # the stored values stay readable


def test_float_tensor_with_blockwise_details_is_refused():
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2], np.ones(2, np.float32))
    sg.tensor("w", "FLOAT32", [2, 4], np.ones(8, np.float32),
              quant=dict(blockwise=dict(scales=s, zero_points=-1, block_size=4)))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.QuantizationError, match="integer tensors"):
            m["w"].dequantize()


# -- multi-axis ----------------------------------------------------------------------


def test_multi_axis_per_channel_over_two_axes():
    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, size=(2, 3, 4))
    sc = (rng.random(8) + 0.5).astype(np.float32)
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2, 4], sc)
    z = sg.tensor("zps", "INT32", [8], np.arange(8, dtype=np.int32) - 4)
    sg.tensor("w", "INT8", [2, 3, 4], q.astype(np.int8),
              quant=dict(multi_axis=dict(scales=s, zero_points=z, block_size=0,
                                         quantized_dimensions=[0, 2])))
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.details_type == "MultiAxisQuantization"
        assert qp.block_shape == (1, 3, 1) and qp.block_scale.shape == (2, 1, 4)
        zg = (np.arange(8) - 4).reshape(2, 1, 4)
        np.testing.assert_array_equal(m["w"].dequantize(),
                                      reference(q, sc.reshape(2, 1, 4), zg, (1, 3, 1)))


@pytest.mark.parametrize("dims,block,err,match", [
    ([0, 3], 0, tw.QuantizationError, "distinct axes"),
    ([1, 1], 0, tw.QuantizationError, "distinct axes"),
    ([], 0, tw.QuantizationError, "is empty"),
    ([0], 2, tw.UnsupportedError, "no defined layout"),
])
def test_multi_axis_invalid_or_undefined(dims, block, err, match):
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2], np.ones(2, np.float32))
    sg.tensor("w", "INT8", [2, 3, 4], np.zeros(24, np.int8),
              quant=dict(multi_axis=dict(scales=s, block_size=block, quantized_dimensions=dims)))
    with tw.open(b.finish()) as m:
        with pytest.raises(err, match=match):
            m["w"].dequantize()


# -- 4-bit rows of odd width -----------------------------------------------------------


def odd_width_model(layout, blockwise=True):
    q = np.arange(15).reshape(3, 5) % 16 - 8
    data = pack_bits(q, 4) if layout == "flat" else b"".join(pack_bits(r, 4) for r in q)
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT16", [3], np.array([1, 2, 4], np.float16))
    quant = dict(blockwise=dict(scales=s, zero_points=-1, block_size=5)) if blockwise else \
        dict(scale=[1.0], zero_point=[0])
    sg.tensor("w", "INT4", [3, 5], data, quant=quant)
    return b.finish(), q


@pytest.mark.parametrize("layout", ["flat", "padded"])
def test_odd_width_int4_rows_are_read_padded_only_at_the_padded_size(layout):
    data, q = odd_width_model(layout)
    with tw.open(data) as m:
        w = m["w"]
        assert w.raw().size == (8 if layout == "flat" else 9)
        np.testing.assert_array_equal(w.numpy(), q)
        np.testing.assert_array_equal(w.dequantize(), q * np.array([[1], [2], [4]], np.float32))


def test_odd_width_int4_without_blockwise_quantization_stays_flat():
    data, q = odd_width_model("padded", blockwise=False)
    with tw.open(data) as m:
        flat = np.array(m["w"].numpy())
        assert not np.array_equal(flat, q)  # 9 bytes read flat: rows shift after row 0
        np.testing.assert_array_equal(flat.reshape(-1)[:5], q[0])


# -- against the runtime -------------------------------------------------------------


@pytest.mark.parametrize("tname", ["INT4", "INT2"])
def test_dequantize_equals_the_runtime_blockwise_embedding_lookup(tname):
    """EMBEDDING_LOOKUP of every row of a blockwise weight returns that row
    dequantized (embedding_lookup.cc EvalBlockwise): it must equal dequantize()
    exactly."""
    rows, cols, bs = 6, 32, 8
    rng = np.random.default_rng(11)
    lo, hi = qrange(tname)
    q = rng.integers(lo, hi, size=(rows, cols))
    sc = (rng.random(rows * cols // bs) + 0.05).astype(np.float16)
    b = ModelBuilder()
    sg = b.subgraph()
    ids = sg.tensor("ids", "INT32", [rows])
    s = sg.tensor("scales", "FLOAT16", [rows * cols // bs], sc)
    w = sg.tensor("w", tname, [rows, cols], stored(q, tname),
                  quant=dict(blockwise=dict(scales=s, zero_points=-1, block_size=bs)))
    o = sg.tensor("out", "FLOAT32", [rows, cols])
    sg.op("EMBEDDING_LOOKUP", [ids, w], [o])
    sg.sg.inputs, sg.sg.outputs = [ids], [o]
    data = b.finish()
    (out,) = run_interpreter(data, [np.arange(rows, dtype=np.int32)[::-1].copy()])
    with tw.open(data) as m:
        ours = m["w"].dequantize()
    np.testing.assert_array_equal(out, ours[::-1])


# -- the corpus model ------------------------------------------------------------------


def test_corpus_blockwise_model_parameters():
    with tw.open(corpus("litert_blockwise_quantized.tflite")) as m:
        t = m["quantized_tensor"]
        qp = t.quantization
        assert t.type == "INT8" and t.shape == (64,)
        assert qp.blockwise.scales == 0 and qp.blockwise.zero_points == 1
        assert m.tensors[0].type == "FLOAT32" and m.tensors[1].type == "INT32"
        assert qp.block_size == 32 and qp.block_shape == (32,)
        np.testing.assert_array_equal(qp.block_scale, [1.0, 2.0])
        np.testing.assert_array_equal(qp.block_zero_point, [0, 0])
        assert not t.has_data  # an activation: parameters only
        with pytest.raises(tw.NoDataError):
            t.dequantize()


def test_corpus_blockwise_parameters_applied_by_hand():
    """The corpus parameters on known values: q * 1.0 for the first 32, q * 2.0 after."""
    with tw.open(corpus("litert_blockwise_quantized.tflite")) as m:
        qp = m["quantized_tensor"].quantization
        scales = np.array(m.tensors[qp.blockwise.scales].numpy())
        zps = np.array(m.tensors[qp.blockwise.zero_points].numpy())
    q = (np.arange(64) - 32).astype(np.int8)
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2], scales)
    z = sg.tensor("zps", "INT32", [2], zps)
    sg.tensor("q", "INT8", [64], q, quant=dict(blockwise=dict(scales=s, zero_points=z,
                                                              block_size=32)))
    with tw.open(b.finish()) as m:
        expected = np.concatenate([q[:32] * 1.0, q[32:] * 2.0]).astype(np.float32)
        np.testing.assert_array_equal(m["q"].dequantize(), expected)


_WRAPPER = r"""
import sys, json
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1])
d = [t for t in it.get_tensor_details() if t["name"] == "quantized_tensor"][0]
p = d["quantization_parameters"]
print(json.dumps({"scales": p["scales"].astype("float32").tolist(),
                  "scales_dtype": str(p["scales"].dtype),
                  "zero_points": p["zero_points"].tolist(), "block_size": p["block_size"]}))
"""


def test_corpus_blockwise_against_the_python_wrapper():
    """The interpreter's wrapper (built without invoking, which crashes on this file)
    reports block_size 32 and zero points [0, 0] as we do; it reads the scale tensor
    as float16 whatever its type, so for this FLOAT32 scale tensor it shows the
    four halves of the two float32 values, which we read as 1.0 and 2.0."""
    pytest.importorskip("ai_edge_litert.interpreter")
    import json
    path = corpus("litert_blockwise_quantized.tflite")
    p = subprocess.run([sys.executable, "-c", _WRAPPER, path], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        pytest.skip(f"the interpreter could not be built: {p.stderr[-300:]}")
    got = json.loads(p.stdout.strip().splitlines()[-1])
    with tw.open(path) as m:
        qp = m["quantized_tensor"].quantization
        assert got["block_size"] == qp.block_size
        assert got["zero_points"] == qp.block_zero_point.tolist()
        assert got["scales_dtype"] == "float16"
        halves = np.frombuffer(qp.block_scale.astype("<f4").tobytes(), "<f2")
        np.testing.assert_array_equal(np.array(got["scales"], np.float32),
                                      halves.astype(np.float32))


def test_details_type_without_a_details_table():
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2], np.ones(2, np.float32))
    w = sg.tensor("w", "INT8", [2, 4], np.zeros(8, np.int8),
                  quant=dict(blockwise=dict(scales=s, zero_points=-1, block_size=4)))
    sg.sg.tensors[w].quantization.details = None  # the union type stays set
    with tw.open(b.finish()) as m:
        qp = m["w"].quantization
        assert qp.details_type == "BlockwiseQuantization" and qp.blockwise is None
        with pytest.raises(tw.QuantizationError, match="no details table"):
            m["w"].dequantize()


def test_infinite_scale_gives_infinite_values_without_warnings():
    b = ModelBuilder()
    sg = b.subgraph()
    s = sg.tensor("scales", "FLOAT32", [2], np.array([np.inf, 1], np.float32))
    sg.tensor("w", "INT8", [2, 4], np.arange(8, dtype=np.int8),
              quant=dict(blockwise=dict(scales=s, zero_points=-1, block_size=4)))
    with tw.open(b.finish()) as m:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = m["w"].dequantize()
        assert np.isnan(out[0, 0]) and np.isinf(out[0, 1]) and out[1, 3] == 7
