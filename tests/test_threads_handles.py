"""Threads, file handles, mappings, use after close, and files over 2 GB.

* Several threads reading one freshly opened model at the same moment (a
  barrier releases them together, the switch interval is cut to the minimum)
  get exactly what one thread gets alone: the lazy one-time decodes do not
  race into a wrong or partial result, for a sound model and for one whose
  damaged tensors are decoded one by one into the shared columns.
* ``close()`` and the context manager release the file descriptor and the
  mapping: thousands of open/close cycles leave /proc/self/fd and
  /proc/self/maps as they found them.  Arrays handed out before ``close()``
  stay valid; while one is alive its mapping (and, before Python 3.13, the
  descriptor the mapping holds) stays, and goes when the last one dies.
* After ``close()`` every public member either gives what it gave before
  (a value already decoded, or the same package error) or raises
  :class:`ClosedModelError`; never another exception.
* A sparse file of 2.4 GB (no disk used) with a tensor near its end opens and
  reads in a fraction of a second without the resident memory growing.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import zlib

import numpy as np
import pytest

from tests.support import fuzzing
import tflite_weights as tw
from tests.support.builders import S, ModelBuilder


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def mappings_of(path) -> int:
    """Lines of /proc/self/maps that map ``path``."""
    path = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.rstrip().endswith(path))


# -- threads ---------------------------------------------------------------------------------


def _threads_model() -> bytes:
    """Two subgraphs of mixed tensors (per-channel int8, float, int4, strings,
    offset buffers, tensors without data), operators, a signature and metadata."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    for s in range(2):
        sg = b.subgraph(f"sg{s}")
        prev = sg.tensor(f"s{s}/in", "FLOAT32", [1, 8])
        for i in range(30):
            w = sg.tensor(f"s{s}/w{i}", "INT8", [4, 8],
                          rng.integers(-127, 128, (4, 8)).astype(np.int8),
                          quant=dict(scale=rng.random(4) + 0.01, zero_point=[0] * 4))
            bias = sg.tensor(f"s{s}/b{i}", "FLOAT32", [4], rng.random(4, dtype=np.float32),
                             offset=(i % 3 == 0))
            out = sg.tensor(f"s{s}/a{i}", "FLOAT32", [1, 4])
            sg.op("FULLY_CONNECTED", [prev, w, bias], [out],
                  options=S.FullyConnectedOptionsT(),
                  options_type=S.BuiltinOptions.FullyConnectedOptions)
            prev = out
        sg.tensor(f"s{s}/i4", "INT4", [7], bytes([0x21, 0x43, 0x65, 0x07]),
                  quant=dict(scale=[0.25], zero_point=[0]))
        sg.tensor(f"s{s}/str", "STRING", [2], fuzzing._strings([b"x", b"yz"]))
        sg.sg.inputs, sg.sg.outputs = [0], [prev]
    b.signature("serving_default", 0, {"x": 0}, {"y": 90})
    b.add_metadata("min_runtime_version", b"2.3.0".ljust(16, b"\0"))
    return b.finish()


def _value(fn):
    try:
        v = fn()
    except tw.TFLiteWeightsError as e:
        return ("error", type(e).__name__, str(e))
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape,
                v.tobytes() if v.dtype != object else tuple(v.reshape(-1).tolist()))
    return v


def digest(model, order: int):
    """Everything readable from ``model``, visited in one of several orders so that
    threads reach the one-time decodes (columns, buffer table, metadata, operator
    index, signatures) first from different places."""
    out = {}
    sgs = list(model.subgraphs)
    if order % 2:
        sgs.reverse()
    steps = [
        lambda: out.__setitem__("metadata", _value(lambda: dict(model.metadata))),
        lambda: out.__setitem__("signatures", _value(
            lambda: {k: (dict(s.input_indices), dict(s.output_indices))
                     for k, s in model.signatures.items()})),
        lambda: out.__setitem__("weights", _value(
            lambda: [(op.subgraph, op.index, role, t.index) for op, role, t in model.weights()])),
    ]
    for sg in sgs:
        def tensors(sg=sg):
            ts = list(sg.tensors)
            if order % 3 == 1:
                ts.reverse()
            elif order % 3 == 2:
                ts = ts[1::2] + ts[::2]
            for t in ts:
                try:
                    q = t.quantization
                except tw.TFLiteWeightsError as e:  # a damaged tensor: its error
                    out[(sg.index, t.index)] = ("error", str(e))
                    continue
                out[(sg.index, t.index)] = (
                    t.name, t.shape, t.type, t.buffer, t.has_data, t.nbytes,
                    None if q is None else (q.scale.tobytes(), q.zero_point.tobytes(),
                                            q.quantized_dimension),
                    _value(t.numpy), _value(t.dequantize), _value(t.raw),
                    _value(lambda: [op.index for op in t.consumers]))

        def operators(sg=sg):
            for op in sg.operators:
                out[("op", sg.index, op.index)] = (op.opcode, op.inputs, op.outputs,
                                                   tuple(sorted(op.options.items())))
        steps += [tensors, operators] if order % 4 < 2 else [operators, tensors]
    k = order % len(steps)
    for step in steps[k:] + steps[:k]:
        step()
    return out


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _damaged_threads_model() -> bytes:
    """The threads model with 8 tensor offsets of subgraph 0 zeroed: those tensors
    are decoded one by one (and fail) when used, writing into the shared columns."""
    import struct
    data = bytearray(_threads_model())
    with tw.open(bytes(data)) as m:
        m.tensors
        start = m.subgraphs[0]._cols.start
    for i in range(3, 90, 11):
        struct.pack_into("<I", data, start + 4 * i, 0)
    return bytes(data)


@pytest.mark.parametrize("source", ["bytes", "path", "damaged"])
def test_eight_threads_reading_a_fresh_model_at_once_agree_with_one(tmp_path, source,
                                                                    fast_switching):
    data = _damaged_threads_model() if source == "damaged" else _threads_model()
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    src = path if source == "path" else data
    with tw.open(src) as m:
        reference = digest(m, 0)
    assert len(reference) > 200
    damaged = [k for k, v in reference.items()
               if isinstance(k, tuple) and len(k) == 2 and v[0] == "error"]
    assert len(damaged) == (8 if source == "damaged" else 0)
    n_threads, rounds = 8, 10
    for r in range(rounds):
        with tw.open(src) as m:  # fresh: every lazy cache is empty
            barrier = threading.Barrier(n_threads)
            results = [None] * n_threads
            errors = []

            def work(i):
                try:
                    barrier.wait()
                    results[i] = digest(m, i + r)
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors[0]
            for i, res in enumerate(results):
                diff = [k for k in reference if res.get(k) != reference[k]]
                assert not diff, f"round {r}, thread {i}: {diff[:5]}"


def test_threads_on_many_models_at_once(fast_switching):
    """Threads each opening, reading and closing their own models while others do
    the same: no shared state between models."""
    data = _threads_model()
    with tw.open(data) as m:
        reference = digest(m, 0)
    barrier = threading.Barrier(6)
    errors = []

    def work(i):
        try:
            barrier.wait()
            for k in range(3):
                with tw.open(data) as m:
                    assert digest(m, i + k) == reference
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# -- handles ---------------------------------------------------------------------------------


@pytest.fixture
def model_path(tmp_path):
    p = tmp_path / "handles.tflite"
    p.write_bytes(_threads_model())
    return p


def _small_model() -> bytes:
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("w", "INT8", [2, 4], np.arange(8, dtype=np.int8),
              quant=dict(scale=[0.5, 0.25], zero_point=[0, 0]))
    sg.tensor("o", "FLOAT32", [4], np.ones(4, np.float32), offset=True)
    sg.tensor("x", "FLOAT32", [1, 4])
    b.signature("serving_default", 0, {"x": 2}, {"y": 1})
    b.add_metadata("min_runtime_version", b"2.3.0".ljust(16, b"\0"))
    return b.finish()


def test_thousands_of_open_close_cycles_leak_no_descriptor_and_no_mapping(tmp_path):
    model_path = tmp_path / "small.tflite"
    model_path.write_bytes(_small_model())
    gc.collect()
    fds, maps = fd_count(), mappings_of(model_path)
    assert maps == 0
    for i in range(3000):
        if i % 10 == 0:
            with tw.open(model_path) as m:
                m["w"].numpy().sum(), m["o"].dequantize()
        elif i % 10 == 1:
            m = tw.open(str(model_path))
            m.metadata, m.signatures, m.tensors[0].quantization, m.describe()
            m.close()
        elif i % 2:
            with tw.open(model_path) as m:
                m.metadata, m.description
        else:
            m = tw.open(model_path)
            m.close()
            m.close()  # twice: harmless
    del m
    assert fd_count() == fds
    assert mappings_of(model_path) == 0


def test_a_failed_open_leaks_nothing(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 64)
    gc.collect()
    fds = fd_count()
    for _ in range(1000):
        with pytest.raises(tw.InvalidModelError):
            tw.open(bad)
    assert fd_count() == fds and mappings_of(bad) == 0


def test_views_outlive_close_and_release_the_mapping_with_the_last_one(tmp_path):
    model_path = tmp_path / "small.tflite"
    model_path.write_bytes(_small_model())
    with tw.open(model_path) as m:
        expected = [m["w"].numpy().copy(), m["o"].numpy().copy()]  # inline, offset buffer
    gc.collect()
    fds, maps = fd_count(), mappings_of(model_path)
    models, views = [], []
    for k in range(400):
        m = tw.open(model_path)
        views.append([m["w"].numpy(), m["o"].numpy()])
        models.append(m)
        if k % 2:
            m.close()
    for m in models:
        m.close()
    del m, models
    gc.collect()
    # every closed model whose arrays are alive keeps one mapping (and the descriptor
    # the mmap holds, before Python 3.13)
    assert mappings_of(model_path) == maps + 400
    assert fds <= fd_count() <= fds + 400
    for vs in views:
        for v, e in zip(vs, expected):
            np.testing.assert_array_equal(v, e)
    keep = views[0][0]
    del views, vs, v
    gc.collect()
    assert mappings_of(model_path) == maps + 1  # the one view still alive
    np.testing.assert_array_equal(keep, expected[0])
    del keep
    gc.collect()
    assert mappings_of(model_path) == maps and fd_count() == fds


def test_after_close_members_give_what_they_gave_or_closed_model_error(tmp_path):
    """Decoded values may be returned again; anything that needs the file raises
    ClosedModelError; no other error appears after close()."""
    for name, data in fuzzing.synthetic_models().items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        m = tw.open(path)
        before = fuzzing.outcomes(m)
        m.close()
        after = fuzzing.outcomes(m)
        assert after, name
        before_errors = {v for v in before.values() if v[0] == "error"}
        for where, got in after.items():
            if got[0] == "error":
                # the model is closed, or the same defect as before (a check that
                # needs no bytes: a tensor type that cannot be unshuffled, ...)
                assert got[1] == "ClosedModelError" or got in before_errors, (where, got)
            elif where in before and not where.endswith(("<repr>", ".closed")):
                assert got == before[where], (name, where, got, before[where])
            # a value on a path the first walk did not take comes from the caches: the
            # mapping is gone (below), so reading the file would have failed
        assert mappings_of(path) == 0
        assert m._state.fb.u8 is None and m._state.source.mapping is None


def test_a_model_closed_before_any_read_raises_closed_model_error_everywhere(tmp_path):
    for name, data in fuzzing.synthetic_models().items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        m = tw.open(path)
        m.close()
        got = fuzzing.outcomes(m)
        errors = {k: v for k, v in got.items() if v[0] == "error"}
        assert errors and all(v[1] == "ClosedModelError" for v in errors.values()), errors
        # what still answers is what open() read or the object itself knows
        # (generators answer too: iterating them raises, and is recorded as an error)
        answered = {k.split(".")[-1] for k, v in got.items()
                    if v[0] == "value" and v[1] != "generator"}
        assert answered <= {"model<repr>", "closed", "path", "size", "version",
                            "external_data_dir", "__contains__(1)"}, answered
        with pytest.raises(tw.ClosedModelError):
            m.tensor(0)


def test_verify_of_a_closed_model_raises_closed_model_error(model_path):
    from tflite_weights import verify
    m = tw.open(model_path)
    m.close()
    with pytest.raises(tw.ClosedModelError):
        verify.verify(m)


# -- over 2 GB -------------------------------------------------------------------------------

HUGE = int(2.4e9)


def _sparse_file_supported(folder) -> bool:
    p = os.path.join(folder, "probe")
    with open(p, "wb") as f:
        f.truncate(1 << 30)
    blocks = os.stat(p).st_blocks
    os.remove(p)
    return blocks * 512 < (1 << 20)


_HUGE_CHILD = textwrap.dedent("""
    import os, sys, time, zlib
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    import tflite_weights as tw

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    before = rss()
    t0 = time.perf_counter()
    with tw.open(sys.argv[1]) as m:
        names = [(t.name, t.shape, t.type, t.data_offset) for t in m.tensors]
        t = m["last"]
        v = t.numpy()
        flat = v.reshape(-1)
        s = float(flat[:-1024].sum()), zlib.crc32(flat[-1024:].tobytes())
        end = t.data_offset + t.nbytes
    print(time.perf_counter() - t0, rss() - before, len(names), end, v.size, *s)
""")


def test_a_sparse_file_over_2_gb_opens_and_reads_near_its_end(tmp_path):
    """64 tensors of 1 MiB at offsets past 2**31 in a 2.4 GB sparse file (a hole that
    reads zeros and costs no disk, but for the last page): opening it, listing every
    tensor and reading the last one takes a fraction of a second, and the resident
    memory grows by what is read, not by the file's size."""
    if not _sparse_file_supported(tmp_path):
        pytest.skip("the temporary folder's file system has no sparse files")
    n, size = 64, 1 << 20
    b = ModelBuilder()
    sg = b.subgraph()
    for i in range(n):
        buf = S.BufferT()
        buf.offset, buf.size = HUGE - (n - i) * size, size
        b.m.buffers.append(buf)
        sg.tensor("last" if i == n - 1 else f"w{i}", "FLOAT32", [256, 1024],
                  buffer=len(b.m.buffers) - 1)
    b.add_metadata("buffer_location", b"outside flatbuffers")
    tail = np.arange(1024, dtype=np.float32)  # the last 4 KiB hold real values
    path = tmp_path / "huge.tflite"
    with open(path, "wb") as f:
        f.write(b.finish())
        f.seek(HUGE - tail.nbytes)
        f.write(tail.tobytes())
    assert os.path.getsize(path) == HUGE > 2 ** 31
    out = subprocess.run([sys.executable, "-c", _HUGE_CHILD, str(path),
                          os.path.dirname(os.path.dirname(os.path.abspath(__file__)))],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seconds, rss_growth, count, end, elements, hole_sum, crc = out.stdout.split()
    assert int(count) == n and int(end) == HUGE and int(elements) == 256 * 1024
    assert float(hole_sum) == 0.0 and int(crc) == zlib.crc32(tail.tobytes())
    assert float(seconds) < 2.0
    # a 1 MiB tensor was read (plus the package's imports): far below the 2.4 GB
    assert int(rss_growth) < 64 << 20, int(rss_growth)
