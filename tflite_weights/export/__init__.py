"""Export tensors to other formats: one module per format.

* :mod:`.c_header` -- C arrays for firmware (``export_c``);
* :mod:`.npz` -- numpy's ``.npz`` archive (``export_npz``);
* :mod:`.json_export` -- JSON metadata, quantization and optionally values
  (``export_json``).

This module holds what they share: choosing tensors by name pattern
(:func:`select_tensors`) and naming the source file (:func:`source_info`).
Exporters never print; they report progress through an optional callback
``progress(done_bytes, total_bytes)``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
from dataclasses import dataclass

from ..errors import TensorNotFoundError

__all__ = ["select_tensors", "SourceInfo", "source_info", "export_c", "export_npz",
           "export_json"]


def select_tensors(model, patterns=None, *, include_all: bool = False,
                   subgraph: "int | None" = None) -> list:
    """Tensors to export, in (subgraph, index) order.

    ``patterns`` are tensor names or ``fnmatch`` globs (``"conv*/weights"``),
    matched case-sensitively against the whole name; None or empty selects
    every tensor.  Without ``include_all`` only tensors that store values
    (constants) are kept.  A pattern that matches no tensor raises
    :class:`~tflite_weights.errors.TensorNotFoundError`, so that a misspelt
    name in a build rule fails instead of silently exporting less.
    """
    patterns = list(patterns or ())
    used = [False] * len(patterns)
    out = []
    sgs = model.subgraphs
    if subgraph is not None and not 0 <= subgraph < len(sgs):
        raise TensorNotFoundError(f"subgraph {subgraph} does not exist (the model has "
                                  f"{len(sgs)})")
    for sg in sgs:
        if subgraph is not None and sg.index != subgraph:
            continue
        for t in sg.tensors:
            if patterns:
                name = t.name
                hit = False
                for i, p in enumerate(patterns):
                    if name == p or fnmatch.fnmatchcase(name, p):
                        used[i] = hit = True
                if not hit:
                    continue
            if include_all or t.has_data:
                out.append(t)
    missing = [p for p, u in zip(patterns, used) if not u]
    if missing:
        raise TensorNotFoundError(
            f"no tensor matches {', '.join(map(repr, missing))}")
    return out


@dataclass(frozen=True)
class SourceInfo:
    """The model file as exports name it: base name (no directories, so output does
    not depend on where the file lives), size and SHA-256 of the whole file."""

    name: str
    size: int
    sha256: str


class _Digest(threading.Thread):
    """SHA-256 of the model's bytes, computed in a thread (hashlib releases the GIL),
    so that an export can format arrays meanwhile."""

    def __init__(self, data):
        super().__init__(daemon=True)
        self._data = data
        self.hexdigest: "str | None" = None
        self.error: "BaseException | None" = None

    def run(self) -> None:
        try:
            self.hexdigest = hashlib.sha256(self._data).hexdigest()
        except BaseException as e:  # pragma: no cover - reported by result()
            self.error = e

    def result(self) -> str:
        self.join()
        if self.error is not None:
            raise self.error
        return self.hexdigest


def start_digest(model) -> _Digest:
    d = _Digest(model.data)
    d.start()
    return d


def source_info(model) -> SourceInfo:
    name = os.path.basename(model.path) if model.path else "<bytes>"
    return SourceInfo(name, model.size, start_digest(model).result())


def export_c(*args, **kwargs):
    """See :func:`tflite_weights.export.c_header.export_c`."""
    from .c_header import export_c as f
    return f(*args, **kwargs)


def export_npz(*args, **kwargs):
    """See :func:`tflite_weights.export.npz.export_npz`."""
    from .npz import export_npz as f
    return f(*args, **kwargs)


def export_json(*args, **kwargs):
    """See :func:`tflite_weights.export.json_export.export_json`."""
    from .json_export import export_json as f
    return f(*args, **kwargs)
