#!/usr/bin/env python3
"""Benchmark: tflite_weights against the LiteRT interpreter and the `tflite` bindings.

Builds two synthetic models without TensorFlow (needs the `test` extra:
flatbuffers, tflite, ai-edge-litert) and times, in one run, the same work
done by each reader:

  (a) open, then name, shape, type, scale and zero point of every tensor;
  (b) (a) plus every constant tensor's values as a numpy array, each reader
      telling constants from the other tensors itself (``has_data`` here; a
      non-empty buffer for the bindings; for the interpreter, ``get_tensor()``
      before ``allocate_tensors()``, which answers "Tensor data is null" for
      the others).

Models: one with 3,001 tensors (1,500 int8 per-channel constants), one of
about 64 MB (64 float32 constants of 1 MiB).  Each figure is the best of
several runs; ratios are interpreter time / our time (higher is better).

    python scripts/bench.py [--repeat N] [--huge] [--no-export]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time

import numpy as np

import tflite_weights


# -- models -----------------------------------------------------------------------------
def _builder():
    from tests.support.builders import ModelBuilder  # the tests' writer (generated bindings)
    return ModelBuilder


def build_many_tensors(path: str, n_const: int = 1500, n_act: int = 1501) -> list[int]:
    """3,001 tensors: int8 [16, 16] constants with 16 per-channel scales, and float
    activations.  Returns the indices of the constants."""
    ModelBuilder = _builder()
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    sg = b.subgraph()
    consts = []
    for i in range(n_const):
        w = rng.integers(-127, 128, size=(16, 16), dtype=np.int8)
        consts.append(sg.tensor(f"layer{i}/weights", "INT8", [16, 16], w,
                                quant=dict(scale=rng.random(16) / 100, zero_point=[0] * 16,
                                           quantized_dimension=0)))
    for i in range(n_act):
        sg.tensor(f"layer{i}/activation", "FLOAT32", [1, 16])
    sg.sg.inputs = [n_const]
    sg.sg.outputs = [n_const + n_act - 1]
    with open(path, "wb") as f:
        f.write(b.finish())
    return consts


def build_large(path: str, n: int = 64, shape=(256, 1024)) -> list[int]:
    """About 64 MB: ``n`` float32 constants of 1 MiB each."""
    ModelBuilder = _builder()
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    sg = b.subgraph()
    consts = [sg.tensor(f"dense{i}/kernel", "FLOAT32", list(shape),
                        rng.standard_normal(shape, dtype=np.float32)) for i in range(n)]
    sg.tensor("input", "FLOAT32", [1, shape[1]])
    sg.sg.inputs = [n]
    sg.sg.outputs = [n]
    with open(path, "wb") as f:
        f.write(b.finish())
    return consts


# -- the work, per reader ----------------------------------------------------------------
def ours(path: str, consts, values: bool):
    with tflite_weights.open(path) as m:
        out = []
        for t in m.tensors:
            q = t.quantization
            out.append((t.name, t.shape, t.type,
                        None if q is None else q.scale, None if q is None else q.zero_point))
        if values:
            for t in m.tensors:
                if t.has_data:
                    out.append(t.numpy())
        return len(out)


def interpreter(path: str, consts, values: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=path,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    details = it.get_tensor_details()
    out = [(d["name"], d["shape"], d["dtype"], d["quantization_parameters"]["scales"],
            d["quantization_parameters"]["zero_points"]) for d in details]
    if values:
        # Like the other readers, find the constants itself: before allocate_tensors()
        # only tensors whose values come with the model can be read ("Tensor data is
        # null" for the others), and those reads are the stored values.
        for d in details:
            try:
                out.append(it.get_tensor(d["index"]))
            except ValueError:
                pass
    return len(out)


_TFLITE_DTYPES = {0: np.float32, 9: np.int8}


def tflite_bindings(path: str, consts, values: bool):
    import tflite
    with open(path, "rb") as f:
        buf = f.read()
    m = tflite.Model.GetRootAs(buf, 0)
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        out.append((t.Name().decode(), tuple(t.ShapeAsNumpy()), t.Type(),
                    None if q is None else q.ScaleAsNumpy(),
                    None if q is None else q.ZeroPointAsNumpy()))
    if values:
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            b = m.Buffers(t.Buffer())
            if b.DataLength():
                out.append(b.DataAsNumpy().view(_TFLITE_DTYPES[t.Type()]).reshape(
                    t.ShapeAsNumpy()))
    return len(out)


def timed(fn, *args, repeat: int = 7) -> float:
    fn(*args)  # warm the page cache and imports
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--huge", action="store_true",
                    help="also write a >2 GB model with offset buffers and time opening it")
    ap.add_argument("--no-export", action="store_true", help="skip the export benchmark")
    args = ap.parse_args(argv)

    readers = [("tflite_weights", ours), ("interpreter", interpreter),
               ("tflite bindings", tflite_bindings)]
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        p = os.path.join(tmp, "many.tflite")
        models.append(("3,001 tensors", p, build_many_tensors(p)))
        p = os.path.join(tmp, "large.tflite")
        models.append(("64 MB", p, build_large(p)))
        print(f"{'model':<14} {'work':<28} " + " ".join(f"{r:>16}" for r, _ in readers)
              + f" {'interp/ours':>12} {'bindings/ours':>14}")
        for label, path, consts in models:
            size = os.path.getsize(path)
            for work, values in (("(a) metadata", False), ("(b) metadata + values", True)):
                t = {name: timed(fn, path, consts, values, repeat=args.repeat)
                     for name, fn in readers}
                print(f"{label:<14} {work:<28} "
                      + " ".join(f"{t[r] * 1e3:>13.2f} ms" for r, _ in readers)
                      + f" {t['interpreter'] / t['tflite_weights']:>11.1f}x"
                      + f" {t['tflite bindings'] / t['tflite_weights']:>13.1f}x")
            print(f"{'':<14} ({size / 1e6:.1f} MB file)")
    if not args.no_export:
        try:
            import bench_export
        except ImportError:
            pass
        else:
            bench_export.run(print)
    if args.huge:
        try:
            import bench_huge
        except ImportError:
            print("--huge: scripts/bench_huge.py is not available")
        else:
            bench_huge.run(print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
