"""Every fixture against the interpreter's committed goldens, and the QAT claim.

``fixtures/goldens/<name>.json|.npz`` hold what the LiteRT interpreter
reported for each fixture (scripts/make_fixtures.py, run with TensorFlow in
its own venv).  These tests need no TensorFlow and no interpreter.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tflite_weights as tw
from tflite_weights.testing import Report, compare_with_dump

from tests.support.paths import FIXTURES

GOLDENS = os.path.join(FIXTURES, "goldens")
NAMES = sorted(f[:-5] for f in os.listdir(GOLDENS) if f.endswith(".json")) \
    if os.path.isdir(GOLDENS) else []


def load_golden(name):
    with open(os.path.join(GOLDENS, name + ".json")) as f:
        dump = json.load(f)
    arrays = {}
    npz = os.path.join(GOLDENS, name + ".npz")
    if os.path.exists(npz):
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return dump, arrays


def test_every_fixture_has_a_golden():
    models = sorted(f[:-7] for f in os.listdir(FIXTURES) if f.endswith(".tflite"))
    assert models and models == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fixture_agrees_with_the_interpreter_golden(name):
    dump, arrays = load_golden(name)
    with tw.open(os.path.join(FIXTURES, name + ".tflite")) as m:
        report = compare_with_dump(m, dump, arrays, Report(model=name))
        n_tensors = sum(len(sg.tensors) for sg in m.subgraphs)
        n_constants = sum(t.has_data for sg in m.subgraphs for t in sg.tensors)
    assert report.status == "ok", report
    assert report.differences == [], str(report)
    # the comparison really covered the model: every tensor, every constant's values
    golden_tensors = len(dump["tensors"]) + sum(len(o["tensors"]) for o in dump["other_subgraphs"])
    added = sum(e.get("added_by_allocate", False) for e in dump["tensors"])
    assert report.tensors_compared == golden_tensors - added == n_tensors
    constants_in_golden = sum(1 for e in dump["tensors"] if e.get("npz_key") or
                              "string_value" in e)
    assert report.values_compared >= constants_in_golden > 0
    assert n_constants >= constants_in_golden


def _golden_entries(dump):
    yield 0, dump["tensors"]
    for o in dump.get("other_subgraphs") or ():
        yield o["subgraph"], o["tensors"]


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_is_q_minus_zero_point_times_scale_along_the_axis(name):
    """``dequantize()`` against the formula applied to what the interpreter reported:
    its values, its scales, its zero points and its quantized dimension (not the
    reader's), in float64 rounded once to float32 as the runtime's DEQUANTIZE."""
    dump, arrays = load_golden(name)
    checked = 0
    with tw.open(os.path.join(FIXTURES, name + ".tflite")) as m:
        for sgi, entries in _golden_entries(dump):
            for e in entries:
                qp = e.get("quantization_parameters") or {}
                key = e.get("npz_key")
                if (not qp.get("scales") or key not in arrays or qp.get("block_size")
                        or e.get("npz_layout") != "dense" or e["dtype"] not in (
                            "int8", "uint8", "int16", "int32", "int64")):
                    continue
                values = arrays[key].astype(np.float64)
                scales = np.asarray(qp["scales"], np.float32).astype(np.float64)
                zps = np.asarray(qp["zero_points"], np.int64)
                axis = qp["quantized_dimension"]
                if scales.size > 1:
                    bshape = [1] * values.ndim
                    bshape[axis] = -1
                    scales = scales.reshape(bshape)
                    zps = zps.reshape(bshape) if zps.size > 1 else zps
                expected = ((values - zps) * scales).astype(np.float32)
                got = m.tensor(e["index"], subgraph=sgi).dequantize()
                assert got.dtype == np.float32 and got.shape == expected.shape
                assert got.tobytes() == expected.tobytes(), (sgi, e["index"], e["name"])
                checked += 1
    if name in ("qat_conv", "ptq_int8", "depthwise", "int16x8"):
        assert checked >= 2  # weights and biases
    if name == "dynamic_range":
        assert checked >= 1  # the large kernel (small ones stay float)


def test_depthwise_weights_are_per_channel_on_axis_3():
    with tw.open(os.path.join(FIXTURES, "depthwise.tflite")) as m:
        filters = [t for op, role, t in m.weights() if op.opcode == "DEPTHWISE_CONV_2D"
                   and role in ("filter", "weights")]
    assert filters
    q = filters[0].quantization
    assert q.quantized_dimension == 3 and q.scale.size == filters[0].shape[3] > 1


def test_int16x8_model_has_int64_bias_and_int16_activations():
    with tw.open(os.path.join(FIXTURES, "int16x8.tflite")) as m:
        types = {t.type for t in m.tensors}
        biases = [t for op, role, t in m.weights() if role == "bias"]
    assert "INT16" in types
    assert biases and all(b.type == "INT64" for b in biases)


# -- the QAT story, end to end ------------------------------------------------------------
def _qat():
    path = os.path.join(FIXTURES, "qat_conv.tflite")
    with np.load(os.path.join(FIXTURES, "qat_conv_float_weights.npz")) as z:
        trained = {k: z[k] for k in z.files}
    return path, trained


def _weight(m, opcode, role):
    hits = [(op, t) for op, r, t in m.weights() if op.opcode == opcode and r == role]
    assert len(hits) == 1, hits
    return hits[0]


def test_qat_int8_weights_lie_within_half_a_step_of_the_trained_float_weights():
    path, trained = _qat()
    with tw.open(path) as m:
        _, conv_w = _weight(m, "CONV_2D", "filter")
        _, dense_w = _weight(m, "FULLY_CONNECTED", "weights")
        cases = [
            # TFLite conv weights are [O, H, W, I]; Keras keeps [H, W, I, O]
            (conv_w, trained["conv_kernel"].transpose(3, 0, 1, 2),
             trained["quant_conv__kernel_min_0"], trained["quant_conv__kernel_max_0"]),
            # fully-connected weights are [O, I]; Keras keeps [I, O]
            (dense_w, trained["dense_kernel"].T,
             trained["quant_dense__kernel_min_0"], trained["quant_dense__kernel_max_0"]),
        ]
        for t, float_w, lo, hi in cases:
            assert t.type == "INT8"
            q = t.quantization
            axis = q.quantized_dimension
            shape = [1] * float_w.ndim
            if np.ndim(lo):  # per-channel ranges, along the output channel
                shape[axis] = -1
            clipped = np.clip(float_w, np.reshape(lo, shape), np.reshape(hi, shape))
            step = q.scale.astype(np.float64)
            if q.is_per_channel:
                step = step.reshape([-1 if d == axis else 1 for d in range(float_w.ndim)])
            error = np.abs(t.dequantize().astype(np.float64) - clipped)
            assert np.all(error <= step / 2 * (1 + 1e-5) + 1e-9), float(np.max(error / step))
            # and the weights are really quantized, not a float copy
            assert len(np.unique(t.numpy())) > 16


def test_qat_int32_biases_equal_float_bias_over_input_times_weight_scale():
    path, trained = _qat()
    with tw.open(path) as m:
        for opcode, key in (("CONV_2D", "conv_bias"), ("FULLY_CONNECTED", "dense_bias")):
            op, w = _weight(m, opcode, "filter" if opcode == "CONV_2D" else "weights")
            _, b = _weight(m, opcode, "bias")
            x = op.input_tensors[0]
            assert b.type == "INT32"
            in_scale = np.float64(x.quantization.scale[0])
            w_scale = w.quantization.scale.astype(np.float64)
            # the stored bias scale is input_scale * weight_scale, to the last bit of
            # float32 (the converter multiplies the unrounded scales)
            np.testing.assert_allclose(b.quantization.scale, in_scale * w_scale,
                                       rtol=2.4e-7, atol=0)
            expected = np.round(trained[key].astype(np.float64) / (in_scale * w_scale))
            assert np.max(np.abs(b.numpy() - expected)) <= 1
            np.testing.assert_allclose(b.dequantize(), trained[key],
                                       atol=float(np.max(in_scale * w_scale)))


def test_qat_conversion_metadata_says_quantization_aware_training():
    path, _ = _qat()
    with tw.open(path) as m:
        modes = m.conversion_metadata.options.model_optimization_modes
    assert "QUANTIZATION_AWARE_TRAINING" in modes
