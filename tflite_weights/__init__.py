"""Read every tensor of a TensorFlow Lite / LiteRT model, with its quantization, as numpy.

    >>> import tflite_weights
    >>> with tflite_weights.open("model.tflite") as model:
    ...     w = model["conv/weights"]
    ...     w.numpy(), w.quantization.scale, w.dequantize()

No TensorFlow and no interpreter: the file is read directly, lazily, through
bounds-checked reads over a read-only memory map.
"""

from .errors import (
    ClosedModelError,
    ExternalDataError,
    InvalidModelError,
    NoDataError,
    QuantizationError,
    TensorNotFoundError,
    TFLiteWeightsError,
    UnsupportedError,
)
from .format.records import BlockwiseDetails, MultiAxisDetails, Quantization
from .model import Buffer, Model, Subgraph, Tensor, open
from . import verify  # the module: verify.verify(source) -> list of defects

__version__ = "0.1.0"

__all__ = [
    "open",
    "Model",
    "Subgraph",
    "Tensor",
    "Buffer",
    "Quantization",
    "BlockwiseDetails",
    "MultiAxisDetails",
    "verify",
    "TFLiteWeightsError",
    "InvalidModelError",
    "UnsupportedError",
    "NoDataError",
    "QuantizationError",
    "ExternalDataError",
    "TensorNotFoundError",
    "ClosedModelError",
    "__version__",
]
