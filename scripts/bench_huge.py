#!/usr/bin/env python3
"""Scale: a model over 2 GB opens, lists and reads like a small one.

Writes a model of about 2.4 GB the way the converter writes models over 2 GB
(``_experimental_use_buffer_offset``): the flatbuffer holds only the tables,
every constant's Buffer has ``offset``/``size`` pointing after it, and the
``buffer_location`` metadata says "outside flatbuffers".  The flatbuffer is
built with the flatbuffers builder (through the test suite's writer); the
2.4 GB of weights are then streamed to the file 16 MiB at a time, so this
script never holds more than one tensor in memory.

Then, each in a fresh child process (so the figures are not polluted by the
writer), it opens the huge model and a small one with the same number of
tensors, lists every tensor (name, shape, type, quantization, data offset),
reads one tensor near the end of the file (``numpy()`` and a checksum of a
few values), and reports the time and the growth of the resident set
(/proc/self/statm).  The time must be of the same order for both, not
proportional to the file size, and the resident memory must grow by less
than 100 MB.  The temporary file is removed afterwards.

    python scripts/bench_huge.py [--dir DIR] [--gb 2.4] [--keep]

``scripts/bench.py --huge`` runs it too (``run(print)``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TENSOR_SHAPE = (4096, 1024)          # float32: 16 MiB per tensor
TENSOR_BYTES = 4 * TENSOR_SHAPE[0] * TENSOR_SHAPE[1]
DATA_START = 1 << 20                 # the flatbuffer is padded to 1 MiB, then the weights
RSS_LIMIT = 100 * 1000 * 1000


def _builder():
    from tests.support.builders import S, ModelBuilder  # the tests' writer (generated bindings)
    return S, ModelBuilder


def _tensor_values(i: int) -> np.ndarray:
    """Tensor ``i``'s values: cheap to make, different per tensor and position."""
    v = np.arange(TENSOR_SHAPE[0] * TENSOR_SHAPE[1], dtype=np.float32)
    v *= np.float32(1e-6)
    v += np.float32(i)
    return v


def expected_checksum(i: int, picks: int = 64) -> float:
    v = _tensor_values(i)
    return float(v[:: v.size // picks].astype(np.float64).sum())


def _model(n: int, offsets: "list[int] | None", shape) -> bytes:
    """The flatbuffer of ``n`` float32 tensors.  With ``offsets`` their data lives
    at those file offsets (Buffer.offset/size); otherwise it is inline."""
    S, ModelBuilder = _builder()
    b = ModelBuilder(description="bench_huge")
    sg = b.subgraph("main")
    nbytes = 4 * int(np.prod(shape))
    for i in range(n):
        if offsets is None:
            sg.tensor(f"layer{i}/kernel", "FLOAT32", list(shape),
                      np.full(shape, i, np.float32))
        else:
            buf = S.BufferT()
            buf.offset, buf.size = offsets[i], nbytes
            b.m.buffers.append(buf)
            sg.tensor(f"layer{i}/kernel", "FLOAT32", list(shape),
                      buffer=len(b.m.buffers) - 1)
    x = sg.tensor("input", "FLOAT32", [1, shape[-1]])
    sg.sg.inputs, sg.sg.outputs = [x], [x]
    if offsets is not None:
        b.add_metadata("buffer_location", b"outside flatbuffers")
    return b.finish()


def write_huge(path: str, n: int) -> int:
    """Write the huge model: the flatbuffer, zero padding to DATA_START, then each
    tensor's 16 MiB streamed in turn.  Returns the file size."""
    offsets = [DATA_START + i * TENSOR_BYTES for i in range(n)]
    fb = _model(n, offsets, TENSOR_SHAPE)
    if len(fb) > DATA_START:
        raise RuntimeError(f"the flatbuffer ({len(fb)} bytes) outgrew its {DATA_START} bytes")
    with open(path, "wb") as f:
        f.write(fb)
        f.write(b"\0" * (DATA_START - len(fb)))
        for i in range(n):
            f.write(_tensor_values(i).data)
    return os.path.getsize(path)


_CHILD = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, sys.argv[2])
import tflite_weights as tw

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

path, which = sys.argv[1], int(sys.argv[3])
before = rss()
t0 = time.perf_counter()
with tw.open(path) as m:
    listing = []
    for t in m.all_tensors():
        q = t.quantization
        listing.append((t.name, t.shape, t.type, t.data_offset,
                        None if q is None else q.scale.tolist()))
    t1 = time.perf_counter()
    v = m.tensors[which].numpy()
    flat = v.reshape(-1)
    checksum = float(flat[:: max(1, flat.size // 64)].astype(np.float64).sum())
    t2 = time.perf_counter()
    offset = m.tensors[which].data_offset
    size = m.size
t3 = time.perf_counter()
print(json.dumps({"open_list_s": t1 - t0, "read_s": t2 - t1, "total_s": t3 - t0,
                  "rss_growth": rss() - before, "tensors": len(listing),
                  "checksum": checksum, "offset": offset, "size": size}))
"""


def measure(path: str, which: int, repeat: int = 3) -> dict:
    """Best of ``repeat`` fresh child processes (time), with the largest RSS growth."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _CHILD, path, ROOT, str(which)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["total_s"])
    best["rss_growth"] = max(r["rss_growth"] for r in runs)
    return best


def run(report, *, folder: "str | None" = None, gb: float = 2.4, keep: bool = False) -> dict:
    """Write, measure, compare, remove.  ``report`` prints one line (``print``)."""
    n = max(2, int(gb * 1e9 - DATA_START) // TENSOR_BYTES + 1)
    need = DATA_START + n * TENSOR_BYTES
    folder = folder or tempfile.gettempdir()
    free = shutil.disk_usage(folder).free
    if free < need + (1 << 30):
        report(f"bench_huge: skipped: {need / 1e9:.2f} GB needed in {folder}, "
               f"{free / 1e9:.2f} GB free")
        return {"skipped": True}
    tmp = tempfile.mkdtemp(prefix="bench-huge-", dir=folder)
    try:
        huge = os.path.join(tmp, "huge.tflite")
        t0 = time.perf_counter()
        size = write_huge(huge, n)
        write_s = time.perf_counter() - t0
        small = os.path.join(tmp, "small.tflite")
        with open(small, "wb") as f:
            f.write(_model(n, None, (4,)))
        which = n - 1  # the tensor nearest the end of the file
        h = measure(huge, which)
        s = measure(small, which)
        ok_sum = abs(h["checksum"] - expected_checksum(which)) < 1e-3 * max(
            1.0, abs(expected_checksum(which)))
        report(f"bench_huge: {n} tensors; huge model {size / 1e9:.2f} GB "
               f"(written in {write_s:.1f} s), small model {os.path.getsize(small)} bytes")
        report(f"  {'model':<7} {'open+list':>10} {'read 1':>9} {'total':>9} "
               f"{'RSS growth':>11}")
        for label, r in (("huge", h), ("small", s)):
            report(f"  {label:<7} {r['open_list_s'] * 1e3:>7.1f} ms {r['read_s'] * 1e3:>6.1f} ms "
                   f"{r['total_s'] * 1e3:>6.1f} ms {r['rss_growth'] / 1e6:>8.1f} MB")
        ratio = h["total_s"] / max(s["total_s"], 1e-9)
        report(f"  last tensor at byte {h['offset']} of {h['size']} (past 2**31: "
               f"{h['offset'] > 2 ** 31}); checksum of 64 values "
               f"{'matches' if ok_sum else 'DIFFERS'}; time huge/small {ratio:.2f}x; "
               f"RSS growth {'<' if h['rss_growth'] < RSS_LIMIT else '>='} 100 MB")
        return {"tensors": n, "size": size, "write_s": write_s, "huge": h, "small": s,
                "ratio": ratio, "checksum_ok": ok_sum,
                "ok": ok_sum and h["rss_growth"] < RSS_LIMIT and ratio < 10}
    finally:
        if keep:
            report(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=None, help="where to write (default: the temp folder)")
    ap.add_argument("--gb", type=float, default=2.4, help="size of the huge model in GB")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args(argv)
    result = run(print, folder=args.dir, gb=args.gb, keep=args.keep)
    return 0 if result.get("skipped") or result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
