"""The package's one exception family.

Every defect of a model, and every request the package cannot honour, raises a
subclass of :class:`TFLiteWeightsError`, which derives from :class:`ValueError`
so that callers' ``except ValueError`` habits keep working.  Messages say where
(table, field, index, byte offset) and what (sizes, counts, expected values).
"""

from __future__ import annotations

__all__ = [
    "TFLiteWeightsError",
    "InvalidModelError",
    "UnsupportedError",
    "NoDataError",
    "QuantizationError",
    "ExternalDataError",
    "TensorNotFoundError",
    "ClosedModelError",
]


class TFLiteWeightsError(ValueError):
    """Base class of every error raised by tflite_weights."""


class InvalidModelError(TFLiteWeightsError):
    """The file is not a well-formed TFLite flatbuffer, or a part of it is damaged.

    Raised by :func:`tflite_weights.open` for defects of the file as a whole
    (identifier, root table, version) and, lazily, by the part of the model
    that is damaged when that part is used.
    """


class UnsupportedError(TFLiteWeightsError):
    """The model uses a feature this reader does not turn into values.

    Examples: asking ``numpy()`` of a RESOURCE or VARIANT tensor, an unknown
    tensor type code, or a quantization scheme unknown to the schema.
    """


class NoDataError(TFLiteWeightsError):
    """The tensor has no stored values (an activation, an input, a variable)."""


class QuantizationError(TFLiteWeightsError):
    """Quantization parameters are missing or do not fit the tensor."""


class ExternalDataError(InvalidModelError):
    """Tensor data stored outside the model file is missing, too short or unsafe."""


class TensorNotFoundError(TFLiteWeightsError, KeyError):
    """No tensor (or more than one) carries the name asked for.

    Derives from :class:`KeyError` too, so ``model.get()``-style code and
    ``except KeyError`` keep working.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ClosedModelError(TFLiteWeightsError):
    """The model was closed; open it again to read from it."""
