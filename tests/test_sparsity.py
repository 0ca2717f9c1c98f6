"""Sparse constants: densify against the corpus, an independent encoder, and the
LiteRT interpreter's DENSIFY; damaged parameters raise InvalidModelError only."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflite_weights as tw
from tests.support.builders import ModelBuilder, run_interpreter
from tflite_weights.numerics.sparsity import MAX_DENSIFY_RATIO

from tests.support.paths import corpus_path as corpus  # noqa: E402


# -- an encoder written independently of the reader: loops, one level at a time ----------


def encode(dense, traversal=None, formats=None, block=None, kind="i32"):
    """Sparsity parameters and stored values for ``dense``.

    Without ``block``: levels follow ``traversal`` (a permutation of the axes),
    ``formats[i]`` is "DENSE" or "CSR" for level i.  With ``block`` (2-D only):
    DENSE rows of blocks, CSR block columns, then DENSE block rows and columns; a
    block is stored when it holds any non-zero value."""
    dense = np.asarray(dense)
    n = dense.ndim
    if block is not None:
        bh, bw = block
        R, C = dense.shape[0] // bh, dense.shape[1] // bw
        seg, ind, vals = [0], [], []
        for r in range(R):
            for c in range(C):
                tile = dense[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw]
                if np.any(tile != 0):
                    ind.append(c)
                    vals.extend(tile.reshape(-1).tolist())
            seg.append(len(ind))
        sp = dict(traversal_order=[0, 1, 2, 3], block_map=[0, 1],
                  dim_metadata=[("DENSE", R), ("CSR", seg, ind, kind), ("DENSE", bh),
                                ("DENSE", bw)])
        return sp, np.array(vals, dtype=dense.dtype)
    traversal = list(range(n)) if traversal is None else list(traversal)
    formats = formats or ["DENSE"] * (n - 1) + ["CSR"]
    t = np.transpose(dense, traversal)
    dims = []
    # positions reaching each level: list of index prefixes
    prefixes = [()]
    for lvl in range(n):
        size = t.shape[lvl]
        if formats[lvl] == "DENSE":
            dims.append(("DENSE", size))
            prefixes = [p + (i,) for p in prefixes for i in range(size)]
        else:
            seg, ind, nxt = [0], [], []
            for p in prefixes:
                for i in range(size):
                    sub = t[p + (i,)]
                    if np.any(sub != 0):
                        ind.append(i)
                        nxt.append(p + (i,))
                seg.append(len(ind))
            dims.append(("CSR", seg, ind, kind))
            prefixes = nxt
    vals = np.array([t[p] for p in prefixes], dtype=dense.dtype)
    return dict(traversal_order=traversal, dim_metadata=dims), vals


def sparse_model(dense, sp, vals, dtype_name, *, densify_op=False):
    b = ModelBuilder()
    sg = b.subgraph()
    t = sg.tensor("w", dtype_name, list(np.shape(dense)), vals, sparsity=sp)
    if densify_op:
        o = sg.tensor("dense", dtype_name, list(np.shape(dense)))
        sg.op("DENSIFY", [t], [o])
        sg.sg.outputs = [o]
    return b.finish()


def random_sparse(shape, dtype, seed, density=0.3, block=None):
    rng = np.random.default_rng(seed)
    if block is None:
        mask = rng.random(shape) < density
    else:
        bh, bw = block
        mask = np.kron(rng.random((shape[0] // bh, shape[1] // bw)) < density,
                       np.ones((bh, bw), bool))
    vals = rng.integers(1, 100, size=shape)
    if np.issubdtype(np.dtype(dtype), np.floating):
        vals = vals / 8.0
    return np.where(mask, vals, 0).astype(dtype)


# -- the corpus ------------------------------------------------------------------------


def test_corpus_sparse_tensor_densifies_to_the_runtime_testdata_matrix():
    with tw.open(corpus("litert_sparse_tensor.bin")) as m:
        t = m["sparse_tensor"]
        assert t.is_sparse
        expected = np.array([[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]], np.int8)
        got = t.numpy()
        assert got.dtype == np.int8 and got.shape == (4, 4)
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable
        sp = t.sparsity
        assert sp.traversal_order == (0, 1, 2, 3) and sp.block_map == (0, 1)
        assert [d.format for d in sp.dim_metadata] == ["DENSE", "SPARSE_CSR", "DENSE", "DENSE"]
        stored = t.sparse_values()
        assert stored.ndim == 1 and stored.size % 4 == 0  # whole 2x2 blocks
        assert set(stored.tolist()) >= {1, 2, 3, 4, 5, 6}


# -- synthetic, against the independent encoder ----------------------------------------

CASES = [
    # (shape, dtype, tflite type, block, index kind, traversal, formats)
    ((8, 12), np.float32, "FLOAT32", None, "i32", None, None),
    ((8, 12), np.int8, "INT8", None, "u16", None, None),
    ((8, 12), np.float16, "FLOAT16", None, "u8", None, None),
    ((8, 12), np.float32, "FLOAT32", (1, 4), "u8", None, None),
    ((8, 12), np.int8, "INT8", (2, 2), "u16", None, None),
    ((8, 12), np.float16, "FLOAT16", (4, 1), "i32", None, None),
    ((8, 12), np.float32, "FLOAT32", None, "i32", [1, 0], None),        # column-major
    ((8, 12), np.int8, "INT8", None, "u8", None, ["CSR", "CSR"]),        # doubly compressed
    ((3, 4, 5), np.float32, "FLOAT32", None, "u16", None, None),         # 3-D
    ((3, 4, 5), np.int8, "INT8", None, "i32", [2, 0, 1], ["DENSE", "CSR", "CSR"]),
]


@pytest.mark.parametrize("shape,dtype,tname,block,kind,traversal,formats", CASES,
                         ids=lambda v: str(v))
def test_densify_matches_the_dense_original(shape, dtype, tname, block, kind, traversal,
                                            formats):
    dense = random_sparse(shape, dtype, seed=len(shape) * 7 + shape[-1], block=block)
    sp, vals = encode(dense, traversal, formats, block, kind)
    with tw.open(sparse_model(dense, sp, vals, tname)) as m:
        t = m["w"]
        got = t.numpy()
        assert got.dtype == np.dtype(dtype) and got.shape == shape
        np.testing.assert_array_equal(got, dense)
        np.testing.assert_array_equal(t.sparse_values(), vals)
        assert t.sparsity.traversal_order == tuple(sp["traversal_order"])


def test_all_zero_and_full_tensors():
    for dense in (np.zeros((4, 8), np.float32), np.arange(1, 33, dtype=np.float32).reshape(4, 8)):
        sp, vals = encode(dense)
        with tw.open(sparse_model(dense, sp, vals, "FLOAT32")) as m:
            np.testing.assert_array_equal(m["w"].numpy(), dense)


def test_sparse_int8_dequantizes_after_densify():
    dense = random_sparse((4, 16), np.int8, 3)
    sp, vals = encode(dense)
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [4, 16], vals, sparsity=sp,
              quant=dict(scale=[0.5], zero_point=[0]))
    with tw.open(b.finish()) as m:
        np.testing.assert_array_equal(m["w"].dequantize(), dense.astype(np.float32) * 0.5)


def test_densify_refuses_shapes_far_larger_than_the_stored_values():
    b = ModelBuilder()
    sg = b.subgraph()
    n = 1 << 12
    sg.tensor("w", "INT8", [n, n * 64], np.array([1], np.int8),
              sparsity=dict(traversal_order=[0, 1],
                            dim_metadata=[("DENSE", n), ("CSR", [0, 1] + [1] * (n - 1), [0])]))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.UnsupportedError, match="MAX_DENSIFY_RATIO"):
            m["w"].numpy()
    assert MAX_DENSIFY_RATIO >= 1


# -- the runtime's DENSIFY -------------------------------------------------------------

INTERP_CASES = [c for c in CASES if c[1] in (np.float32, np.int8, np.float16)]


def test_densify_matches_the_litert_densify_op_bit_for_bit():
    """One model per case, each run through CONSTANT(sparse) -> DENSIFY -> output in a
    subprocess; our dense array must equal the runtime's byte for byte."""
    failures = []
    for i, (shape, dtype, tname, block, kind, traversal, formats) in enumerate(INTERP_CASES):
        dense = random_sparse(shape, dtype, seed=100 + i, block=block)
        sp, vals = encode(dense, traversal, formats, block, kind)
        data = sparse_model(dense, sp, vals, tname, densify_op=True)
        try:
            (out,) = run_interpreter(data)
        except RuntimeError as e:
            failures.append(f"case {i} {shape} {tname} block={block}: interpreter: {e}")
            continue
        with tw.open(data) as m:
            ours = m["w"].numpy()
        if ours.tobytes() != out.tobytes() or ours.shape != out.shape:
            where = np.argwhere(ours != out)
            failures.append(f"case {i} {shape} {tname} block={block} traversal={traversal}: "
                            f"{len(where)} differences, first at {where[:3].tolist()}")
    assert not failures, "\n".join(failures)


def test_corpus_sparse_tensor_matches_the_runtime():
    """The corpus model feeds a custom op; its parameters and stored values, moved
    into a CONSTANT -> DENSIFY model, must densify as the runtime does."""
    with tw.open(corpus("litert_sparse_tensor.bin")) as m:
        t = m["sparse_tensor"]
        ours = t.numpy()
        sp = t.sparsity
        stored = np.array(t.sparse_values())
        dims = [("DENSE", d.dense_size) if d.format == "DENSE" else
                ("CSR", d.array_segments.tolist(), d.array_indices.tolist(),
                 {"<i4": "i32", "<u2": "u16", "|u1": "u8"}[d.array_segments.dtype.str])
                for d in sp.dim_metadata]
        params = dict(traversal_order=list(sp.traversal_order), block_map=list(sp.block_map),
                      dim_metadata=dims)
    data = sparse_model(ours, params, stored, "INT8", densify_op=True)
    (out,) = run_interpreter(data)
    assert out.tobytes() == ours.tobytes()


# -- damaged parameters ----------------------------------------------------------------


@st.composite
def damaged(draw):
    """Sparsity parameters for a [4, 6] int8 tensor: random traversal orders, block
    maps, level formats, sizes, segments and indices of random index types."""
    n = 2
    k = draw(st.integers(0, 2))
    levels = n + k + draw(st.sampled_from([0, 0, 0, 1, -1]))
    small = st.integers(-3, 12)
    traversal = draw(st.lists(st.integers(-1, n + k), min_size=max(levels, 0),
                              max_size=max(levels, 0)))
    if draw(st.booleans()):  # often a valid permutation, to reach the deeper checks
        traversal = list(draw(st.permutations(range(n)))) + list(range(n, n + k))
    block_map = draw(st.lists(st.integers(-1, 2), min_size=k, max_size=k + draw(
        st.integers(0, 1))))
    dims = []
    for _ in range(max(len(traversal), 0) + draw(st.sampled_from([0, 0, 1, -1]))):
        if draw(st.booleans()):
            dims.append(("DENSE", draw(small)))
        else:
            kind = draw(st.sampled_from(["i32", "u16", "u8"]))
            hi = 255 if kind == "u8" else 40
            seg = draw(st.lists(st.integers(0, hi) if kind != "i32" else
                                st.integers(-2, 40), max_size=8))
            ind = draw(st.lists(st.integers(0, hi) if kind != "i32" else
                                st.integers(-2, 40), max_size=10))
            dims.append(("CSR", seg, ind, kind))
    nvals = draw(st.integers(0, 30))
    return dict(traversal_order=traversal, block_map=block_map, dim_metadata=dims), nvals


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_sparsity_parameters_raise_invalid_model_error_only(case):
    sp, nvals = case
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [4, 6], np.arange(nvals, dtype=np.int8), sparsity=sp)
    with tw.open(b.finish()) as m:
        t = m["w"]
        try:
            out = t.numpy()
        except tw.InvalidModelError:
            return
        assert out.shape == (4, 6) and out.dtype == np.int8


def test_segments_must_rise_and_fit_the_indices():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [2, 4], np.ones(3, np.int8),
              sparsity=dict(traversal_order=[0, 1],
                            dim_metadata=[("DENSE", 2), ("CSR", [0, 3, 1], [0, 1, 2])]))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="array_segments must rise"):
            m["w"].numpy()


def test_index_outside_the_dimension():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [2, 4], np.ones(2, np.int8),
              sparsity=dict(traversal_order=[0, 1],
                            dim_metadata=[("DENSE", 2), ("CSR", [0, 1, 2], [0, 4], "u8")]))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="array_indices holds 4"):
            m["w"].numpy()


def test_too_few_stored_values():
    dense = random_sparse((4, 8), np.int8, 1, density=0.5)
    sp, vals = encode(dense)
    with tw.open(sparse_model(dense, sp, vals[:-1], "INT8")) as m:
        with pytest.raises(tw.InvalidModelError, match="describe .* stored values"):
            m["w"].numpy()


def test_every_block_shape_and_index_type_combination_round_trips():
    for block, kind in itertools.product([None, (1, 4), (2, 2), (4, 1)], ["i32", "u16", "u8"]):
        dense = random_sparse((8, 8), np.float32, 5, block=block)
        sp, vals = encode(dense, block=block, kind=kind)
        with tw.open(sparse_model(dense, sp, vals, "FLOAT32")) as m:
            np.testing.assert_array_equal(m["w"].numpy(), dense)


def test_zero_size_shape_whose_dimensions_overflow_is_invalid():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [0, 1 << 30, 1 << 30, 1 << 30], np.ones(1, np.int8),
              sparsity=dict(traversal_order=[0, 1, 2, 3],
                            dim_metadata=[("DENSE", 0), ("DENSE", 1), ("DENSE", 1),
                                          ("CSR", [0, 0], [])]))
    with tw.open(b.finish()) as m:
        with pytest.raises(tw.InvalidModelError, match="multiplies past"):
            m["w"].numpy()


@pytest.mark.parametrize("kind,dtype", [("i32", np.int32), ("u16", np.uint16),
                                        ("u8", np.uint8)])
def test_sparsity_index_vectors_are_views_over_the_file(kind, dtype):
    """``Tensor.sparsity`` gives each SPARSE_CSR level's vectors as read-only views of
    the file's bytes, in the index type the file stores; ``shape`` stays dense."""
    dense = random_sparse((8, 12), np.float32, seed=3)
    sp, vals = encode(dense, kind=kind)
    data = sparse_model(dense, sp, vals, "FLOAT32")
    whole = np.frombuffer(data, np.uint8)
    with tw.open(data) as m:
        t = m["w"]
        assert t.shape == (8, 12) and t.sparse_values().size == vals.size
        level = t.sparsity.dim_metadata[1]
        _, seg, ind, _ = sp["dim_metadata"][1]
        for got, want in ((level.array_segments, seg), (level.array_indices, ind)):
            assert got.dtype == dtype and got.tolist() == want
            assert not got.flags.writeable and np.shares_memory(got, whole)
