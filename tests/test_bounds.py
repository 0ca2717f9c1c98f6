"""The cost bound (docs/robustness.md, "The cost bound"): opening a model, listing every
tensor of every subgraph, ``verify`` and reading any one tensor take at most 2 s and
64 MiB + 16 x the file's size (plus the arrays asked for), whatever the file claims.

Each hostile file is built here (tests/support/hostile.py), small and structurally
valid, and goes through the fuzzer's case runner, which holds every operation to the
bound; what each one must give is asserted besides.
"""

from __future__ import annotations

import time

import pytest

import tflite_weights as tw
from tflite_weights import verify
from tests.support import fuzzing, hostile


def _within_bound(data: bytes, note: str) -> "fuzzing.CaseResult":
    r = fuzzing.run_case(data, note, time_limit=2.0)
    assert r.ok, f"{note}: {r.failure}\n{r.detail}"
    assert r.peak <= r.peak_bound
    return r


def test_a_vector_naming_one_table_a_hundred_thousand_times():
    data = hostile.shared_tensor_table(100_000, 75_000)
    assert len(data) < 500_000
    _within_bound(data, "shared tensor table")
    with tw.open(data) as m:
        t0 = time.perf_counter()
        ts = m.tensors
        assert len(ts) == 100_000 and ts[0].name is ts[-1].name  # one string, shared
        assert time.perf_counter() - t0 < 2
    assert verify.errors_of(verify.verify(data)) == []


def test_thousands_of_tensors_sharing_one_long_shape():
    data = hostile.shared_shape(4_000, 12_000)
    assert len(data) < 100_000
    _within_bound(data, "shared shape")
    with tw.open(data) as m:
        ts = m.tensors
        assert len(ts) == 4_000 and ts[0].shape is ts[-1].shape
        with pytest.raises(tw.InvalidModelError, match="12000 dimensions"):
            ts[0].numpy()


def test_subgraphs_sharing_one_tensors_vector_are_refused_past_the_files_worth():
    """Two thousand subgraphs naming one vector of two thousand tensors: four million
    tensors from 60 KB.  The reader lists subgraphs while their entries fit what the
    file's bytes can hold, and refuses the rest with its error."""
    data = hostile.shared_tensors_vector(2_000, 2_000)
    assert len(data) < 100_000
    _within_bound(data, "shared tensors vector")
    with tw.open(data) as m:
        listed = refused = 0
        for sg in m.subgraphs:
            try:
                listed += len(sg.tensors)
            except tw.InvalidModelError as e:
                assert "more table entries than its" in str(e)
                refused += 1
        assert listed <= len(data) // 4 + 4096 and refused > 1_900


def test_a_sparse_tensor_whose_dense_levels_claim_more_than_it_stores():
    data = hostile.sparse_all_dense(1 << 16, 512)
    _within_bound(data, "sparse all dense")
    with tw.open(data) as m:
        t0 = time.perf_counter()
        with pytest.raises(tw.InvalidModelError, match=r"describe 134217728 stored values, "
                                                        r"the buffer holds 65536"):
            m["s"].numpy()
        assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("dims", [(1 << 30, 1 << 30, 0, 2), (0, 2**31 - 1, 2**31 - 1, 4),
                                  (2**31 - 1, 0, 2**31 - 1, 2**31 - 1)])
def test_an_empty_tensor_whose_other_dimensions_overflow(dims):
    data = hostile.empty_huge_dimensions(dims)
    _within_bound(data, f"empty huge {dims}")
    with tw.open(data) as m:
        t = m["e"]
        assert t.size == 0
        for read in (t.numpy, t.dequantize):
            with pytest.raises(tw.InvalidModelError, match="multiplies past"):
                read()
