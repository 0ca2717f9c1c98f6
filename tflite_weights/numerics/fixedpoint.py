"""Fixed-point requantization parameters, as TFLite and TFLite Micro compute them.

Integer kernels (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED with int8 weights)
scale their int32 accumulators to the output's quantization with a Q31
multiplier and a power-of-two shift per output channel.  The runtime derives
them when it prepares the model; firmware that runs its own kernels (CMSIS-NN
without TFLite Micro, hand-written DSP code) needs the same numbers at build
time.

``quantize_multiplier`` is TFLite's ``QuantizeMultiplier``
(``tflite/kernels/internal/quantization_util.cc``) over whole numpy arrays:

* ``q, shift = frexp(m)`` (``0.5 <= |q| < 1``, ``m = q * 2**shift``);
* ``q_fixed = round(q * 2**31)``, rounding halves away from zero (``std::round``);
* when rounding reaches ``2**31``, halve it and add one to the shift;
* a shift below -31 would shift every bit out: multiplier and shift become 0;
* ``m == 0`` gives ``(0, 0)``.

Under ``TFLITE_SINGLE_ROUNDING`` the runtime also saturates shifts above 30
to ``(2**31 - 1, 30)``; ``single_rounding=True`` does the same.  The real
multiplier of a channel is ``input_scale * weight_scale[c] / output_scale``
computed in double precision, in that order (``PopulateConvolutionQuantizationParams``
in ``tflite/kernels/kernel_util.cc`` and TFLite Micro's copy of it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["quantize_multiplier", "effective_scales", "requantization"]

_Q31 = float(1 << 31)


def quantize_multiplier(real_multiplier, *, single_rounding: bool = False
                        ) -> "tuple[np.ndarray, np.ndarray]":
    """``(multiplier, shift)`` as int32 arrays of the shape of ``real_multiplier``.

    ``real_multiplier`` is converted to float64 first (as the C++ takes a
    ``double``).  Raises ``ValueError`` for NaN or infinite values, which the
    runtime rejects with a failed check.
    """
    m = np.asarray(real_multiplier, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError("a requantization multiplier is NaN or infinite")
    q, shift = np.frexp(m)
    shift = shift.astype(np.int64)
    # std::round: halves away from zero.  |q| * 2**31 is exact (a power-of-two
    # scaling) and below 2**31, so adding 0.5 and flooring is exact as well.
    q_fixed = (np.sign(q) * np.floor(np.abs(q) * _Q31 + 0.5)).astype(np.int64)
    top = q_fixed == (1 << 31)
    q_fixed = np.where(top, q_fixed // 2, q_fixed)
    shift = np.where(top, shift + 1, shift)
    flushed = shift < -31
    q_fixed = np.where(flushed, 0, q_fixed)
    shift = np.where(flushed, 0, shift)
    if single_rounding:
        big = shift > 30
        q_fixed = np.where(big, (1 << 31) - 1, q_fixed)
        shift = np.where(big, 30, shift)
    return q_fixed.astype(np.int32), shift.astype(np.int32)


def effective_scales(input_scale, weight_scales, output_scale) -> np.ndarray:
    """``double(input_scale) * double(weight_scale[c]) / double(output_scale)``."""
    w = np.asarray(weight_scales, dtype=np.float32).astype(np.float64)
    return np.float64(np.float32(input_scale)) * w / np.float64(np.float32(output_scale))


def requantization(input_scale, weight_scales, output_scale, channels: "int | None" = None,
                   *, single_rounding: bool = False) -> "tuple[np.ndarray, np.ndarray]":
    """Per-channel ``(multiplier, shift)`` of an integer convolution or fully connected op.

    ``weight_scales`` holds one scale per output channel, or a single scale
    that is broadcast to ``channels`` entries (as TFLite Micro does for
    per-tensor convolution weights).
    """
    w = np.asarray(weight_scales, dtype=np.float32).reshape(-1)
    if w.size == 0:
        raise ValueError("the weights have no quantization scale")
    if channels is not None and w.size == 1 and channels > 1:
        w = np.broadcast_to(w, (channels,))
    elif channels is not None and w.size != channels:
        raise ValueError(f"{w.size} weight scales for {channels} output channels")
    return quantize_multiplier(effective_scales(input_scale, w, output_scale),
                               single_rounding=single_rounding)
