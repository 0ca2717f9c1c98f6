"""The two variants of each decoder agree: columnar (a whole vector at once) and per
table (one table, every field), on every tensor and buffer of every model at hand and
of damaged copies of them."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

import tflite_weights as tw
from tflite_weights.errors import InvalidModelError
from tflite_weights.format import records
from tflite_weights.format.flatbuffer import FlatBuffer
from tflite_weights.format.types import TYPES
from tflite_weights.state import ValueLocations, has_stored_values, locate_values

from tests.support.paths import FIXTURES, corpus_files
from tests.support import fuzzing

MODELS = ([pytest.param(p, id="fixture-" + os.path.basename(p))
           for p in sorted(str(p) for p in pathlib.Path(FIXTURES).glob("*.tflite"))]
          + [pytest.param(p, id=os.path.basename(p)) for p in corpus_files()
             if not p.endswith("invalid_model.bin")])
SYNTHETIC = fuzzing.synthetic_models()


def _bytes(source) -> bytes:
    return pathlib.Path(source).read_bytes() if isinstance(source, str) else source


def agree(data: bytes) -> int:
    """Compare both variants over every subgraph's tensors and the buffers; returns how
    many entries were compared.  Raises AssertionError on a disagreement."""
    fb = FlatBuffer(data)
    try:
        root = records.decode_model_header(fb).root
        sgs = records.vector(root, "subgraphs")
        bvec = records.vector(root, "buffers")
    except InvalidModelError:
        return 0
    compared = 0
    b = records.buffer_columns(fb, bvec, fb.size)
    for i in range(0 if bvec is None else len(bvec)):
        try:
            rec = records.decode_buffer(bvec[i], i, fb.size, "model")
        except InvalidModelError:
            assert b.status[i] == -1, i
            continue
        if b.status[i] == -1:
            continue  # the columnar pass may be stricter only when the table itself fails
        assert (rec.location is not None) == bool(b.status[i]), i
        if rec.location is not None:
            assert (rec.start, rec.length) == (b.start[i], b.length[i]), i
        compared += 1
    for si in range(0 if sgs is None else len(sgs)):
        try:
            vec = records.subgraph_vector(sgs[si], "tensors")
        except InvalidModelError:
            continue
        c = records.tensor_columns(fb, vec)
        loc = locate_values(c, b, False)
        for i in range(c.n):
            try:
                t = vec[i]
                rec = records.decode_tensor(t)
            except InvalidModelError:
                assert not c.ok[i], (si, i)
                continue
            if not c.ok[i]:
                continue
            assert (c.names[i], c.shapes[i], c.types[i], c.buffers[i]) == (
                rec.name, rec.shape, rec.type_code, rec.buffer), (si, i)
            assert c.plain[i] == (not rec.has_sparsity and rec.external_buffer == 0), (si, i)
            q = c.quants[i]
            if q is not records.UNREAD:
                full = records.decode_quantization(records.tensor_quantization(rec))
                if q is None:
                    assert full is None, (si, i)
                else:
                    assert full is not None and full.details_type == "NONE"
                    assert full.scale.tobytes() == q.scale.tobytes()
                    assert full.zero_point.tobytes() == q.zero_point.tobytes()
                    assert full.quantized_dimension == q.quantized_dimension
                    assert full.min.size == full.max.size == 0
            # where the values are: the vectorised rule against the per-tensor one
            kind = loc.kind[i]
            if kind != ValueLocations.GENERAL:
                count = int(np.prod(rec.shape, dtype=object)) if all(
                    d > 0 for d in rec.shape) else 0
                if rec.buffer == 0:
                    want = False
                else:
                    brec = records.decode_buffer(bvec[rec.buffer], rec.buffer, fb.size, "m")
                    want = brec.location is not None and has_stored_values(brec.length, count)
                assert (kind != ValueLocations.NONE) == want, (si, i)
                if kind == ValueLocations.VIEW:
                    info = TYPES[rec.type_code]
                    assert loc.dtypes[i] == info.dtype and count * info.itemsize <= brec.length
                    assert loc.offsets[i] == brec.start
            compared += 1
    return compared


@pytest.mark.parametrize("source", MODELS)
def test_columnar_and_per_table_decoders_agree_on_every_model(source):
    assert agree(_bytes(source)) > 0


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_they_agree_on_the_synthetic_models(name):
    assert agree(SYNTHETIC[name]) > 10


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_they_agree_on_damaged_copies(name):
    """Values planted at every structural position of the synthetic models (the
    fuzzer's sites and worst values): whatever each variant makes of the damage, a
    tensor the columnar pass reads is read the same by the per-table decoder."""
    data = SYNTHETIC[name]
    sites = fuzzing.find_sites(data)
    compared = 0
    for k, s in enumerate(sites):
        for v in fuzzing.worst_values(s, len(data), sites)[:2]:
            d = bytearray(data)
            fuzzing._plant(d, s, v)
            compared += agree(bytes(d))
    assert compared > 1000


def test_a_planted_disagreement_is_caught(monkeypatch):
    """The comparison has teeth: a columnar decoder that misreads one field fails it."""
    real = records.tensor_columns

    def off_by_one(fb, vec):
        c = real(fb, vec)
        if c.n:
            c.buffers = [b + 1 for b in c.buffers]
        return c
    monkeypatch.setattr(records, "tensor_columns", off_by_one)
    with pytest.raises(AssertionError):
        agree(SYNTHETIC["graph"])
