"""JSON export: tensor metadata and quantization always, values when asked.

One record per tensor (also used by ``tflite-weights inspect --json``)::

    {"subgraph": 0, "index": 3, "name": "conv/weights", "type": "INT8", "type_code": 9,
     "shape": [8, 3, 3, 1], "shape_signature": [8, 3, 3, 1], "size": 72,
     "buffer": 4, "has_data": true, "data_offset": 1234, "nbytes": 72,
     "is_variable": false, "is_sparse": false,
     "quantization": {"summary": "per-channel(8) axis=0", "scale": [...],
                      "zero_point": [...], "quantized_dimension": 0, ...} | null}

With values: ``"values"`` (nested lists in the tensor's shape) and, for
quantized tensors, ``"dequantized"``.  Floats are exact: each float32 is
written as the Python float of the same value (``repr``, shortest round trip
of that double), so ``np.float32(v)`` gives back the stored bits.  JSON has
no NaN or infinity: they are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.  STRING values are text when every
string is UTF-8 (``"values_encoding": "utf-8"``), else hexadecimal
(``"values_encoding": "hex"``).  INT4/UINT4/INT2 values are unpacked;
BFLOAT16/FLOAT8 values are their float values.
"""

from __future__ import annotations

import json

import numpy as np

from .. import __version__
from ..errors import TFLiteWeightsError
from ..format.types import TYPES

__all__ = ["tensor_record", "json_values", "export_json", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def json_values(a: np.ndarray):
    """Nested lists of JSON-ready values (see the module documentation)."""
    a = np.asarray(a)
    kind = a.dtype.kind
    if a.dtype == object:  # strings
        return _strings(a)[0]
    if kind == "c":
        a = np.stack([a.real, a.imag], axis=-1)
        kind = "f"
    if kind == "V":  # ml_dtypes' bfloat16 and float8 types
        a = a.astype(np.float64)
        kind = "f"
    if kind == "f":
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            obj = a.astype(object)
            obj[np.isnan(a)] = "NaN"
            obj[np.isposinf(a)] = "Infinity"
            obj[np.isneginf(a)] = "-Infinity"
            return obj.tolist()
    return a.tolist()


def _strings(a: np.ndarray):
    flat = a.reshape(-1).tolist()
    try:
        texts = [b.decode("utf-8") for b in flat]
        enc = "utf-8"
    except UnicodeDecodeError:
        texts = [b.hex() for b in flat]
        enc = "hex"
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out.reshape(a.shape).tolist(), enc


def _quant(q) -> "dict | None":
    if q is None:
        return None
    d = {"summary": q.summary()}
    d.update(q.to_dict())
    return d


def tensor_record(t, *, values: bool = False, dequantize: bool = False) -> dict:
    """The JSON record of one tensor.  Raises the reader's errors for a damaged tensor."""
    rec = {
        "subgraph": t.subgraph,
        "index": t.index,
        "name": t.name,
        "type": t.type,
        "type_code": t.type_code,
        "shape": list(t.shape),
        "shape_signature": list(t.shape_signature),
        "size": t.size,
        "buffer": t.buffer,
        "has_data": t.has_data,
        "data_offset": t.data_offset,
        "nbytes": t.nbytes,
        "is_variable": t.is_variable,
        "is_sparse": t.is_sparse,
        "quantization": _quant(t.quantization),
    }
    if values and t.has_data and t.dtype is not None:
        v = t.numpy()
        if v.dtype == object:
            rec["values"], rec["values_encoding"] = _strings(v)
        else:
            rec["values"] = json_values(v)
        info = TYPES.get(t.type_code)
        if dequantize and t.quantization is not None and not (info and
                                                              info.dequantizes_to_itself):
            try:
                rec["dequantized"] = json_values(t.dequantize())
            except TFLiteWeightsError as e:
                rec["dequantized_error"] = str(e)
    return rec


def export_json(model, out, *, tensors=None, values: bool = False, dequantize: bool = False,
                source=None, progress=None) -> dict:
    """Write ``{"format_version": 1, "generator", "model", "tensors": [...]}`` to ``out``
    (a text file object), one tensor record per line.  ``tensors`` defaults to every
    constant; ``source`` is a :class:`~tflite_weights.export.SourceInfo` (computed
    when None)."""
    from . import select_tensors, source_info
    if tensors is None:
        tensors = select_tensors(model)
    if source is None:
        source = source_info(model)
    head = {
        "format_version": FORMAT_VERSION,
        "generator": f"tflite-weights {__version__}",
        "model": {"file": source.name, "size": source.size, "sha256": source.sha256,
                  "version": model.version, "description": model.description,
                  "subgraph_count": len(model.subgraphs)},
    }
    text = json.dumps(head, ensure_ascii=False)
    out.write(text[:-1] + ',\n "tensors": [')
    total = sum(t.nbytes for t in tensors) or 1
    done = 0
    for i, t in enumerate(tensors):
        rec = tensor_record(t, values=values, dequantize=dequantize)
        out.write(("\n  " if i == 0 else ",\n  ")
                  + json.dumps(rec, ensure_ascii=False, allow_nan=False))
        done += t.nbytes
        if progress is not None:
            progress(done, total)
    out.write("\n ]}\n")
    return {"tensors": len(tensors)}
