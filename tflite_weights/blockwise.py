"""Blockwise and multi-axis quantization (scales held in other tensors)."""

from __future__ import annotations

from .errors import UnsupportedError


def dequantize_blockwise(tensor):
    q = tensor.quantization
    raise UnsupportedError(
        f"{tensor._where} ({tensor.name!r}) uses {q.details_type}, which dequantize() does "
        f"not apply yet")
