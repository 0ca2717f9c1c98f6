"""quantize_multiplier against an independent scalar port of TFLite's QuantizeMultiplier.

The reference below follows ``tflite/kernels/internal/quantization_util.cc``
line by line with ``math.frexp`` and exact rational rounding (``Fraction``),
so it shares no arithmetic with the vectorised numpy implementation.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tflite_weights.numerics.fixedpoint import effective_scales, quantize_multiplier, requantization


def _round_half_away(x: Fraction) -> int:
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def reference(double_multiplier: float, single_rounding: bool = False) -> "tuple[int, int]":
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    q_fixed = _round_half_away(Fraction(q) * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    assert q_fixed <= 2**31 - 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift


def _cases():
    out = [0.0, -0.0, 1.0, 0.5, 0.25, 2.0, 3.0, 0.75, 1e-3, 0.1, 0.3333333333, 1.5, 7.9]
    out += [2.0 ** k for k in range(-45, 45)]                     # powers of two
    out += [math.nextafter(2.0 ** k, 0) for k in range(-40, 40)]   # just below: rounds up to 2^31
    out += [math.nextafter(2.0 ** k, math.inf) for k in range(-40, 40)]
    out += [10.0 ** k for k in range(-15, 10)]                    # tiny to large
    out += [(k + 0.5) / 2 ** 31 * 2 ** 5 for k in (2 ** 30, 2 ** 30 + 1, 2 ** 31 - 2)]  # exact halves
    out += [2.0 ** -31, 2.0 ** -32, 2.0 ** -32 * 1.5, 2.0 ** -33, 5e-324, 1e-300]  # flush boundary
    out += [1e30, 1e300, 12345.678]
    rng = np.random.default_rng(7)
    out += list(rng.uniform(0, 1, 200)) + list(rng.lognormal(-8, 4, 200))
    out += [-x for x in out[:60]]
    return [float(x) for x in out]


CASES = _cases()


@pytest.mark.parametrize("single_rounding", [False, True])
def test_matches_the_scalar_reference_over_a_wide_range(single_rounding):
    mult, shift = quantize_multiplier(np.array(CASES), single_rounding=single_rounding)
    assert mult.dtype == np.int32 and shift.dtype == np.int32
    for x, m, s in zip(CASES, mult.tolist(), shift.tolist()):
        assert (m, s) == reference(x, single_rounding), f"multiplier {x!r}"


@settings(max_examples=400, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_matches_the_scalar_reference_for_any_double(x):
    m, s = quantize_multiplier(x)
    assert (int(m), int(s)) == reference(x)


def test_rounding_up_to_two_pow_31_moves_to_the_next_shift():
    x = math.nextafter(1.0, 0.0)  # frexp: q just below 1 -> q_fixed rounds to 2^31
    m, s = quantize_multiplier(x)
    assert (int(m), int(s)) == (1 << 30, 1)


def test_shifts_below_minus_31_flush_to_zero():
    m, s = quantize_multiplier([2.0 ** -40, 2.0 ** -31])
    assert m.tolist()[0] == 0 and s.tolist()[0] == 0
    assert s.tolist()[1] == -30


def test_non_finite_multipliers_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize_multiplier([1.0, float("nan")])


def test_effective_scales_are_computed_in_double_in_the_runtime_order():
    i, w, o = np.float32(0.0235), np.array([0.0017, 0.004], np.float32), np.float32(0.0711)
    got = effective_scales(i, w, o)
    for g, ws in zip(got.tolist(), w.tolist()):
        assert g == float(i) * ws / float(o)


def test_requantization_broadcasts_a_per_tensor_scale():
    m, s = requantization(0.5, [0.25], 0.125, channels=3)
    assert m.tolist() == [1 << 30] * 3 and s.tolist() == [1] * 3
    with pytest.raises(ValueError, match="2 weight scales for 3"):
        requantization(0.5, [0.25, 0.5], 0.125, channels=3)
