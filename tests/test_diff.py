"""diff_models: the structure of what differs between two models (the command line's
``diff`` prints its lines; tests/test_cli.py checks the text)."""

from __future__ import annotations

import numpy as np

import tflite_weights as tw
from tflite_weights.diff import diff_models, pair_tensors

from tests.support.builders import ModelBuilder


def _model(*, w=None, scale=(0.1, 0.2, 0.3), names=("in", "w", "out"), extra=None,
           wtype="INT8", subgraphs=1) -> bytes:
    b = ModelBuilder()
    for s in range(subgraphs):
        sg = b.subgraph(f"s{s}")
        sg.tensor(names[0], "INT8", [1, 4])
        sg.tensor(names[1], wtype, [3, 4],
                  np.arange(12, dtype=np.int8) if w is None else w,
                  quant=dict(scale=list(scale), zero_point=[0, 0, 0], quantized_dimension=0))
        sg.tensor(names[2], "INT8", [1, 3])
        if extra:
            sg.tensor(extra, "FLOAT32", [2], np.ones(2, np.float32))
    return b.finish()


def _diff(a: bytes, b: bytes):
    with tw.open(a) as ma, tw.open(b) as mb:
        return diff_models(ma, mb)


def test_identical_models_have_no_differences():
    d = _diff(_model(), _model())
    assert d.empty and d.lines() == [] and d.subgraph_count == (1, 1)
    assert [s.status for s in d.subgraphs] == ["both"]


def test_changed_values_name_the_count_and_the_largest_difference():
    w = np.arange(12, dtype=np.int8)
    w2 = w.copy()
    w2[[2, 5]] += 3
    d = _diff(_model(w=w), _model(w=w2))
    (c,) = d.subgraphs[0].changed
    assert (c.a.name, c.b.name) == ("w", "w")
    assert c.changes[0].startswith("values differ at 2 of 12 elements, max |a-b| = 3")
    assert "dequantized max |a-b| = 0.6" in c.changes[0]  # 3 steps of 0.2 (row 0 and 1)


def test_changed_quantization_is_reported():
    d = _diff(_model(), _model(scale=(0.1, 0.25, 0.3)))
    (c,) = d.subgraphs[0].changed
    assert c.changes[0].startswith("quantization")


def test_added_removed_and_retyped_tensors():
    d = _diff(_model(extra="bias"), _model(names=("in", "w", "result")))
    s = d.subgraphs[0]
    assert [t.name for t in s.removed] == ["out", "bias"]
    assert [t.name for t in s.added] == ["result"]
    assert not d.empty
    d = _diff(_model(), _model(wtype="UINT8", w=np.arange(12, dtype=np.uint8)))
    (c,) = d.subgraphs[0].changed
    assert c.changes[0] == "type INT8 -> UINT8"


def test_subgraphs_added_and_removed():
    d = _diff(_model(), _model(subgraphs=2))
    assert d.subgraph_count == (1, 2) and d.subgraphs[1].status == "added"
    assert d.lines()[:2] == ["subgraphs: 1 -> 2", "subgraph 1: added (3 tensors)"]
    d = _diff(_model(subgraphs=2), _model())
    assert d.subgraphs[1].status == "removed"


def test_pairing_by_unique_names_then_by_index():
    with tw.open(_model(names=("x", "", ""))) as a, tw.open(_model(names=("y", "", ""))) as b:
        pairs, removed, added = pair_tensors(a.tensors, b.tensors)
        # the empty names are paired by index; "x" and "y" are unique and unmatched
        assert [(p.index, q.index) for p, q in pairs] == [(1, 1), (2, 2)]
        assert [t.name for t in removed] == ["x"] and [t.name for t in added] == ["y"]
