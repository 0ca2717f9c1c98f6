"""Small, structurally valid files that claim much: the shapes a hostile writer uses to
make a reader's cost outgrow the file.  Each is sound for the flatbuffers verifier
(offsets in range, tables well formed); the sharing is what the format allows.

* :func:`shared_tensor_table`: a tensors vector whose every entry names one tensor
  table, with a long name;
* :func:`shared_shape`: thousands of tensors sharing one long shape vector;
* :func:`shared_tensors_vector`: many subgraphs sharing one tensors vector;
* :func:`sparse_all_dense`: a small sparse tensor whose DENSE levels describe far more
  values than its buffer stores;
* :func:`empty_huge_dimensions`: a zero-element tensor whose other dimensions
  multiply past what an array can index.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from .builders import S, ModelBuilder


def _finish(b: flatbuffers.Builder, subgraphs: list, buffers: int = 1) -> bytes:
    S.BufferStart(b)
    buf = S.BufferEnd(b)
    S.ModelStartBuffersVector(b, buffers)
    for _ in range(buffers):
        b.PrependUOffsetTRelative(buf)
    bufs = b.EndVector()
    S.ModelStartSubgraphsVector(b, len(subgraphs))
    for sg in reversed(subgraphs):
        b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    S.ModelStart(b)
    S.ModelAddVersion(b, 3)
    S.ModelAddSubgraphs(b, sgs)
    S.ModelAddBuffers(b, bufs)
    b.Finish(S.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _subgraph(b: flatbuffers.Builder, tensors_vec: int, name: str = "main") -> int:
    n = b.CreateString(name)
    S.SubGraphStart(b)
    S.SubGraphAddTensors(b, tensors_vec)
    S.SubGraphAddName(b, n)
    return S.SubGraphEnd(b)


def _tensor(b: flatbuffers.Builder, shape: int, name: "int | None" = None) -> int:
    S.TensorStart(b)
    if name is not None:
        S.TensorAddName(b, name)
    S.TensorAddShape(b, shape)
    S.TensorAddType(b, 0)
    return S.TensorEnd(b)


def _shape(b: flatbuffers.Builder, dims) -> int:
    S.TensorStartShapeVector(b, len(dims))
    for d in reversed(dims):
        b.PrependInt32(d)
    return b.EndVector()


def shared_tensor_table(refs: int = 100_000, name_len: int = 75_000) -> bytes:
    """``refs`` tensors, all one table whose name is ``name_len`` bytes: about
    ``4 * refs + name_len`` bytes, naming ``refs * name_len`` bytes of names."""
    b = flatbuffers.Builder(1 << 20)
    t = _tensor(b, _shape(b, [1, 4]), b.CreateString("n" * name_len))
    S.SubGraphStartTensorsVector(b, refs)
    for _ in range(refs):
        b.PrependUOffsetTRelative(t)
    return _finish(b, [_subgraph(b, b.EndVector())])


def shared_shape(tensors: int = 4_000, rank: int = 12_000) -> bytes:
    """``tensors`` tensors sharing one shape vector of ``rank`` dimensions of 1."""
    b = flatbuffers.Builder(1 << 20)
    shape = _shape(b, [1] * rank)
    ts = [_tensor(b, shape) for _ in range(tensors)]
    S.SubGraphStartTensorsVector(b, tensors)
    for t in reversed(ts):
        b.PrependUOffsetTRelative(t)
    return _finish(b, [_subgraph(b, b.EndVector())])


def shared_tensors_vector(subgraphs: int = 2_000, tensors: int = 2_000) -> bytes:
    """``subgraphs`` subgraphs whose tensors field names one vector of ``tensors``
    tensors: listing every tensor of every subgraph names ``subgraphs * tensors``."""
    b = flatbuffers.Builder(1 << 20)
    t = _tensor(b, _shape(b, [1]))
    S.SubGraphStartTensorsVector(b, tensors)
    for _ in range(tensors):
        b.PrependUOffsetTRelative(t)
    vec = b.EndVector()
    sgs = [_subgraph(b, vec, f"s{i}") for i in range(subgraphs)]
    return _finish(b, sgs)


def sparse_all_dense(stored: int = 1 << 16, side: int = 512) -> bytes:
    """An INT8 ``[side, side, side]`` sparse tensor whose three DENSE levels describe
    ``side ** 3`` stored values, while its buffer holds ``stored``."""
    b = ModelBuilder()
    b.subgraph().tensor("s", "INT8", [side] * 3, np.ones(stored, np.int8),
                        sparsity=dict(traversal_order=[0, 1, 2],
                                      dim_metadata=[("DENSE", side)] * 3))
    return b.finish()


def empty_huge_dimensions(dims=(1 << 30, 1 << 30, 0, 2), type_name: str = "FLOAT32") -> bytes:
    """A constant with no elements whose other dimensions multiply past 2**63 bytes."""
    b = ModelBuilder()
    b.subgraph().tensor("e", type_name, list(dims), b"\0" * 4,
                        quant=dict(scale=[0.5], zero_point=[0]))
    return b.finish()
