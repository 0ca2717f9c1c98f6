"""Compare two models tensor by tensor: what was added, removed or changed.

Tensors of a subgraph are matched by name where the name is non-empty and
unique in both models, then by index among tensors whose names are empty or
repeated.  For each matched pair the comparison reports the name, type, shape,
quantization (per channel: which channels changed and by how much) and stored
values (where they differ, the largest difference, dequantized too).

:func:`diff_models` returns a :class:`ModelDiff`; ``lines()`` gives the text the
command line prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .errors import TFLiteWeightsError
from .format.types import TYPES, shape_text

__all__ = ["ModelDiff", "SubgraphDiff", "TensorChange", "diff_models", "pair_tensors"]


@dataclass
class TensorChange:
    """A tensor present in both models whose fields or values differ: ``changes`` are
    one-line descriptions, in the order name, type, shape, quantization, values."""

    a: object
    b: object
    changes: "list[str]"


@dataclass
class SubgraphDiff:
    """The differences of one subgraph: ``status`` is ``"added"``, ``"removed"`` or
    ``"both"``; ``added``/``removed`` list tensors present in one model only."""

    index: int
    status: str
    tensor_count: "tuple[int, int]" = (0, 0)
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    changed: "list[TensorChange]" = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.status == "both" and not (self.added or self.removed or self.changed)


@dataclass
class ModelDiff:
    """Every difference between two models, subgraph by subgraph."""

    subgraph_count: "tuple[int, int]"
    subgraphs: "list[SubgraphDiff]"

    @property
    def empty(self) -> bool:
        return (self.subgraph_count[0] == self.subgraph_count[1]
                and all(s.empty for s in self.subgraphs))

    def lines(self) -> "list[str]":
        """The differences as text, one line per subgraph count, tensor added, removed
        or changed (``tflite-weights diff`` prints them)."""
        out = []
        na, nb = self.subgraph_count
        if na != nb:
            out.append(f"subgraphs: {na} -> {nb}")
        for s in self.subgraphs:
            if s.status == "added":
                out.append(f"subgraph {s.index}: added ({s.tensor_count[1]} tensors)")
                continue
            if s.status == "removed":
                out.append(f"subgraph {s.index}: removed ({s.tensor_count[0]} tensors)")
                continue
            body = [f"  - removed  {_label(t)}" for t in s.removed]
            body += [f"  + added    {_label(t)}" for t in s.added]
            for c in s.changed:
                idx = f"{c.a.index}" if c.a.index == c.b.index else f"{c.a.index}->{c.b.index}"
                body.append(f"  ~ changed  {idx} {c.a.name!r}: " + "; ".join(c.changes))
            if body:
                out.append(f"subgraph {s.index}:")
                out.extend(body)
        return out


def _shape_text(shape) -> str:
    return shape_text(shape, sep=",")


def _label(t) -> str:
    return f"{t.index} {t.name!r} {t.type} {_shape_text(t.shape)}"


def pair_tensors(ta, tb):
    """Match two tensor lists: by name where the name is non-empty and unique in both
    models, then by index among tensors whose names are empty or repeated.  Returns
    ``(pairs, removed, added)``."""
    def unique(ts):
        seen: dict = {}
        for t in ts:
            seen[t.name] = seen.get(t.name, 0) + 1
        return {t.name: t for t in ts if t.name and seen[t.name] == 1}
    ua, ub = unique(ta), unique(tb)
    pairs = []
    done_a, done_b = set(), set()
    for name, a in ua.items():
        b = ub.get(name)
        if b is not None:
            pairs.append((a, b))
            done_a.add(a.index)
            done_b.add(b.index)

    def by_index(t, uniq):
        return not t.name or t.name not in uniq
    rest_b = {t.index: t for t in tb if t.index not in done_b and by_index(t, ub)}
    removed = []
    for a in ta:
        if a.index in done_a:
            continue
        b = rest_b.pop(a.index, None) if by_index(a, ua) else None
        if b is not None:
            pairs.append((a, b))
            done_b.add(b.index)
        else:
            removed.append(a)
    added = [t for t in tb if t.index not in done_b]
    pairs.sort(key=lambda p: p[0].index)
    return pairs, removed, added


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
    return x


def _quant_key(q):
    if q is None:
        return None
    return json.dumps(_jsonable(q.to_dict()), sort_keys=True)


def _compare_values(a, b) -> "str | None":
    ra, rb = a.raw(), b.raw()
    if ra.size == rb.size and np.array_equal(ra, rb):
        return None
    va, vb = a.numpy(), b.numpy()
    if va.dtype == object:
        n = int(np.count_nonzero(va.reshape(-1) != vb.reshape(-1)))
        return f"values differ at {n} of {va.size} strings"
    if va.dtype.kind == "c":
        fa, fb = va.astype(np.complex128), vb.astype(np.complex128)
        diff = np.abs(fa - fb)
        same = (fa == fb)
    else:
        fa, fb = va.astype(np.float64), vb.astype(np.float64)
        same = (fa == fb) | (np.isnan(fa) & np.isnan(fb))
        with np.errstate(invalid="ignore"):
            diff = np.abs(fa - fb)
    n = int(np.count_nonzero(~same))
    if n == 0:
        return "stored bytes differ (the values are equal)"
    d = diff[~same]
    text = f"values differ at {n} of {va.size} elements, max |a-b| = {float(np.nanmax(d)):.6g}" \
        if np.isfinite(d).any() else f"values differ at {n} of {va.size} elements"
    info = TYPES.get(a.type_code)
    if a.quantization is not None and not (info and info.dequantizes_to_itself):
        try:
            da, db = a.dequantize().astype(np.float64), b.dequantize().astype(np.float64)
            text += f" (dequantized max |a-b| = {float(np.nanmax(np.abs(da - db))):.6g})"
        except TFLiteWeightsError:
            pass
    return text


def tensor_changes(a, b) -> "list[str]":
    """What differs between two matched tensors, one line each (empty: nothing)."""
    out = []
    if a.name != b.name:
        out.append(f"name {a.name!r} -> {b.name!r}")
    if a.type != b.type:
        out.append(f"type {a.type} -> {b.type}")
    if tuple(a.shape) != tuple(b.shape):
        out.append(f"shape {list(a.shape)} -> {list(b.shape)}")
    qa, qb = a.quantization, b.quantization
    if _quant_key(qa) != _quant_key(qb):
        sa = qa.summary() if qa is not None else "none"
        sb = qb.summary() if qb is not None else "none"
        out.append(f"quantization {sa} -> {sb}" if sa != sb else "quantization parameters")
    if a.has_data != b.has_data:
        out.append("stored values " + ("removed" if a.has_data else "added"))
    elif (a.has_data and a.type == b.type and tuple(a.shape) == tuple(b.shape)
          and a.dtype is not None):
        v = _compare_values(a, b)
        if v:
            out.append(v)
    return out


def diff_models(ma, mb) -> ModelDiff:
    """Every difference between models ``ma`` and ``mb`` (open :class:`Model` objects)."""
    sa, sb = ma.subgraphs, mb.subgraphs
    subgraphs = []
    for i in range(max(len(sa), len(sb))):
        if i >= len(sa):
            subgraphs.append(SubgraphDiff(i, "added", (0, len(sb[i].tensors))))
            continue
        if i >= len(sb):
            subgraphs.append(SubgraphDiff(i, "removed", (len(sa[i].tensors), 0)))
            continue
        pairs, removed, added = pair_tensors(sa[i].tensors, sb[i].tensors)
        changed = []
        for a, b in pairs:
            ch = tensor_changes(a, b)
            if ch:
                changed.append(TensorChange(a, b, ch))
        subgraphs.append(SubgraphDiff(i, "both", (len(sa[i].tensors), len(sb[i].tensors)),
                                      added, removed, changed))
    return ModelDiff((len(sa), len(sb)), subgraphs)
