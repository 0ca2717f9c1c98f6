#!/usr/bin/env python3
"""Record what the LiteRT interpreter reports about a .tflite file.

Usage::

    python scripts/interpreter_dump.py MODEL OUT_JSON OUT_NPZ [--crashed PHASE:SG:INDEX:RC ...]

The script is standalone on purpose: it imports only the standard library,
numpy and the interpreter (``ai_edge_litert``, or ``tensorflow`` as a
fallback), never ``tflite_weights``, so that its output can serve as an
independent reference ("golden") for the reader.

The model is loaded from its path with the builtin op resolver and no default
delegates (so XNNPACK does not repack or take over any constant).  Every
tensor of every subgraph is read with ``get_tensor()`` once before
``allocate_tensors()`` and once after.  Before allocation only tensors whose
data come with the model have data (the others give "Tensor data is null"),
so the first read tells constants from the rest in the interpreter's own
terms, and the values read then are the ones stored.  After allocation,
non-constant tensors point into uninitialised arena memory: their reads are
only reported, never stored.  If loading fails the JSON has status "refused"
and no tensors; if ``allocate_tensors()`` fails the status is also "refused"
(with ``error_stage``) but everything the interpreter can describe is dumped.

OUT_JSON
    ``{"format": 1, "interpreter": {"package", "version"}, "status",
    "error", "error_stage", "num_subgraphs", "signatures",
    "signature_runners", "tensors", "other_subgraphs"}``.
    ``signatures`` is ``get_signature_list()``; ``signature_runners`` maps
    each key to the runner's input/output details by name (index, shape,
    shape_signature, dtype) and its ``subgraph_index``.  ``tensors`` is
    ``get_tensor_details()`` of subgraph 0 (after allocation) and
    ``other_subgraphs`` holds ``{"subgraph": k, "tensors": [...]}`` for the
    others.  Each tensor entry has the details made JSON-safe (float32 values
    are written as the exact double of the float32, so ``np.float32(x)``
    gives back the same bits; ``dtype`` is a numpy dtype name such as "int8"
    or "object") plus:

    ``value``, ``value_error``
        status of ``get_tensor()`` after allocation: "ok", "null" (no data,
        e.g. "Tensor data is null"), "error" (other exception), "skipped"
        (resource and variant tensors, dtype "object": reading them makes
        the interpreter read undefined memory, so it returns None or crashes
        at random) or "crashed" (not read, see below); the message.
    ``value_before_allocate``, ``value_before_allocate_error``
        the same for the read before allocation; "ok" marks a constant;
        "absent" for tensors that did not exist before allocation.
    ``added_by_allocate``
        true for tensors the interpreter added in ``allocate_tensors()``
        (kernel temporaries such as im2col buffers; usually nameless):
        they are not in the file.
    ``data_source``
        for constants: "model_file" when the interpreter's data pointer lies
        in the mapped model file; "runtime" if elsewhere; null if unknown
        (0-d tensors come back as numpy scalars without an address; no
        /proc/self/maps).
    ``data_offset``, ``data_nbytes``
        for "model_file" constants: byte offset in the file at which the
        interpreter reads the data, and how many bytes.
    ``npz_key``, ``npz_layout``
        key of the value in OUT_NPZ; "dense" (value in the tensor's shape) or
        "sparse_stored_values" (1-D, the values the sparse buffer holds in
        traversal order: ``get_tensor()`` returns such a buffer in the dense
        shape, with memory past the buffer's end in the rest).
    ``string_value`` / ``object_value``
        string constants as a list of hex strings / repr of other object
        values (not stored in OUT_NPZ).
    ``value_changed_by_allocate``
        present (true) if a constant read differently after allocation.
    ``before_allocate``
        ``{"name", "shape", "shape_signature", "dtype"}`` from
        ``get_tensor_details()`` before ``allocate_tensors()``: the tensor as
        the file describes it (allocation may rename, retype or reshape
        tensors); null for tensors added by allocation.

OUT_NPZ
    Constant values under ``t<index>`` for subgraph 0 and ``s<k>_t<index>``
    for subgraph k.  The archive is written with fixed zip timestamps, so
    identical input gives identical bytes, and it loads with
    ``np.load(..., allow_pickle=False)``.

The script exits 0 once both files are written.  The interpreter can crash
the process on some valid models; callers should run this in a subprocess
and treat a negative return code as a crash.  While it runs, the script
keeps the step in progress in ``OUT_JSON.progress`` ("load",
"allocate_tensors", "pre SG INDEX", "post SG INDEX", ...; removed on
success).  When a crash happened in ``get_tensor()`` or in the address
lookup of one tensor, the caller can run the script again with ``--crashed
pre|post|location:SG:INDEX:RC`` to skip that call: a skipped read is recorded
as "crashed", and every skipped call is listed in the top-level
``crashed_reads``.
"""

import json
import math
import os
import sys
import zipfile

import numpy as np

FORMAT_VERSION = 1


def _load_interpreter_module():
    """Returns (Interpreter class, OpResolverType, package name, version)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        package = "ai-edge-litert"
    except ImportError:
        import tensorflow as tf  # noqa: F401  (fallback only)
        Interpreter = tf.lite.Interpreter
        OpResolverType = tf.lite.experimental.OpResolverType
        package = "tensorflow"
    version = None
    try:
        from importlib.metadata import version as _version
        version = _version(package)
    except Exception:  # pragma: no cover - metadata missing
        if package == "tensorflow":
            import tensorflow as tf
            version = tf.__version__
    return Interpreter, OpResolverType, package, version


# ----------------------------------------------------------------------------
# JSON helpers


def _f32(x):
    """Exact float for a float32 value (the double repr round-trips)."""
    v = float(np.float32(x))
    if math.isnan(v) or math.isinf(v):
        return repr(v)  # keep the JSON strict
    return v


def _dtype_name(dtype):
    try:
        return np.dtype(dtype).name
    except Exception:
        return str(dtype)


def _jsonable(obj):
    """Converts numpy containers/scalars inside obj to plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":  # float32 -> float64 is exact
            obj = obj.astype(np.float64)
        return _jsonable(obj.tolist())
    if isinstance(obj, np.floating):
        return _f32(obj) if obj.dtype == np.float32 else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    return obj


def _int_list(x):
    return [int(v) for v in np.asarray(x).ravel().tolist()]


# ----------------------------------------------------------------------------
# Where does the interpreter read a tensor's bytes from?


def _model_file_mappings(path):
    """[(start, end, file_offset)] for mappings of `path` in this process."""
    real = os.path.realpath(path)
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6 or parts[5].strip() != real:
                    continue
                start, end = (int(v, 16) for v in parts[0].split("-"))
                out.append((start, end, int(parts[2], 16)))
    except OSError:
        return None
    return out


def _data_location(wrapper, index, subgraph, mappings):
    """(data_source, data_offset, data_nbytes) for one tensor."""
    if mappings is None or wrapper is None:
        return None, None, None
    try:
        view = wrapper.tensor(wrapper, index, subgraph)
    except Exception:
        return None, None, None
    try:
        if not isinstance(view, np.ndarray) or view.ndim == 0:
            # 0-d tensors come back as numpy scalars (copies): no address.
            return None, None, None
        ptr = view.__array_interface__["data"][0]
        nbytes = int(view.nbytes)
    except Exception:  # e.g. None for resource tensors
        return None, None, None
    finally:
        del view
    for start, end, file_off in mappings:
        if start <= ptr < end:
            return "model_file", ptr - start + file_off, nbytes
    return "runtime", None, None


# ----------------------------------------------------------------------------


def _quant_params(qp):
    out = {
        "scales": [_f32(v) for v in np.asarray(qp.get("scales", [])).ravel()],
        "zero_points": _int_list(qp.get("zero_points", [])),
        "quantized_dimension": int(qp.get("quantized_dimension", 0)),
    }
    if "block_size" in qp:
        out["block_size"] = int(qp["block_size"])
    return out


class _Progress(object):
    """Names the step in progress in a side file, so that the caller can tell
    which call took the process down when the interpreter crashes."""

    def __init__(self, path):
        self.path = path

    def __call__(self, step):
        with open(self.path, "w") as f:
            f.write(step + "\n")

    def done(self):
        try:
            os.remove(self.path)
        except OSError:
            pass


_OPAQUE_READ = (
    "get_tensor() not called: resource and variant tensors (numpy dtype "
    "object) hold no array, and reading one makes the interpreter read "
    "undefined memory (it returns None or crashes, at random)")


def _read_value(interp, subgraph, index, phase, progress, crashed,
                opaque=False):
    """(status, error, array) of get_tensor() in phase "pre" or "post"."""
    if opaque:
        return "skipped", _OPAQUE_READ, None
    key = (phase, subgraph, index)
    if key in crashed:
        return "crashed", (
            "not read: get_tensor() ended an earlier run of this script with "
            "return code %d" % crashed[key]), None
    progress("%s %d %d" % (phase, subgraph, index))
    try:
        value = interp.get_tensor(index, subgraph)
    except TypeError:  # old signature without subgraph_index
        if subgraph:
            return "error", "get_tensor() has no subgraph_index", None
        value = interp.get_tensor(index)
    except Exception as e:  # noqa: BLE001 - record whatever the runtime says
        msg = str(e)
        return ("null" if "null" in msg.lower() else "error"), msg, None
    if value is None:
        return "null", "get_tensor() returned None", None
    return "ok", None, np.asarray(value)


def _is_opaque(det):
    """Resource/variant tensors: the interpreter maps them to dtype object
    (strings map to numpy bytes)."""
    try:
        return np.dtype(det.get("dtype")) == np.dtype(object)
    except TypeError:
        return False


def _stored_count(sparsity):
    """Number of values a sparse tensor's buffer holds (traversal order)."""
    count = 1
    for dm in sparsity.get("dim_metadata") or []:
        if int(dm.get("format", 0)) == 0:          # DENSE
            count *= int(dm["dense_size"])
        else:                                      # SPARSE_CSR
            count = len(dm["array_indices"])
    return count


def _tensor_entry(interp, det, subgraph, mappings, arrays, progress,
                  crashed, pre, pre_subgraphs):
    """One tensor: details after allocate_tensors(), value status before and
    after, and (for tensors with data before allocation) where the data
    lie in the file and the value itself (into `arrays`)."""
    index = int(det["index"])
    scale, zero_point = det.get("quantization", (0.0, 0))
    sparsity = det.get("sparsity_parameters") or {}
    entry = {
        "subgraph": subgraph,
        "index": index,
        "name": det.get("name"),
        "shape": _int_list(det.get("shape", [])),
        "shape_signature": _int_list(det.get("shape_signature",
                                             det.get("shape", []))),
        "dtype": _dtype_name(det.get("dtype")),
        "quantization": [_f32(scale), int(zero_point)],
        "quantization_parameters": _quant_params(
            det.get("quantization_parameters", {})),
        "sparsity_parameters": _jsonable(sparsity),
    }
    status, error, value = _read_value(interp, subgraph, index, "post",
                                       progress, crashed, _is_opaque(det))
    entry["value"], entry["value_error"] = status, error
    added = (subgraph, index) not in pre if subgraph in pre_subgraphs else None
    pre_status, pre_error, pre_value = pre.get(
        (subgraph, index),
        ("absent", "tensor added by the interpreter in allocate_tensors()",
         None))
    entry["added_by_allocate"] = added
    entry["value_before_allocate"] = pre_status
    entry["value_before_allocate_error"] = pre_error
    entry.update(data_source=None, data_offset=None, data_nbytes=None,
                 npz_key=None, npz_layout=None)
    if pre_value is None:
        return entry

    # The tensor has data before any allocation: a constant from the file.
    if pre_value.dtype.kind in "OSU":
        # No address for these: the wrapper's tensor() crashes on strings.
        items = pre_value.ravel().tolist()
        if all(isinstance(v, bytes) for v in items):
            entry["string_value"] = [v.hex() for v in items]
        else:
            entry["object_value"] = [repr(v) for v in items]
        return entry
    source = offset = nbytes = None
    if ("location", subgraph, index) not in crashed:
        progress("location %d %d" % (subgraph, index))
        wrapper = getattr(interp, "_interpreter", None)
        source, offset, nbytes = _data_location(wrapper, index, subgraph,
                                                mappings)
    layout = "dense"
    stored = np.ascontiguousarray(pre_value)
    if sparsity:
        # get_tensor() shapes the buffer with the dense shape; only the first
        # values are the tensor's (the rest is whatever follows in memory).
        count = _stored_count(sparsity)
        stored = np.ascontiguousarray(stored.ravel()[:count])
        layout = "sparse_stored_values"
        if nbytes is not None:
            nbytes = int(stored.nbytes)
    if value is not None and value.dtype != object and (
            value.shape != pre_value.shape
            or value.tobytes() != pre_value.tobytes()):
        entry["value_changed_by_allocate"] = True
    key = ("t%d" % index) if subgraph == 0 else ("s%d_t%d" % (subgraph, index))
    arrays[key] = stored
    entry.update(data_source=source, data_offset=offset, data_nbytes=nbytes,
                 npz_key=key, npz_layout=layout)
    return entry


def _signature_runners(interp):
    out = {}
    try:
        keys = list(interp.get_signature_list().keys())
    except Exception:
        return out
    wrapper = getattr(interp, "_interpreter", None)
    for key in keys:
        rec = {}
        try:
            runner = interp.get_signature_runner(key)
            for part, getter in (("inputs", runner.get_input_details),
                                 ("outputs", runner.get_output_details)):
                rec[part] = {
                    name: {"index": int(d["index"]),
                           "shape": _int_list(d["shape"]),
                           "shape_signature": _int_list(
                               d.get("shape_signature", d["shape"])),
                           "dtype": _dtype_name(d["dtype"])}
                    for name, d in getter().items()}
        except Exception as e:  # noqa: BLE001
            rec["error"] = str(e)
        try:
            rec["subgraph_index"] = int(
                wrapper.GetSubgraphIndexFromSignature(key))
        except Exception:
            pass
        out[key] = rec
    return out


def write_npz(path, arrays):
    """np.savez equivalent with fixed timestamps (reproducible bytes)."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in arrays:  # insertion order
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arrays[key], allow_pickle=False)
    os.replace(tmp, path)


def _to_json_text(obj, indent=0):
    """json.dumps(indent=1), but lists of scalars and small dicts on one line."""
    flat = json.dumps(obj, allow_nan=False)
    if not isinstance(obj, (dict, list)) or len(flat) <= 100 or (
            isinstance(obj, list)
            and not any(isinstance(v, (dict, list)) for v in obj)):
        return flat
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = ["%s%s: %s" % (pad, json.dumps(k), _to_json_text(v, indent + 1))
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _to_json_text(v, indent + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(_to_json_text(obj) + "\n")
    os.replace(tmp, path)


def _details(interp, subgraph):
    return (interp.get_tensor_details(subgraph) if subgraph
            else interp.get_tensor_details())


def dump(model_path, out_json, out_npz, crashed=None, allocate=True):
    """Writes out_json and out_npz; returns the JSON object.

    crashed: {(phase, subgraph, tensor index): return code} of get_tensor()
    calls ("pre" or "post" allocation) that crashed the process in an
    earlier run; they are not made again.
    """
    crashed = dict(crashed or {})
    progress = _Progress(progress_path(out_json))
    progress("import")
    Interpreter, OpResolverType, package, version = _load_interpreter_module()
    result = {
        "format": FORMAT_VERSION,
        "interpreter": {"package": package, "version": version},
        "status": "ok",
        "error": None,
        "error_stage": None,
        "num_subgraphs": None,
        "signatures": {},
        "signature_runners": {},
        "tensors": [],
        "other_subgraphs": [],
    }
    arrays = {}
    progress("load")
    try:
        interp = Interpreter(
            model_path=model_path,
            experimental_op_resolver_type=(
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    except Exception as e:  # noqa: BLE001
        result.update(status="refused", error=str(e), error_stage="load")
        _write_json(out_json, result)
        write_npz(out_npz, arrays)
        progress.done()
        return result

    progress("num_subgraphs")
    try:
        n_sub = int(interp.num_subgraphs())
    except Exception:  # older interpreters: main subgraph only
        n_sub = 1
    result["num_subgraphs"] = n_sub

    # Before allocation only tensors with data in the model have data.
    pre, pre_subgraphs, pre_details = {}, set(), {}
    for sg in range(n_sub):
        progress("details_pre %d" % sg)
        try:
            details = _details(interp, sg)
        except Exception as e:  # noqa: BLE001
            result.setdefault("details_before_allocate_errors", {})[
                str(sg)] = str(e)
            continue
        pre_subgraphs.add(sg)
        for det in details:
            idx = int(det["index"])
            # as read from the file: allocate_tensors() may rename, retype or
            # reshape tensors (kernels resize outputs, DENSIFY renames its own)
            pre_details[(sg, idx)] = {
                "name": det["name"], "shape": _int_list(det["shape"]),
                "shape_signature": _int_list(det["shape_signature"]),
                "dtype": _dtype_name(det["dtype"])}
            pre[(sg, idx)] = _read_value(interp, sg, idx, "pre", progress,
                                         crashed, _is_opaque(det))

    if allocate:
        progress("allocate_tensors")
        try:
            interp.allocate_tensors()
        except Exception as e:  # noqa: BLE001
            result.update(status="refused", error=str(e),
                          error_stage="allocate_tensors")
    else:
        result.update(status="crashed", error_stage="allocate_tensors",
                      error="allocate_tensors() crashed the process in an "
                      "earlier run; this dump was made without it")

    mappings = _model_file_mappings(model_path)
    progress("signatures")
    try:
        result["signatures"] = _jsonable(interp.get_signature_list())
    except Exception:
        result["signatures"] = {}
    result["signature_runners"] = _signature_runners(interp)

    for sg in range(n_sub):
        progress("details %d" % sg)
        try:
            details = _details(interp, sg)
        except Exception as e:  # noqa: BLE001
            if sg == 0:
                result["tensors_error"] = str(e)
            else:
                result["other_subgraphs"].append(
                    {"subgraph": sg, "tensors": [], "error": str(e)})
            continue
        entries = [_tensor_entry(interp, d, sg, mappings, arrays, progress,
                                 crashed, pre, pre_subgraphs)
                   for d in details]
        for e in entries:
            e["before_allocate"] = pre_details.get((sg, e["index"]))
        if sg == 0:
            result["tensors"] = entries
        else:
            result["other_subgraphs"].append({"subgraph": sg,
                                              "tensors": entries})
    progress("write")
    if crashed:
        result["crashed_reads"] = [
            {"phase": ph, "subgraph": sg, "index": i, "returncode": rc}
            for (ph, sg, i), rc in sorted(crashed.items())]
    _write_json(out_json, result)
    write_npz(out_npz, arrays)
    progress.done()
    return result


def progress_path(out_json):
    """Side file naming the step in progress (removed on success)."""
    return out_json + ".progress"


def _exit_text(rc):
    return "killed by signal %d" % -rc if rc < 0 else "exit code %d" % rc


def _read_progress(path):
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def run_dump(model_path, out_json, out_npz, python=None, timeout=300, env=None,
             max_runs=50):
    """Run this module on ``model_path`` in a child process until it writes its report,
    and return the report (the JSON written to ``out_json``; values in ``out_npz``).

    The interpreter can crash on valid models, so each crash is retried with what
    crashed left out: a tensor read (``--crashed``), or ``allocate_tensors()``
    (``--no-allocate``: the report then holds what the interpreter says before it,
    and ``error`` says why).  Any other crash, a timeout, or too many crashes give a
    report with status "crashed", the ``error``, ``returncode``, ``signal`` and the
    ``crash_stage`` it happened in, written to ``out_json`` with an empty
    ``out_npz``, so that a caller always finds both files.  This is the one runner:
    ``tflite_weights.testing`` and ``scripts/make_fixtures.py`` both use it.
    """
    import signal
    import subprocess
    python = python or sys.executable
    progress = progress_path(out_json)
    skips = []
    allocate, crash_rc = True, 0
    rc, stage, stderr = 0, None, ""
    for _ in range(max_runs):
        if os.path.exists(progress):
            os.remove(progress)
        cmd = [python, os.path.abspath(__file__), os.fspath(model_path), out_json, out_npz]
        for spec in skips:
            cmd += ["--crashed", spec]
        if not allocate:
            cmd.append("--no-allocate")
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            rc, stage, stderr = None, _read_progress(progress), ""
            break
        rc = proc.returncode
        if rc == 0 and os.path.exists(out_json):
            with open(out_json) as f:
                report = json.load(f)
            if not allocate:
                report["error"] = ("allocate_tensors() crashed the interpreter (%s); "
                                   "compared what it reports before allocation"
                                   % _exit_text(crash_rc))
            return report
        stage = _read_progress(progress)
        stderr = proc.stderr.decode(errors="replace")
        if stage and stage.split()[0] in ("pre", "post", "location"):
            phase, sg, idx = stage.split()[:3]
            skips.append("%s:%s:%s:%d" % (phase, sg, idx, rc))
            continue
        if stage == "allocate_tensors" and allocate:
            allocate, crash_rc = False, rc
            continue
        break
    else:
        stage = "too many crashing reads"
    if rc is None:
        error = "timed out after %s s" % timeout
    else:
        last = stderr.strip().splitlines()[-1:]
        error = "%s during %s" % (_exit_text(rc), stage or "start-up") + (
            ": " + last[0] if last else "")
    report = {"format": FORMAT_VERSION, "status": "crashed", "error": error,
              "returncode": rc,
              "signal": signal.Signals(-rc).name if rc is not None and rc < 0 else None,
              "crash_stage": stage}
    _write_json(out_json, report)
    write_npz(out_npz, {})
    return report


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(
        description="Record what the LiteRT interpreter reports about a "
        ".tflite file (see the module docstring).")
    ap.add_argument("model")
    ap.add_argument("out_json")
    ap.add_argument("out_npz")
    ap.add_argument(
        "--crashed", action="append", default=[],
        metavar="PHASE:SG:INDEX:RC",
        help="do not call get_tensor() on this tensor in PHASE ('pre' or "
        "'post' allocation), or do not look up its address ('location'): "
        "that crashed an earlier run with return code RC; a skipped read "
        "is recorded as 'crashed'")
    ap.add_argument(
        "--no-allocate", action="store_true",
        help="do not call allocate_tensors() (it crashed an earlier run): "
        "dump what the interpreter reports before it")
    args = ap.parse_args(argv)
    crashed = {}
    for spec in args.crashed:
        phase, sg, idx, rc = spec.split(":")
        if phase not in ("pre", "post", "location"):
            ap.error("bad --crashed phase: %r" % phase)
        crashed[(phase, int(sg), int(idx))] = int(rc)
    dump(args.model, args.out_json, args.out_npz, crashed,
         allocate=not args.no_allocate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
