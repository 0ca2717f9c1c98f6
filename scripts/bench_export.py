#!/usr/bin/env python3
"""Benchmark: the C header and npz exports against xxd -i and a plain file copy.

Builds a model of about 64 MB without TensorFlow (its own minimal flatbuffer
writer over the ``flatbuffers`` package and the schema slots of
``tflite_weights._schema``): int8 per-channel weights (the bulk, as in a
firmware model), int32 biases and some float32 tensors.  Then times, best of
``--repeat`` runs, each writing to a file in the same temporary folder:

  * ``export --format c`` (the library call, and the command line in a fresh
    process) against ``xxd -i`` on the same file (the usual way to embed a
    model in firmware; target: C export at least 20x faster);
  * ``export --format npz`` against copying the file (disk speed).

    python scripts/bench_export.py [--repeat N] [--size-mb N]

From another script: ``bench_export.run(print)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import tflite_weights
from tflite_weights.format import schema as _schema


# -- a minimal writer -------------------------------------------------------------------


def _slot(table: str, field: str) -> int:
    return _schema.TABLES[table].slot(field)


def build_model(path: str, size_mb: float = 64.0, seed: int = 0, weights: str = "INT8") -> dict:
    """Write a model of about ``size_mb`` MB whose weights are ``weights`` ("INT8" with
    per-channel scales and int32 biases, or "FLOAT32"); returns what it holds."""
    import flatbuffers

    rng = np.random.default_rng(seed)
    b = flatbuffers.Builder(int(size_mb * 1.05 * (1 << 20)))
    layers = max(1, int(size_mb))  # 1 MiB of weights per layer
    cout, cin = (256, 4096) if weights == "INT8" else (256, 1024)
    tensors = []  # (name, type code, shape, buffer index, scales or None)
    blobs = [None]  # buffer 0: the empty sentinel
    int8, int32, f32 = (_schema.TENSOR_TYPES.index(t) for t in ("INT8", "INT32", "FLOAT32"))
    for i in range(layers):
        if weights == "INT8":
            w = rng.integers(-127, 128, (cout, cin), dtype=np.int8)
            blobs.append(w.view(np.uint8).reshape(-1))
            tensors.append((f"layer{i}/weights", int8, [cout, cin], len(blobs) - 1,
                            rng.uniform(1e-4, 1e-2, cout).astype(np.float32)))
            scales = rng.uniform(1e-6, 1e-4, cout).astype(np.float32)
        else:
            w = rng.standard_normal((cout, cin)).astype(np.float32)
            blobs.append(w.view(np.uint8).reshape(-1))
            tensors.append((f"layer{i}/weights", f32, [cout, cin], len(blobs) - 1, None))
            scales = None
        if weights == "INT8":
            bias = rng.integers(-20000, 20000, cout).astype(np.int32)
            blobs.append(bias.view(np.uint8))
            tensors.append((f"layer{i}/bias", int32, [cout], len(blobs) - 1, scales))
    for i in range(4):
        f = rng.standard_normal(16384).astype(np.float32)
        blobs.append(f.view(np.uint8))
        tensors.append((f"head{i}/kernel", f32, [16384], len(blobs) - 1, None))

    def vec_of_offsets(start, offsets):
        start(b, len(offsets))
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def int_vector(values, kind):
        arr = np.asarray(values, dtype=kind)
        return b.CreateNumpyVector(arr)

    # buffers (data vectors first: flatbuffers builds back to front)
    buf_offsets = []
    for blob in blobs:
        data = b.CreateNumpyVector(blob) if blob is not None else None
        b.StartObject(3)
        if data is not None:
            b.PrependUOffsetTRelativeSlot(_slot("Buffer", "data"), data, 0)
        buf_offsets.append(b.EndObject())
    t_offsets = []
    for name, code, shape, buf, scales in tensors:
        n = b.CreateString(name)
        sh = int_vector(shape, np.int32)
        q = None
        if scales is not None:
            sc = int_vector(scales, np.float32)
            zp = int_vector(np.zeros(scales.size, np.int64), np.int64)
            b.StartObject(6)
            b.PrependUOffsetTRelativeSlot(_slot("QuantizationParameters", "scale"), sc, 0)
            b.PrependUOffsetTRelativeSlot(_slot("QuantizationParameters", "zero_point"), zp, 0)
            q = b.EndObject()
        b.StartObject(12)
        b.PrependUOffsetTRelativeSlot(_slot("Tensor", "shape"), sh, 0)
        b.PrependInt8Slot(_slot("Tensor", "type"), code, 0)
        b.PrependUint32Slot(_slot("Tensor", "buffer"), buf, 0)
        b.PrependUOffsetTRelativeSlot(_slot("Tensor", "name"), n, 0)
        if q is not None:
            b.PrependUOffsetTRelativeSlot(_slot("Tensor", "quantization"), q, 0)
        t_offsets.append(b.EndObject())
    tv = vec_of_offsets(lambda bb, n: bb.StartVector(4, n, 4), t_offsets)
    sg_name = b.CreateString("main")
    b.StartObject(6)
    b.PrependUOffsetTRelativeSlot(_slot("SubGraph", "tensors"), tv, 0)
    b.PrependUOffsetTRelativeSlot(_slot("SubGraph", "name"), sg_name, 0)
    sg = b.EndObject()
    sgv = vec_of_offsets(lambda bb, n: bb.StartVector(4, n, 4), [sg])
    bv = vec_of_offsets(lambda bb, n: bb.StartVector(4, n, 4), buf_offsets)
    desc = b.CreateString("bench_export synthetic model")
    b.StartObject(10)
    b.PrependUint32Slot(_slot("Model", "version"), 3, 0)
    b.PrependUOffsetTRelativeSlot(_slot("Model", "subgraphs"), sgv, 0)
    b.PrependUOffsetTRelativeSlot(_slot("Model", "description"), desc, 0)
    b.PrependUOffsetTRelativeSlot(_slot("Model", "buffers"), bv, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=b"TFL3")
    with open(path, "wb") as f:
        f.write(b.Output())
    return {"tensors": len(tensors), "layers": layers}


# -- timing ---------------------------------------------------------------------------------


def _best(fn, repeat: int, output: "str | None" = None) -> float:
    """Best wall time of ``repeat`` runs; ``output`` is removed before each run (not
    timed), so that no run pays for freeing the previous run's file."""
    times = []
    for _ in range(repeat):
        if output is not None and os.path.exists(output):
            os.unlink(output)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _c_export(model_path: str, out: str) -> None:
    from tflite_weights.export.c_header import export_c
    with tflite_weights.open(model_path) as m, open(out, "wb") as h:
        export_c(m, h)


def _c_export_cli(model_path: str, out: str) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "tflite_weights", "export", model_path, "--format",
                    "c", "--output", out, "--quiet"], check=True, env=env)


def _npz_export(model_path: str, out: str) -> None:
    from tflite_weights.export.npz import export_npz
    with tflite_weights.open(model_path) as m:
        export_npz(m, out)


def _xxd(model_path: str, out: str) -> None:
    with open(out, "wb") as f:
        subprocess.run(["xxd", "-i", model_path], stdout=f, check=True)


def _xxd_in_python(model_path: str, out: str) -> None:
    """What a build would do without xxd: the same text with plain Python."""
    data = open(model_path, "rb").read()
    with open(out, "w") as f:
        f.write("unsigned char model[] = {\n")
        for i in range(0, len(data), 12):
            f.write("  " + ", ".join("0x%02x" % x for x in data[i:i + 12]) + ",\n")
        f.write("};\n")


def run(report, repeat: int = 3, size_mb: float = 64.0, float_mb: float = 16.0) -> dict:
    """Build the model, time everything, ``report(line)`` the results; returns the
    figures in seconds and the ratios.  ``float_mb`` > 0 adds a float32 model of that
    size (float text takes more work per value than int8)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="tflw-bench-") as tmp:
        model = os.path.join(tmp, "bench.tflite")
        info = build_model(model, size_mb)
        size = os.path.getsize(model)
        report(f"export benchmark: {size / 1e6:.1f} MB model, {info['tensors']} tensors "
               f"(int8 weights, int32 biases, float32), best of {repeat}")
        out = os.path.join(tmp, "out")
        _c_export(model, out + ".h")  # warm the page cache and the lookup tables
        results["c_export"] = _best(lambda: _c_export(model, out + ".h"), repeat, out + ".h")
        c_size = os.path.getsize(out + ".h")
        os.unlink(out + ".h")
        results["c_export_cli"] = _best(lambda: _c_export_cli(model, out + "_cli.h"), repeat,
                                        out + "_cli.h")
        os.unlink(out + "_cli.h")
        if shutil.which("xxd"):
            results["xxd"] = _best(lambda: _xxd(model, out + ".xxd.h"), repeat, out + ".xxd.h")
            ref = "xxd -i"
        else:
            results["xxd"] = _best(lambda: _xxd_in_python(model, out + ".xxd.h"), 1,
                                   out + ".xxd.h")
            ref = "xxd is not installed: a Python loop writing the same text"
        os.unlink(out + ".xxd.h")
        results["npz_export"] = _best(lambda: _npz_export(model, out + ".npz"), repeat,
                                      out + ".npz")
        results["copy"] = _best(lambda: shutil.copyfile(model, out + ".copy"), repeat,
                                out + ".copy")
    results["c_ratio"] = results["xxd"] / results["c_export"]
    results["c_cli_ratio"] = results["xxd"] / results["c_export_cli"]
    results["npz_ratio"] = results["npz_export"] / results["copy"]
    report(f"  C header (library)    {results['c_export'] * 1e3:9.1f} ms  "
           f"({c_size / 1e6:.0f} MB of text)")
    report(f"  C header (command)    {results['c_export_cli'] * 1e3:9.1f} ms  "
           f"(a new process: start-up included)")
    report(f"  {ref:<21} {results['xxd'] * 1e3:9.1f} ms")
    report(f"  -> C export is {results['c_ratio']:.1f}x faster than {ref.split(':')[0]} "
           f"({results['c_cli_ratio']:.1f}x from the command line); target >= 20x")
    report(f"  npz                   {results['npz_export'] * 1e3:9.1f} ms")
    report(f"  file copy             {results['copy'] * 1e3:9.1f} ms")
    report(f"  -> npz export takes {results['npz_ratio']:.1f}x the time of a plain copy")
    if float_mb > 0 and shutil.which("xxd"):
        with tempfile.TemporaryDirectory(prefix="tflw-bench-") as tmp:
            model = os.path.join(tmp, "float.tflite")
            build_model(model, float_mb, weights="FLOAT32")
            size = os.path.getsize(model)
            out = os.path.join(tmp, "out")
            _c_export(model, out + ".h")
            results["c_export_f32"] = _best(lambda: _c_export(model, out + ".h"), repeat,
                                            out + ".h")
            results["xxd_f32"] = _best(lambda: _xxd(model, out + ".xxd.h"), repeat,
                                       out + ".xxd.h")
        results["c_ratio_f32"] = results["xxd_f32"] / results["c_export_f32"]
        report(f"float32 model: {size / 1e6:.1f} MB")
        report(f"  C header (library)    {results['c_export_f32'] * 1e3:9.1f} ms")
        report(f"  xxd -i                {results['xxd_f32'] * 1e3:9.1f} ms")
        report(f"  -> C export is {results['c_ratio_f32']:.1f}x faster than xxd -i (float text: "
               f"9 significant digits per value)")
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-mb", type=float, default=64.0)
    ap.add_argument("--float-mb", type=float, default=16.0,
                    help="size of the float32 model (0: skip it)")
    args = ap.parse_args(argv)
    run(print, args.repeat, args.size_mb, args.float_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
