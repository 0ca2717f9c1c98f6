"""Sparse tensors: SparsityParameters and a vectorised densify.

A sparse constant stores only some values, in the order of a traversal over
``n`` original dimensions plus ``k`` block dimensions (TACO-style; see
docs/format.md).  Each traversal level is DENSE (every index ``0..dense_size``)
or SPARSE_CSR (``array_segments`` gives, for each position of the previous
levels, a range of ``array_indices``).  Densifying walks the levels one at a
time over numpy arrays of all positions at once, so there is no Python loop
per element; the result equals the runtime's ``FormatConverter::SparseToDense``
(``tflite/kernels/internal/utils/sparsity_format_converter.cc``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidModelError, UnsupportedError
from ..format.records import DENSE, SparsityParameters
from ..format.types import element_count

__all__ = ["densify", "stored_count", "MAX_DENSIFY_RATIO"]

#: refuse to densify when the dense tensor would hold more than this many
#: elements per stored value (and more than ``_MIN_DENSE_LIMIT`` elements): a
#: guard against damaged shapes that would allocate gigabytes from a small file.
MAX_DENSIFY_RATIO = 4096
_MIN_DENSE_LIMIT = 1 << 20


def stored_count(sp: SparsityParameters, where: str) -> int:
    """How many values the traversal visits, computed level by level without building
    anything: each level's positions are one contiguous range (a DENSE level of size s
    turns ``m`` positions into ``m * s``; a SPARSE_CSR level turns positions
    ``[lo, hi)`` into ``[segments[lo], segments[hi])``)."""
    lo, hi = 0, 1
    for lvl, dm in enumerate(sp.dim_metadata):
        if dm.format == DENSE:
            size = max(dm.dense_size, 0)
            lo, hi = lo * size, hi * size
        else:
            seg = dm.array_segments
            if seg is None or dm.array_indices is None:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}] is SPARSE_CSR without array_segments and "
                    f"array_indices")
            if hi >= seg.size:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}].array_segments has {seg.size} entries, "
                    f"position {hi - 1} needs {hi + 1}")
            lo, hi = int(seg[lo]), int(seg[hi])
            if lo < 0 or hi < lo or hi > dm.array_indices.size:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}].array_segments must rise from 0 to at most "
                    f"the {dm.array_indices.size} array_indices")
    return hi - lo if sp.dim_metadata else 1


def densify(shape: tuple[int, ...], sp: SparsityParameters, values: np.ndarray,
            where: str = "sparse tensor") -> np.ndarray:
    """The dense array of ``shape`` that the stored ``values`` (1-D) describe."""
    n = len(shape)
    order = sp.traversal_order
    levels = len(order)
    k = levels - n
    if k < 0 or len(sp.dim_metadata) != levels or len(sp.block_map) != k:
        raise InvalidModelError(
            f"{where}: rank {n} with traversal_order of {levels} entries, block_map of "
            f"{len(sp.block_map)} and dim_metadata of {len(sp.dim_metadata)}: they must be "
            f"n + k, k and n + k")
    if sorted(order[:n]) != list(range(n)) or sorted(order[n:]) != list(range(n, levels)):
        raise InvalidModelError(f"{where}: traversal_order {list(order)} is not a permutation "
                                f"of the {n} dimensions followed by the {k} block dimensions")
    if any(not 0 <= d < n for d in sp.block_map):
        raise InvalidModelError(f"{where}: block_map {list(sp.block_map)} names a dimension "
                                f"outside rank {n}")
    total = element_count(shape, where)
    limit = max(_MIN_DENSE_LIMIT, MAX_DENSIFY_RATIO * values.size)
    if total > limit:
        raise UnsupportedError(
            f"{where}: densifying {values.size} stored values into shape {list(shape)} "
            f"({total} elements) exceeds the limit of {limit} elements "
            f"(tflite_weights.sparsity.MAX_DENSIFY_RATIO)")
    block_size = [sp.dim_metadata[order[n + j]].dense_size for j in range(k)]
    if any(b <= 0 for b in block_size):
        raise InvalidModelError(f"{where}: block sizes {block_size} must be positive")

    # extent of each traversal level, to check coordinates
    extent = [0] * levels
    blocks_of = {d: block_size[j] for j, d in enumerate(sp.block_map)}
    for i in range(n):
        d = order[i]
        extent[i] = shape[d] // blocks_of[d] if d in blocks_of else shape[d]
    for i in range(n, levels):
        extent[i] = block_size[order[i] - n]

    # count first: nothing is built for a traversal that visits more values than stored
    visits = stored_count(sp, where)
    if visits > values.size:
        raise InvalidModelError(
            f"{where}: the sparsity parameters describe {visits} stored values, the buffer "
            f"holds {values.size}")

    # walk the levels: `pos` is each entry's position for the next level's segments
    pos = np.zeros(1, dtype=np.int64)
    coords: list[np.ndarray] = []
    for lvl, dm in enumerate(sp.dim_metadata):
        m = pos.size
        if dm.format == DENSE:
            size = dm.dense_size
            if size < 0 or size > extent[lvl]:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}] is DENSE with size {size}, but that level "
                    f"spans {extent[lvl]}")
            if m * size > total:
                raise InvalidModelError(f"{where}: dim_metadata[{lvl}] expands to {m * size} "
                                        f"entries, more than the {total} dense elements")
            coords = [np.repeat(c, size) for c in coords]
            coords.append(np.tile(np.arange(size, dtype=np.int64), m))
            pos = (pos[:, None] * size + np.arange(size, dtype=np.int64)).reshape(-1)
        else:
            seg, ind = dm.array_segments, dm.array_indices
            if seg is None or ind is None:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}] is SPARSE_CSR without array_segments and "
                    f"array_indices")
            seg = seg.astype(np.int64)
            if m and int(pos.max()) + 1 >= seg.size:
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}].array_segments has {seg.size} entries, "
                    f"position {int(pos.max())} needs {int(pos.max()) + 2}")
            if seg.size and (seg[0] < 0 or np.any(np.diff(seg) < 0) or seg[-1] > ind.size):
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}].array_segments must rise from 0 to at most "
                    f"the {ind.size} array_indices")
            starts = seg[pos]
            counts = seg[pos + 1] - starts
            count = int(counts.sum())
            if count > total:
                raise InvalidModelError(f"{where}: dim_metadata[{lvl}] holds {count} entries, "
                                        f"more than the {total} dense elements")
            first = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            child = first + np.arange(count, dtype=np.int64)
            c = ind[child].astype(np.int64) if count else np.zeros(0, np.int64)
            if count and (c.min() < 0 or c.max() >= extent[lvl]):
                raise InvalidModelError(
                    f"{where}: dim_metadata[{lvl}].array_indices holds {int(c.max())}, outside "
                    f"the level's extent {extent[lvl]}")
            coords = [np.repeat(x, counts) for x in coords]
            coords.append(c)
            pos = child

    stored = pos.size if levels else 1
    if stored > values.size:
        raise InvalidModelError(
            f"{where}: the sparsity parameters describe {stored} stored values, the buffer "
            f"holds {values.size}")

    # original coordinates, then flat dense indices
    orig = [None] * n
    for i in range(n):
        orig[order[i]] = coords[i] if levels else np.zeros(1, np.int64)
    for i in range(n, levels):
        j = order[i] - n
        d = sp.block_map[j]
        orig[d] = orig[d] * block_size[j] + coords[i]
    flat = np.zeros(stored, dtype=np.int64)
    for d in range(n):
        if np.any(orig[d] >= shape[d]):
            raise InvalidModelError(f"{where}: a stored value falls outside dimension {d} "
                                    f"of shape {list(shape)}")
        flat = flat * shape[d] + orig[d]
    dense = np.zeros(total, dtype=values.dtype)
    dense[flat] = values[:stored]
    dense = dense.reshape(shape)
    dense.flags.writeable = False
    return dense


