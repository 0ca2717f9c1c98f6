"""TFLite Micro LUT compression: COMPRESSION_METADATA built by hand after
tensorflow/lite/micro/compression/metadata.fbs, with the bit strings of the TFLM
compression document as independent expectations."""

import flatbuffers
import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import ModelBuilder


def metadata_bytes(subgraphs, schema_version=None):
    """``subgraphs``: [[(tensor, value_buffer, index_bitwidth), ...], ...]."""
    b = flatbuffers.Builder(0)
    sg_offs = []
    for luts in subgraphs:
        lt_offs = []
        for tensor, value_buffer, bits in luts:
            b.StartObject(3)
            b.PrependInt32Slot(0, tensor, 0)
            b.PrependUint32Slot(1, value_buffer, 0)
            b.PrependUint8Slot(2, bits, 0)
            lt_offs.append(b.EndObject())
        b.StartVector(4, len(lt_offs), 4)
        for o in reversed(lt_offs):
            b.PrependUOffsetTRelative(o)
        vec = b.EndVector()
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
        sg_offs.append(b.EndObject())
    b.StartVector(4, len(sg_offs), 4)
    for o in reversed(sg_offs):
        b.PrependUOffsetTRelative(o)
    sgs = b.EndVector()
    b.StartObject(2)
    if schema_version is not None:
        b.PrependUint32Slot(0, schema_version, 1)
    b.PrependUOffsetTRelativeSlot(1, sgs, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def bits_to_bytes(bitstring):
    bitstring = bitstring.replace(" ", "")
    return bytes(int(bitstring[i:i + 8], 2) for i in range(0, len(bitstring), 8))


def pack_msb_first(indices, bits):
    """An independent packer: one character per bit, most significant first."""
    s = "".join(format(int(i), f"0{bits}b") for i in indices)
    s += "0" * (-len(s) % 8)
    return bits_to_bytes(s)


def compressed_model(tname, shape, index_bytes, table, bits, *, quant=None, version=None,
                     extra_luts=()):
    b = ModelBuilder()
    sg = b.subgraph()
    t = sg.tensor("w", tname, shape, index_bytes, quant=quant)
    sg.tensor("plain", "INT8", [2], np.array([5, 6], np.int8))
    vb = b.buffer(np.asarray(table))
    b.add_metadata("COMPRESSION_METADATA",
                   metadata_bytes([[(t, vb, bits), *extra_luts]], version))
    return b.finish(), vb


def test_the_documented_per_tensor_example():
    # tensorflow/lite/micro/docs/compression.md, "Value Tables": INT16, bit width 3
    data, vb = compressed_model("INT16", [10], bits_to_bytes("00101101101010010100001000101100"),
                                np.array([99, 2, 10, 4, 1, 7], np.int16), 3)
    with tw.open(data) as m:
        w = m["w"]
        np.testing.assert_array_equal(w.numpy(), [2, 4, 4, 10, 1, 7, 99, 10, 2, 4])
        assert w.numpy().dtype == np.int16 and not w.numpy().flags.writeable
        c = w.compression
        assert (c.subgraph, c.tensor, c.value_buffer, c.index_bitwidth) == (0, 0, vb, 3)
        assert c.to_dict()["scheme"] == "lut"
        assert w.raw().size == 4  # the stored indices
        assert m["plain"].compression is None
        np.testing.assert_array_equal(m["plain"].numpy(), [5, 6])


def test_the_documented_per_channel_example():
    # same document, "Per-channel Quantized Tensor Value Tables": 2 channels, 5-entry
    # tables (channel 0 zero-padded), the tensor's quantization has 2 scales on axis 0
    data, _ = compressed_model(
        "INT16", [2, 5], bits_to_bytes("01001101100100001100000101010000"),
        np.array([1, 10, 2, 4, 0, 99, 10, 2, 7, 4], np.int16), 3,
        quant=dict(scale=[0.5, 0.25], zero_point=[0, 0], quantized_dimension=0))
    with tw.open(data) as m:
        w = m["w"]
        np.testing.assert_array_equal(w.numpy(), [[2, 4, 4, 10, 1], [7, 99, 10, 2, 4]])
        np.testing.assert_array_equal(
            w.dequantize(), np.array([[2, 4, 4, 10, 1], [7, 99, 10, 2, 4]], np.float32) *
            np.array([[0.5], [0.25]], np.float32))


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("tname,dtype", [("INT8", np.int8), ("FLOAT32", np.float32),
                                         ("INT32", np.int32), ("INT64", np.int64)])
def test_random_per_tensor_tables(bits, tname, dtype):
    rng = np.random.default_rng(bits)
    n = 1 << bits
    table = (rng.permutation(200)[:n] - 100).astype(dtype)
    idx = rng.integers(0, n, size=(3, 7))
    data, _ = compressed_model(tname, [3, 7], pack_msb_first(idx.reshape(-1), bits), table, bits)
    with tw.open(data) as m:
        np.testing.assert_array_equal(m["w"].numpy(), table[idx])


@pytest.mark.parametrize("axis", [0, 1, 3])
def test_per_channel_tables_along_the_quantized_dimension(axis):
    """qdim 0 is TFLM's default channel layout, qdim 3 (last) its alternate axis
    (depthwise filters); the middle axis follows the same rule."""
    rng = np.random.default_rng(axis)
    shape = [3, 4, 2, 5]
    channels = shape[axis]
    bits, stride = 3, 6
    tables = rng.integers(-128, 128, size=(channels, stride)).astype(np.int8)
    idx = rng.integers(0, stride, size=shape)
    chan = np.indices(shape)[axis]
    expected = tables[chan, idx]
    data, _ = compressed_model(
        "INT8", shape, pack_msb_first(idx.reshape(-1), bits), tables.reshape(-1), bits,
        quant=dict(scale=[0.1] * channels, zero_point=[0] * channels, quantized_dimension=axis))
    with tw.open(data) as m:
        np.testing.assert_array_equal(m["w"].numpy(), expected)


def test_a_model_without_compression_metadata():
    b = ModelBuilder()
    b.subgraph().tensor("t", "INT8", [2], np.array([1, 2], np.int8))
    with tw.open(b.finish()) as m:
        assert m["t"].compression is None


@pytest.mark.parametrize("kind,err,match", [
    ("version", tw.UnsupportedError, "schema_version 2 is newer"),
    ("bits0", tw.InvalidModelError, "index_bitwidth 0"),
    ("index", tw.InvalidModelError, "index 7 lies beyond the 6-entry value table"),
    ("short", tw.InvalidModelError, r"10 3-bit indices need 4 bytes"),
    ("table", tw.InvalidModelError, "not a whole number of 2-byte INT16 values"),
    ("channels", tw.InvalidModelError, "do not split into 4 equal"),
    ("tensor", tw.InvalidModelError, "names tensor 9 of subgraph 0, which does not exist"),
    ("buffer", tw.InvalidModelError, "value table .* cannot be read"),
])
def test_damaged_compression_is_refused(kind, err, match):
    bits_ok = bits_to_bytes("00101101101010010100001000101100")
    table = np.array([99, 2, 10, 4, 1, 7], np.int16)
    kw = {}
    bits = 3
    extra = ()
    if kind == "version":
        kw["version"] = 2
    if kind == "bits0":
        bits = 0
    if kind == "index":
        bits_ok = bits_to_bytes("111" + "0" * 29)
    if kind == "short":
        bits_ok = bits_ok[:3]
    if kind == "table":
        table = np.frombuffer(table.tobytes()[:11], np.uint8)
    if kind == "channels":
        kw["quant"] = dict(scale=[1.0] * 4, zero_point=[0] * 4, quantized_dimension=1)
    if kind == "tensor":
        extra = ((9, 1, 3),)
    shape = [10] if kind != "channels" else [1, 4, 1]
    if kind == "channels":
        bits_ok = pack_msb_first([0, 1, 2, 3], 3)
        table = np.arange(6, dtype=np.int16)
    data, vb = compressed_model("INT16", shape, bits_ok, table, bits, extra_luts=extra, **kw)
    if kind == "buffer":
        data, _ = compressed_model("INT16", shape, bits_ok, table, bits,
                                   extra_luts=())
        # point the value buffer past the end of the buffers vector
        data = data.replace(metadata_bytes([[(0, vb, 3)]]), metadata_bytes([[(0, 99, 3)]]))
    with tw.open(data) as m:
        with pytest.raises(err, match=match):
            m["w"].numpy()


def test_unreadable_metadata_makes_every_tensor_refuse_rather_than_guess():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("t", "INT8", [2], np.array([1, 2], np.int8))
    b.add_metadata("COMPRESSION_METADATA", b"\x01\x02")
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="COMPRESSION_METADATA cannot be read"):
            m["t"].numpy()
