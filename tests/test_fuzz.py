"""Damaged models: the package's own errors only, in bounded time and memory.

Mutations (tests/fuzzing.py) plant values where the flatbuffer really holds
offsets, vtable entries and lengths, make tables loop and vtables point at
their own table, flip, truncate, duplicate and splice bytes.  Every damaged
copy is opened and everything the public API offers is touched.  A case fails
on an exception outside ``TFLiteWeightsError``, on the plain reading pass
taking more than 2 s, or on a ``tracemalloc`` peak above
``fuzzing.memory_bound`` (128 x the file size, at least 64 MiB; see
docs/robustness.md).  Hypothesis runs derandomized with a fixed number of
examples, so CI is deterministic and bounded (under 60 s on two shared cores); set
``FUZZ_SCALE=10`` for a longer local run, or use scripts/fuzz.py.
"""

from __future__ import annotations

import os
import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import fuzzing
import tflite_weights as tw
from tests.support.paths import CORPUS

HERE = os.path.dirname(os.path.abspath(__file__))
REGRESSIONS = os.path.join(HERE, "regressions")
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))

SYNTHETIC = fuzzing.synthetic_models()
# corpus models small enough for CI (the 4 MB MobileNet is for scripts/fuzz.py)
CORPUS_MODELS = fuzzing.corpus_models(CORPUS, max_size=64 << 10)
_SITES: dict = {}


def sites_of(data: bytes):
    key = id(data)
    if key not in _SITES:
        _SITES[key] = fuzzing.find_sites(data)
    return _SITES[key]


@pytest.fixture(autouse=True, scope="module")
def bounded_address_space():
    """A read asking for far too much memory fails with MemoryError (a failure of the
    case) instead of swapping the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    want = vm + (6 << 30)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check(result: fuzzing.CaseResult) -> None:
    assert result.ok, f"{result.failure}\n  damage: {result.note}\n{result.detail}"


def _fuzz_settings(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, database=None,
                    deadline=None, suppress_health_check=list(HealthCheck))


def _damage(models: dict, data_strategy):
    name = data_strategy.draw(st.sampled_from(sorted(models)))
    c = fuzzing.HypothesisChooser(data_strategy)
    kind = data_strategy.draw(st.sampled_from(fuzzing.KINDS))
    data = models[name]
    damaged, note = fuzzing.mutate(data, sites_of(data), c, kind,
                                   donors=list(models.values()))
    # the tracemalloc pass costs several plain passes: one case in three (a failing
    # case shrinks towards measuring)
    memory = data_strategy.draw(st.integers(0, 2)) == 0
    return damaged, f"{name}: {note}", memory


@_fuzz_settings(150)
@given(st.data())
def test_damaged_synthetic_models_raise_only_package_errors(data):
    damaged, note, memory = _damage(SYNTHETIC, data)
    check(fuzzing.run_case(damaged, note, measure_memory=memory))


@pytest.mark.skipif(not CORPUS_MODELS, reason="../shared/corpus is absent")
@_fuzz_settings(200)
@given(st.data())
def test_damaged_corpus_models_raise_only_package_errors(data):
    damaged, note, memory = _damage(CORPUS_MODELS, data)
    check(fuzzing.run_case(damaged, note, measure_memory=memory))


# -- systematic sweeps over every position that holds structure ----------------------------


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_values_planted_at_every_structural_position(name):
    """Every offset, vtable entry, length, union type and scalar of the synthetic
    models, planted with one of its kind's worst values in turn
    (``fuzzing.worst_values``; all of them with FUZZ_SCALE > 1): the plain reading
    pass must end in the package's error or a value, within the time limit."""
    data = SYNTHETIC[name]
    sites = sites_of(data)
    assert {"root", "uoffset", "soffset", "vtable_size", "table_size", "vtable_entry",
            "length", "union_type", "scalar"} <= {s.kind for s in sites}
    for i, s in enumerate(sites):
        if s.kind == "scalar" and i % 2 and SCALE <= 1:
            continue  # half the scalars in CI: they are many and rarely structural
        values = fuzzing.worst_values(s, len(data), sites)
        for v in values if SCALE > 1 else [values[i % len(values)]]:
            d = bytearray(data)
            fuzzing._plant(d, s, v)
            note = f"{name}: plant {v:#x} at {s.kind} {s.name}@{s.pos}"
            check(fuzzing.run_case(bytes(d), note, measure_memory=False, thorough=False))


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_truncation_at_every_structural_position(name):
    data = SYNTHETIC[name]
    structure = [s for s in sites_of(data) if s.kind in ("root", "uoffset", "soffset",
                                                           "length", "vtable_size")]
    cuts = sorted({s.pos + s.width // 2 for s in structure})
    for cut in cuts:
        if cut < len(data):
            check(fuzzing.run_case(data[:cut], f"{name}: truncate to {cut}",
                                   measure_memory=False, thorough=False))


def test_planted_offsets_out_of_the_file_are_defects_for_verify():
    """The sites are real offsets: pointing any of them past the end is a defect."""
    from tflite_weights import verify
    data = SYNTHETIC["graph"]
    for s in sites_of(data):
        if s.kind not in ("root", "uoffset", "length") or s.name.startswith("metadata["):
            continue
        d = bytearray(data)
        fuzzing._plant(d, s, 0x7FFFFFF0)
        assert verify.errors_of(verify.verify(bytes(d))), (s.kind, s.name)


# -- files that once broke a rule -------------------------------------------------------------

REGRESSION_FILES = sorted(f for f in os.listdir(REGRESSIONS) if f.endswith(".tflite")) \
    if os.path.isdir(REGRESSIONS) else []


@pytest.mark.parametrize("name", REGRESSION_FILES)
def test_regression_files_read_without_breaking_a_rule(name):
    path = os.path.join(REGRESSIONS, name)
    with open(path, "rb") as f:
        data = f.read()
    check(fuzzing.run_case(data, name, path=path))


def test_every_regression_file_is_described():
    with open(os.path.join(REGRESSIONS, "README.md")) as f:
        text = f.read()
    for name in REGRESSION_FILES:
        assert f"`{name}`" in text, name


# -- verify against the interpreter's verifier ---------------------------------------------


def test_files_the_interpreter_refuses_as_invalid_flatbuffers_are_refused_by_verify(tmp_path):
    """40 damaged copies loaded by the LiteRT interpreter in a child process: when it
    says the bytes are not a valid flatbuffer, ``verify`` must report an error too."""
    pytest.importorskip("ai_edge_litert.interpreter")

    models = {**SYNTHETIC, **CORPUS_MODELS}
    names = sorted(models)
    c = fuzzing.Chooser(2024)
    seen = {}
    missed = []
    with fuzzing.InterpreterPool() as pool:
        for i in range(int(40 * SCALE)):
            name = names[i % len(names)]
            damaged, note = fuzzing.mutate(models[name], sites_of(models[name]), c)
            path = tmp_path / f"d{i}.tflite"
            path.write_bytes(damaged)
            res = pool.check(str(path))
            seen[res["class"]] = seen.get(res["class"], 0) + 1
            if res["class"] == "invalid_flatbuffer":
                ours, _ = fuzzing.verify_refuses(damaged)
                if not ours:
                    missed.append(f"{name}: {note}: {res.get('message', '')[:120]}")
    assert seen.get("invalid_flatbuffer", 0) >= 5, seen  # the sample exercises the rule
    assert not missed, "\n".join(missed)


# -- damaged vectors stay cheap to walk ------------------------------------------------------


def _many_tensors(n: int, damaged) -> bytes:
    """A model with ``n`` tensors whose table offsets at ``damaged`` indices are zeroed
    (an offset of 0 points at itself: no table there)."""
    import struct

    from tests.support.builders import ModelBuilder
    b = ModelBuilder()
    sg = b.subgraph()
    for i in range(n):
        sg.tensor(f"t{i}", "INT8", [2], b"\1\2")
    data = bytearray(b.finish())
    with tw.open(bytes(data)) as m:
        m.tensors
        start = m.subgraphs[0]._cols.start
    for i in damaged:
        struct.pack_into("<I", data, start + 4 * i, 0)
    return bytes(data)


def test_a_vector_mostly_of_damaged_tables_is_refused_as_a_whole():
    data = _many_tensors(600, range(100, 600))
    with tw.open(data) as m:
        for _ in range(2):  # the refusal is remembered, not decoded again
            with pytest.raises(tw.InvalidModelError,
                               match=r"tensors: vector at byte \d+ declares 600 tables, 500 "
                                     r"of which are not readable tables \(the first is entry "
                                     r"100\): its length or position is damaged"):
                m.subgraphs[0].tensors
        assert m.subgraphs[0].name == "main"  # the rest of the model still reads


def test_a_few_damaged_tables_fail_alone_every_time_they_are_used():
    data = _many_tensors(600, range(0, 600, 75))  # 8 damaged: tolerated
    with tw.open(data) as m:
        ts = m.tensors
        assert len(ts) == 600 and ts[1].numpy().tolist() == [1, 2]
        messages = set()
        for _ in range(3):
            for attr in ("name", "shape", "type", "quantization", "is_variable"):
                with pytest.raises(tw.InvalidModelError) as e:
                    getattr(ts[75], attr)
                messages.add(str(e.value))
        assert len(messages) == 1 and "tensors[75]" in messages.pop()
    with pytest.raises(tw.ClosedModelError):
        ts[75].name  # after close: the model is closed, whatever the table was


def test_verify_stops_after_max_defects_on_a_vector_of_garbage():
    """The tensors offset moved to a 64 KiB buffer of zeros (after the flatbuffer)
    that starts with a count of 16,000: every entry is an offset of 0.  verify
    reports MAX_DEFECTS of them, says it stopped, and takes no time (it listed all
    of them, for seconds, on a 4 MB model with a million such entries); the reader
    refuses the vector."""
    import struct
    import time

    import numpy as np

    from tests.support.builders import ModelBuilder
    from tflite_weights import verify
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("t", "INT8", [1], b"\1")
    sg.tensor("zeros", "UINT8", [1 << 16], np.zeros(1 << 16, np.uint8), offset=True)
    data = bytearray(b.finish())
    with tw.open(bytes(data)) as m:
        zeros = m.tensors[1].data_offset
    (site,) = [s for s in fuzzing.find_sites(bytes(data))
               if s.name == "Model.subgraphs[0].tensors"]
    zeros += -zeros % 4
    struct.pack_into("<I", data, zeros, 16000)
    struct.pack_into("<I", data, site.pos, zeros - site.pos)
    t0 = time.perf_counter()
    defects = verify.verify(bytes(data))
    assert time.perf_counter() - t0 < 1.0
    assert len(defects) == verify.MAX_DEFECTS + 1
    assert "tensors[0]" in str(defects[0]) and "tensors[999]" in str(defects[999])
    assert "stopped after 1000 defects" in str(defects[-1])
    with tw.open(bytes(data)) as m:
        with pytest.raises(tw.InvalidModelError, match="16000 of which are not readable"):
            m.tensors


def test_a_refused_vector_is_counted_once_however_often_it_is_asked_for(monkeypatch):
    """Operators look their code up in Model.operator_codes on every use, and do not
    keep a refusal: the count of unreadable entries must not be redone each time
    (on a 4 MB model with a million-entry code vector it took 75 ms per operator)."""
    import struct
    import time

    import numpy as np

    from tests.support.builders import ModelBuilder
    from tflite_weights.format import flatbuffer as _flatbuffer
    b = ModelBuilder()
    sg = b.subgraph()
    x = sg.tensor("x", "FLOAT32", [1])
    for _ in range(200):
        sg.op("RELU", [x], [x])
    sg.tensor("zeros", "UINT8", [1 << 16], np.zeros(1 << 16, np.uint8), offset=True)
    data = bytearray(b.finish())
    with tw.open(bytes(data)) as m:
        zeros = m.tensors[1].data_offset
    (site,) = [s for s in fuzzing.find_sites(bytes(data)) if s.name == "Model.operator_codes"]
    zeros += -zeros % 4
    struct.pack_into("<I", data, zeros, 16000)
    struct.pack_into("<I", data, site.pos, zeros - site.pos)
    calls = []
    real = _flatbuffer.Bulk.tables
    monkeypatch.setattr(_flatbuffer.Bulk, "tables",
                        lambda self, *a: calls.append(len(a[0])) or real(self, *a))
    with tw.open(bytes(data)) as m:
        ops = m.subgraphs[0].operators
        t0 = time.perf_counter()
        for op in ops:
            with pytest.raises(tw.InvalidModelError, match="16000 tables, 16000 of which"):
                op.opcode
        assert time.perf_counter() - t0 < 0.5
    assert calls.count(16000) == 1


# (shape, type) -> whether the interpreter refuses the model when building it, as
# measured on ai-edge-litert 2.3.0 (its BytesRequired check)
_BYTES_REQUIRED = [([2 ** 31 - 1] * 2, "FLOAT32", False), ([2 ** 31 - 1] * 3, "FLOAT32", True),
                   ([-1], "INT8", True), ([0, -1], "INT8", True),
                   ([0] + [2 ** 31 - 1] * 4, "FLOAT32", False),
                   ([2 ** 31 - 1] * 3 + [0], "INT8", True), ([65536] * 4, "INT8", True),
                   ([2 ** 31 - 1, 2 ** 31 - 1, 2], "INT8", False)]


def test_verify_refuses_the_shapes_the_interpreter_finds_too_large(tmp_path):
    """A shape with a negative dimension, or whose element or byte count reaches
    2**64, is refused by the interpreter for every tensor, data or not; verify
    agrees (it crashed on a constant of 600 dimensions of 10**9 before: the byte
    count had 5,400 digits, too many for its message)."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from tflite_weights import verify
    from tests.support.builders import ModelBuilder
    with fuzzing.InterpreterPool() as pool:
        for shape, type_name, refused in _BYTES_REQUIRED:
            b = ModelBuilder()
            sg = b.subgraph()
            x = sg.tensor("x", type_name, shape)
            sg.sg.inputs = sg.sg.outputs = [x]
            path = tmp_path / "m.tflite"
            path.write_bytes(b.finish())
            interpreter = pool.check(str(path))["class"] == "invalid_model"
            ours = bool(verify.errors_of(verify.verify(str(path))))
            assert interpreter == refused == ours, (shape, type_name, interpreter, ours)


@pytest.mark.parametrize("type_name,per_byte", [("INT2", 4), ("INT4", 2), ("INT8", 1)])
def test_the_largest_legitimate_expansions_stay_within_the_allocation_bound(type_name,
                                                                            per_byte):
    """1 MiB of per-channel quantized weights, unpacked and dequantized to float32 by
    the whole exercise: INT2 is the package's largest expansion of stored bytes (16
    bytes of float32 per stored byte).  Those arrays are what was asked for; beyond
    them, the temporaries must stay within the bound's share of the file (see
    fuzzing.memory_bound), with room to spare."""
    import numpy as np

    from tests.support.builders import ModelBuilder
    n = per_byte << 20
    rows = n // 1024
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", type_name, [rows, 1024],
              np.random.default_rng(0).integers(0, 255, 1 << 20).astype(np.uint8),
              quant=dict(scale=[0.5] * rows, zero_point=[0] * rows, quantized_dimension=0))
    data = b.finish()
    r = fuzzing.run_case(data, type_name)
    check(r)
    assert r.peak > 4 * per_byte << 20  # the float32 values were made
    outputs = r.peak_bound - fuzzing.memory_bound(len(data))
    assert outputs >= 4 * per_byte << 20
    # beyond the arrays handed out, little more than the fixed floor
    assert r.peak - outputs < fuzzing.MEMORY_FLOOR
