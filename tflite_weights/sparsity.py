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

from dataclasses import dataclass

import numpy as np

from . import _schema
from ._flatbuffer import Table
from .dtypes import element_count
from .errors import InvalidModelError, UnsupportedError

__all__ = ["DimensionMetadata", "SparsityParameters", "read_sparsity", "densify",
           "MAX_DENSIFY_RATIO"]

#: refuse to densify when the dense tensor would hold more than this many
#: elements per stored value (and more than ``_MIN_DENSE_LIMIT`` elements): a
#: guard against damaged shapes that would allocate gigabytes from a small file.
MAX_DENSIFY_RATIO = 4096
_MIN_DENSE_LIMIT = 1 << 20

_SP_TRAVERSAL, _SP_BLOCK_MAP, _SP_DIM_METADATA = _schema.slots(
    "SparsityParameters", "traversal_order", "block_map", "dim_metadata")
_DM_FORMAT, _DM_DENSE_SIZE, _DM_SEGMENTS, _DM_INDICES = _schema.slots(
    "DimensionMetadata", "format", "dense_size", "array_segments", "array_indices")
_INDEX_KIND = {1: "i32", 2: "u16", 3: "u8"}  # SparseIndexVector members: Int32/Uint16/Uint8
_VALUES = 0  # slot of ``values`` in Int32Vector / Uint16Vector / Uint8Vector


@dataclass(frozen=True, eq=False)
class DimensionMetadata:
    """One traversal level: ``format`` is "DENSE" or "SPARSE_CSR"."""

    format: str
    dense_size: int
    array_segments: "np.ndarray | None" = None
    array_indices: "np.ndarray | None" = None


@dataclass(frozen=True, eq=False)
class SparsityParameters:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]

    def to_dict(self) -> dict:
        return {
            "traversal_order": list(self.traversal_order),
            "block_map": list(self.block_map),
            "dim_metadata": [
                {"format": d.format, "dense_size": d.dense_size} if d.format == "DENSE" else
                {"format": d.format,
                 "array_segments": _listed(d.array_segments),
                 "array_indices": _listed(d.array_indices)}
                for d in self.dim_metadata],
        }


def _listed(a: "np.ndarray | None") -> "list | None":
    """An index vector as a list; None when the file leaves it out (a damaged
    SPARSE_CSR level, which densify() refuses)."""
    return None if a is None else a.tolist()


def _index_vector(t: Table, slot: int, name: str) -> "np.ndarray | None":
    code, vec = t.union(slot - 1, slot, name)
    if code == 0 or vec is None:
        return None
    kind = _INDEX_KIND.get(code)
    if kind is None:
        raise InvalidModelError(f"{t.where}.{name}: unknown SparseIndexVector type {code}")
    return vec.array(_VALUES, kind, f"{name}.values")


def read_sparsity(table: Table) -> SparsityParameters:
    """Decode a SparsityParameters table (index vectors stay views over the file)."""
    traversal = table.ints(_SP_TRAVERSAL, "i32", "traversal_order") or ()
    block_map = table.ints(_SP_BLOCK_MAP, "i32", "block_map") or ()
    dims = []
    vec = table.tables(_SP_DIM_METADATA, "dim_metadata")
    for i in range(0 if vec is None else len(vec)):
        d = vec[i]
        fmt = d.scalar(_DM_FORMAT, "i8", 0, "format")
        if fmt == 0:
            dims.append(DimensionMetadata("DENSE", d.scalar(_DM_DENSE_SIZE, "i32", 0,
                                                             "dense_size")))
        elif fmt == 1:
            dims.append(DimensionMetadata(
                "SPARSE_CSR", d.scalar(_DM_DENSE_SIZE, "i32", 0, "dense_size"),
                _index_vector(d, _DM_SEGMENTS, "array_segments"),
                _index_vector(d, _DM_INDICES, "array_indices")))
        else:
            raise InvalidModelError(f"{d.where}.format: unknown DimensionType {fmt}")
    return SparsityParameters(traversal, block_map, tuple(dims))


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

    # walk the levels: `pos` is each entry's position for the next level's segments
    pos = np.zeros(1, dtype=np.int64)
    coords: list[np.ndarray] = []
    for lvl, dm in enumerate(sp.dim_metadata):
        m = pos.size
        if dm.format == "DENSE":
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


def densify_tensor(tensor) -> np.ndarray:
    """Dense values of a sparse constant tensor (its stored values are ``raw()``)."""
    return densify(tensor.shape, tensor.sparsity, tensor.sparse_values(),
                   f"{tensor._where} ({tensor.name!r})")
