#!/usr/bin/env python3
"""Record what the LiteRT interpreter reports about a .tflite file.

Usage::

    python scripts/interpreter_dump.py MODEL OUT_JSON OUT_NPZ [--crashed SG:INDEX:RC ...]

The script is standalone on purpose: it imports only the standard library,
numpy and the interpreter (``ai_edge_litert``, or ``tensorflow`` as a
fallback), never ``tflite_weights``, so that its output can serve as an
independent reference ("golden") for the reader.

The model is loaded from its path with the builtin op resolver and no default
delegates (so XNNPACK does not repack or take over any constant), then
``allocate_tensors()`` is called.  If loading fails the JSON has status
"refused" and no tensors; if only ``allocate_tensors()`` fails the status is
also "refused" but every tensor the interpreter can describe is still dumped.

OUT_JSON
    ``{"format": 1, "interpreter": {...}, "status", "error", "error_stage",
    "num_subgraphs", "signatures", "signature_runners", "tensors",
    "other_subgraphs"}``.  ``tensors`` holds ``get_tensor_details()`` of
    subgraph 0; ``other_subgraphs`` holds ``{"subgraph": k, "tensors": [...]}``
    for every further subgraph.  Each tensor entry has the interpreter's
    details made JSON-safe (float32 values are written as the exact double of
    the float32, so ``np.float32(x)`` gives back the same bits) plus:

    ``value``          "ok", "null" (the interpreter has no data for it),
                       "error" (``get_tensor()`` raised) or "crashed" (not
                       read, see below), with ``value_error``.
    ``data_source``    "model_file" when the interpreter reads the tensor's
                       bytes straight from the mapped model file (a constant),
                       "runtime" when the bytes live in interpreter-owned
                       memory (activations, variables, outputs of ops), null
                       if unknown (no /proc/self/maps, or no data).
    ``data_offset``    for "model_file" tensors: byte offset in the file where
                       the interpreter reads the tensor's data; ``data_nbytes``
                       the number of bytes it reads there.
    ``npz_key``        key of the value in OUT_NPZ, or null if not stored.
    ``string_value``   for string tensors: list of hex strings (not in npz).

OUT_NPZ
    Values of the tensors whose data come from the model file, under
    ``t<index>`` for subgraph 0 and ``s<k>_t<index>`` for subgraph k.
    Values of "runtime" tensors are not stored: after ``allocate_tensors()``
    without ``invoke()`` they are uninitialised arena memory, which is neither
    meaningful nor reproducible.  (Where the data source cannot be determined,
    every readable value is stored.)  The archive is written with fixed zip
    timestamps so identical input gives identical bytes, and it loads with
    ``np.load(..., allow_pickle=False)``.

The script exits 0 once both files are written.  The interpreter can crash
the process on some valid models; callers should run this in a subprocess
and treat a negative return code as a crash.  While it runs, the script
keeps the step in progress in ``OUT_JSON.progress`` ("load",
"allocate_tensors", "tensor SG INDEX", ...; removed on success).  When a
crash happened in ``get_tensor()``, the caller can run the script again
with ``--crashed SG:INDEX:RC`` to skip that tensor: it is then recorded with
value "crashed" and listed in the top-level ``crashed_reads``.
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


def _tensor_entry(interp, det, subgraph, mappings, arrays, progress,
                  crashed):
    index = int(det["index"])
    scale, zero_point = det.get("quantization", (0.0, 0))
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
        "sparsity_parameters": _jsonable(det.get("sparsity_parameters", {})),
        "value": None,
        "value_error": None,
        "data_source": None,
        "data_offset": None,
        "data_nbytes": None,
        "npz_key": None,
    }
    if (subgraph, index) in crashed:
        entry["value"] = "crashed"
        entry["value_error"] = (
            "not read: get_tensor() ended an earlier run of this script "
            "with return code %d" % crashed[(subgraph, index)])
        return entry
    progress("tensor %d %d" % (subgraph, index))
    try:
        value = interp.get_tensor(index, subgraph)
    except TypeError:  # old signature without subgraph_index
        value = interp.get_tensor(index) if subgraph == 0 else None
    except Exception as e:  # noqa: BLE001 - record whatever the runtime says
        msg = str(e)
        entry["value"] = "null" if "null" in msg.lower() else "error"
        entry["value_error"] = msg
        return entry
    if value is None:
        entry["value"] = "null"
        entry["value_error"] = "get_tensor() returned None"
        return entry
    entry["value"] = "ok"
    value = np.asarray(value)
    wrapper = getattr(interp, "_interpreter", None)
    source, offset, nbytes = _data_location(wrapper, index, subgraph, mappings)
    entry["data_source"], entry["data_offset"] = source, offset
    entry["data_nbytes"] = nbytes
    if value.dtype == object:
        items = value.ravel().tolist()
        if all(isinstance(v, bytes) for v in items):
            entry["string_value"] = [v.hex() for v in items]
        else:
            entry["object_value"] = [repr(v) for v in items]
        return entry
    if source in ("model_file", None):
        key = ("t%d" % index) if subgraph == 0 else ("s%d_t%d" % (subgraph, index))
        arrays[key] = np.ascontiguousarray(value)
        entry["npz_key"] = key
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


def dump(model_path, out_json, out_npz, crashed=None):
    """Writes out_json and out_npz; returns the JSON object.

    crashed: {(subgraph, tensor index): return code} of tensors whose
    get_tensor() crashed the process in an earlier run; they are not read.
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
    progress("allocate_tensors")
    try:
        interp.allocate_tensors()
    except Exception as e:  # noqa: BLE001
        result.update(status="refused", error=str(e),
                      error_stage="allocate_tensors")

    mappings = _model_file_mappings(model_path)
    progress("signatures")
    try:
        result["signatures"] = _jsonable(interp.get_signature_list())
    except Exception:
        result["signatures"] = {}
    result["signature_runners"] = _signature_runners(interp)

    progress("tensor_details")
    try:
        n_sub = int(interp.num_subgraphs())
    except Exception:
        n_sub = 1
    result["num_subgraphs"] = n_sub
    for sg in range(n_sub):
        try:
            details = (interp.get_tensor_details(sg) if sg
                       else interp.get_tensor_details())
        except Exception as e:  # noqa: BLE001
            details = []
            if sg == 0:
                result["tensors_error"] = str(e)
            else:
                result["other_subgraphs"].append(
                    {"subgraph": sg, "tensors": [], "error": str(e)})
                continue
        entries = [_tensor_entry(interp, d, sg, mappings, arrays, progress,
                                 crashed)
                   for d in details]
        if sg == 0:
            result["tensors"] = entries
        else:
            result["other_subgraphs"].append({"subgraph": sg,
                                              "tensors": entries})
    progress("write")
    if crashed:
        result["crashed_reads"] = [
            {"subgraph": sg, "index": i, "returncode": rc}
            for (sg, i), rc in sorted(crashed.items())]
    _write_json(out_json, result)
    write_npz(out_npz, arrays)
    progress.done()
    return result


def progress_path(out_json):
    """Side file naming the step in progress (removed on success)."""
    return out_json + ".progress"


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(
        description="Record what the LiteRT interpreter reports about a "
        ".tflite file (see the module docstring).")
    ap.add_argument("model")
    ap.add_argument("out_json")
    ap.add_argument("out_npz")
    ap.add_argument(
        "--crashed", action="append", default=[], metavar="SG:INDEX:RC",
        help="do not call get_tensor() on this tensor, whose read crashed "
        "an earlier run with return code RC; record it as 'crashed'")
    args = ap.parse_args(argv)
    crashed = {}
    for spec in args.crashed:
        sg, idx, rc = (int(v) for v in spec.split(":"))
        crashed[(sg, idx)] = rc
    dump(args.model, args.out_json, args.out_npz, crashed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
