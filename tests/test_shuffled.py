"""SHUFFLED4x16INT8 fully-connected weights: round trip with an independent shuffle,
and the runtime's shuffled kernel against a numpy FC over the unshuffled weights."""

import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import S, ModelBuilder, run_interpreter
from tflite_weights.numerics.shuffled import shuffle_4x16, unshuffle_4x16
from tflite_weights.operators import (dequantize_fc_weights, is_shuffled_fc_weights,
                                      unshuffle_fc_weights)


def shuffle_by_loops(w):
    """The pointer walk of reference ShuffledFullyConnected, written out."""
    rows, cols = w.shape
    out = []
    for c in range(0, rows, 4):
        for d in range(0, cols, 16):
            for i in range(4):
                for j in range(16):
                    out.append(int(w[c + i, d + j]) ^ 0x80)
    return np.array(out, np.uint8)


def shuffled_fc_model(W, batch, bias, *, weights_format=1, extra_plain_fc=False):
    O, I = W.shape
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "UINT8", [batch, I], quant=dict(scale=[0.25], zero_point=[128]))
    w = sg.tensor("w", "UINT8", [O, I], shuffle_by_loops(W),
                  quant=dict(scale=[0.25], zero_point=[128]))
    bb = sg.tensor("b", "INT32", [O], bias, quant=dict(scale=[0.0625], zero_point=[0]))
    y = sg.tensor("y", "INT16", [batch, O], quant=dict(scale=[1.0], zero_point=[0]))
    ws = sg.tensor("workspace", "UINT8", [batch, I])
    opt = S.FullyConnectedOptionsT()
    opt.weightsFormat = weights_format
    sg.op("FULLY_CONNECTED", [x, w, bb], [y, ws], options=opt,
          options_type=S.BuiltinOptions.FullyConnectedOptions, version=2)
    if extra_plain_fc:
        y2 = sg.tensor("y2", "INT16", [batch, O])
        sg.op("FULLY_CONNECTED", [x, w, bb], [y2], options=S.FullyConnectedOptionsT(),
              options_type=S.BuiltinOptions.FullyConnectedOptions)
    sg.sg.inputs, sg.sg.outputs = [x], [y]
    return b.finish()


@pytest.mark.parametrize("shape", [(4, 16), (8, 32), (12, 48)])
def test_round_trip_against_the_kernels_pointer_walk(shape):
    rng = np.random.default_rng(shape[0])
    W = rng.integers(0, 256, size=shape).astype(np.uint8)
    stored = shuffle_by_loops(W)
    np.testing.assert_array_equal(shuffle_4x16(W), stored)
    np.testing.assert_array_equal(unshuffle_4x16(stored, *shape), W)
    # read as int8, the stored bytes are the weights minus the zero point 128
    np.testing.assert_array_equal(
        unshuffle_4x16(stored, *shape).astype(np.int16) - 128,
        shuffle_by_loops(W).view(np.int8).reshape(shape[0] // 4, shape[1] // 16, 4, 16)
        .transpose(0, 2, 1, 3).reshape(shape))


def test_tensor_unshuffle_uses_the_operator_options():
    rng = np.random.default_rng(1)
    W = rng.integers(0, 256, size=(8, 32)).astype(np.uint8)
    with tw.open(shuffled_fc_model(W, 1, np.zeros(8, np.int32))) as m:
        w = m["w"]
        assert is_shuffled_fc_weights(w) and not is_shuffled_fc_weights(m["x"])
        got = unshuffle_fc_weights(w)
        assert got.dtype == np.uint8 and got.shape == (8, 32) and not got.flags.writeable
        np.testing.assert_array_equal(got, W)
        np.testing.assert_array_equal(w.unshuffle(), W)
        np.testing.assert_array_equal(dequantize_fc_weights(w),
                                      (W.astype(np.float32) - 128) * np.float32(0.25))
        # numpy() stays the stored bytes
        np.testing.assert_array_equal(w.numpy().reshape(-1), shuffle_by_loops(W))


def test_unshuffle_refuses_weights_that_are_not_shuffled():
    W = np.zeros((8, 32), np.uint8)
    with tw.open(shuffled_fc_model(W, 1, np.zeros(8, np.int32), weights_format=0)) as m:
        with pytest.raises(tw.UnsupportedError, match="force=True"):
            unshuffle_fc_weights(m["w"])
        np.testing.assert_array_equal(unshuffle_fc_weights(m["w"], force=True),
                                      unshuffle_4x16(m["w"].raw(), 8, 32))


def test_weights_read_both_shuffled_and_plain_are_refused():
    W = np.zeros((8, 32), np.uint8)
    with tw.open(shuffled_fc_model(W, 1, np.zeros(8, np.int32), extra_plain_fc=True)) as m:
        with pytest.raises(tw.InvalidModelError, match="both as shuffled and as plain"):
            unshuffle_fc_weights(m["w"])


@pytest.mark.parametrize("shape,nbytes,match", [
    ((6, 16), 96, "multiple of 4"),
    ((4, 20), 80, "multiple of 16"),
    ((4, 16), 60, "need 64 bytes"),
])
def test_untileable_or_short_weights(shape, nbytes, match):
    with pytest.raises(tw.InvalidModelError, match=match):
        unshuffle_4x16(np.zeros(nbytes, np.uint8), *shape)


@pytest.mark.parametrize("batch", [1, 4])
def test_runtime_shuffled_kernel_equals_numpy_fc_over_unshuffled_weights(batch):
    """The interpreter runs the shuffled kernel on the stored bytes; a plain integer FC
    over our unshuffled matrix must give the same int16 outputs (the requantization
    multiplier is 1/16, so rounding at exact halves may differ by one)."""
    rng = np.random.default_rng(7 + batch)
    O, I = 8, 32
    W = rng.integers(0, 256, size=(O, I)).astype(np.uint8)
    X = rng.integers(0, 256, size=(batch, I)).astype(np.uint8)
    bias = rng.integers(-1000, 1000, size=O).astype(np.int32)
    data = shuffled_fc_model(W, batch, bias)
    (out,) = run_interpreter(data, [X])
    with tw.open(data) as m:
        Wu = unshuffle_fc_weights(m["w"]).astype(np.int64)
    acc = (X.astype(np.int64) - 128) @ (Wu - 128).T + bias
    expected = np.clip(np.round(acc / 16), -32768, 32767)
    assert out.dtype == np.int16
    assert np.abs(out - expected).max() <= 1
    exact = acc % 16 != 8  # away from the halfway cases both round the same way
    np.testing.assert_array_equal(out[exact], expected[exact])


def test_zero_size_shape_whose_dimensions_overflow_is_invalid():
    b = ModelBuilder()
    b.subgraph().tensor("w", "UINT8", [0, 1 << 30, 1 << 30, 1 << 30, 16], np.zeros(16, np.uint8))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="multiplies past"):
            unshuffle_fc_weights(m["w"], force=True)
