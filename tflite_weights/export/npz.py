"""numpy ``.npz`` export: one array per tensor, keyed by its name.

Keys: the tensor name with every character outside ``A-Z a-z 0-9 _ . / -``
replaced by ``_``, leading ``/`` removed and ``..`` path parts replaced by
``__`` (the archive is a zip: keys must not escape the folder it is unpacked
in); an empty result becomes ``tensor_<index>``; tensors of subgraph k > 0
get ``sg<k>/`` in front.  Quantized tensors add ``<key>__scale`` (float32),
``<key>__zero_point`` (int64) and ``<key>__quantized_dimension`` (0-d
int32); ``dequantize=True`` adds ``<key>__dequantized`` (float32).  If any of
these names is already taken, the key gets ``#<tensor index>`` appended
(``#`` never occurs in a sanitised name), in export order, so keys are
unique and deterministic.

Values are the stored ones, bit for bit: fixed-width types as their numpy
dtype; BFLOAT16 and FLOAT8 as their uint16/uint8 bit patterns (``.npy`` has
no such dtypes); INT4/UINT4/INT2 unpacked to int8/uint8; STRING as the bytes
of all strings (uint8) with ``<key>__offsets`` (int64, count + 1); sparse
tensors densified.

The entry ``__tflite_weights__`` (a 0-d unicode array) holds JSON: format
version, the source file's name, size and SHA-256, and per key the tensor's
name, subgraph, index, type, shape, how it is stored and its quantization.

The archive is written without compression and with fixed timestamps, so
the same model gives the same bytes.
"""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np

from .. import __version__
from ..format.types import PACKED, TYPES
from ..errors import TFLiteWeightsError

__all__ = ["npz_key", "export_npz", "META_KEY", "FORMAT_VERSION"]

META_KEY = "__tflite_weights__"
FORMAT_VERSION = 1
_SUFFIXES = ("", "__scale", "__zero_point", "__quantized_dimension", "__dequantized",
             "__offsets")
_BAD = re.compile(r"[^A-Za-z0-9_./-]")
_DATE = (1980, 1, 1, 0, 0, 0)


def npz_key(name: str, subgraph: int, index: int) -> str:
    """The sanitised key of a tensor (before the uniqueness rule)."""
    key = _BAD.sub("_", name).lstrip("/")
    key = "/".join("__" if part == ".." else part for part in key.split("/"))
    if not key.strip("/"):
        key = f"tensor_{index}"
    return f"sg{subgraph}/{key}" if subgraph else key


def _keys(tensors) -> list:
    used: set[str] = {META_KEY}
    out = []
    for t in tensors:
        key = npz_key(t.name, t.subgraph, t.index)
        if any(key + s in used for s in _SUFFIXES):
            key = f"{key}#{t.index}"
        used.update(key + s for s in _SUFFIXES)
        out.append(key)
    return out


def _stored(t) -> "tuple[np.ndarray, np.ndarray | None, str]":
    """``(values, string offsets or None, how it is stored)``."""
    info = TYPES.get(t.type_code)
    v = t.numpy()
    if v.dtype == object:
        flat = v.reshape(-1).tolist()
        lengths = np.fromiter((len(s) for s in flat), dtype=np.int64, count=len(flat))
        offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
        return np.frombuffer(b"".join(flat), np.uint8), offsets, "string bytes + offsets"
    if info.bit_pattern is not None:
        return v.view(info.bit_pattern), None, f"{info.name} bit patterns"
    if info.layout == PACKED:
        return v, None, f"{info.name} unpacked to {v.dtype.name}"
    return v, None, v.dtype.str


def _write(zf: zipfile.ZipFile, key: str, arr: np.ndarray) -> None:
    info = zipfile.ZipInfo(key + ".npy", date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as f:
        if not arr.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
            arr = arr.copy(order="C")
        np.lib.format.write_array(f, arr, allow_pickle=False)


def export_npz(model, out, *, tensors=None, dequantize: bool = False, source=None,
               progress=None) -> dict:
    """Write tensors (default: every constant) to ``out``, a path or a binary file
    object.  Returns ``{key: tensor}`` order-preserving summary counts."""
    from . import select_tensors, source_info
    if tensors is None:
        tensors = select_tensors(model)
    if source is None:
        source = source_info(model)
    keys = _keys(tensors)
    meta = {"format_version": FORMAT_VERSION, "generator": f"tflite-weights {__version__}",
            "source": {"file": source.name, "size": source.size, "sha256": source.sha256},
            "tensors": {}}
    total = sum(t.nbytes for t in tensors) or 1
    done = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, t in zip(keys, tensors):
            entry = {"name": t.name, "subgraph": t.subgraph, "index": t.index, "type": t.type,
                     "shape": list(t.shape), "arrays": []}
            if t.has_data and t.dtype is not None:
                values, offsets, how = _stored(t)
                _write(zf, key, values)
                entry["arrays"].append(key)
                entry["stored_as"] = how
                if offsets is not None:
                    _write(zf, key + "__offsets", offsets)
                    entry["arrays"].append(key + "__offsets")
            q = t.quantization
            if q is not None:
                entry["quantization"] = q.to_dict()
                if q.scale.size:
                    _write(zf, key + "__scale", np.asarray(q.scale, np.float32))
                    _write(zf, key + "__zero_point", np.asarray(q.zero_point, np.int64))
                    _write(zf, key + "__quantized_dimension",
                           np.asarray(q.quantized_dimension, np.int32))
                    entry["arrays"] += [key + s for s in ("__scale", "__zero_point",
                                                          "__quantized_dimension")]
                info = TYPES.get(t.type_code)
                if dequantize and t.has_data and not (info and info.dequantizes_to_itself):
                    try:
                        deq = np.asarray(t.dequantize(), np.float32)
                    except TFLiteWeightsError as e:
                        entry["dequantized_error"] = str(e)
                    else:
                        _write(zf, key + "__dequantized", deq)
                        entry["arrays"].append(key + "__dequantized")
            meta["tensors"][key] = entry
            done += t.nbytes
            if progress is not None:
                progress(done, total)
        _write(zf, META_KEY, np.asarray(json.dumps(meta, ensure_ascii=False)))
    return {"tensors": len(tensors), "keys": keys}
