"""The ``tflite-weights`` command line: inspect, show, export, verify, diff.

This module is the only place that prints or sets an exit code.  Exit codes:
0 success, 1 an invalid model (or, for ``diff``, differences), 2 a usage
error.  Errors are one line on stderr (``tflite-weights: error: ...``); a
traceback is shown only with ``--debug``.  See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

import numpy as np

from . import __version__
from .errors import TensorNotFoundError, TFLiteWeightsError
from .format.types import STRING, TYPES, shape_text

PROG = "tflite-weights"
JSON_FORMAT_VERSION = 1

__all__ = ["main", "build_parser", "JSON_FORMAT_VERSION"]


class UsageError(Exception):
    """A command line that cannot be run as written (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"{PROG}: error: {message}\n")


# -- output helpers -----------------------------------------------------------------------


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(kind: str, message: str) -> None:
    sys.stderr.write(f"{PROG}: {kind}: {message}\n")


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())


class _Progress:
    """``progress(done, total)`` printing a percentage on stderr when it is a terminal."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        pct = 100.0 * done / total if total else 100.0
        sys.stderr.write(f"\r{self.label}: {pct:5.1f}% ({done / 1e6:.1f} of {total / 1e6:.1f} MB)")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


def _tty_progress(args, label: str) -> _Progress:
    enabled = not args.quiet and sys.stderr.isatty()
    return _Progress(label, enabled)


def _open_model(path: str):
    from .model import open as open_model
    return open_model(path)


def _jsonable(x):
    """Options and metadata values as JSON: arrays to lists, bytes to hex."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        from .export.json_export import json_values
        return json_values(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).hex()
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not np.isfinite(x):
        return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    to_dict = getattr(x, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict())
    return str(x)


def _optional(fn):
    """Call a part of the reader that may fail on a damaged model: ``(value, None)``
    or ``(None, error message)``."""
    try:
        return fn(), None
    except TFLiteWeightsError as e:
        return None, _one_line(e)


# -- inspect --------------------------------------------------------------------------------


def _shape_text(shape) -> str:
    return shape_text(shape, sep=",")


def _tensor_row(t):
    q = t.quantization
    qtext = q.summary() if q is not None else ""
    nbytes = str(t.nbytes) if t.has_data else "-"
    return [str(t.index), t.type, _shape_text(t.shape), qtext, nbytes, t.name]


def _table(rows, header, right=(0, 4)) -> list:
    """Aligned columns; the last column (the name, of any length) is not padded.  An
    error row is ``(index, message)``: its message follows the index column."""
    widths = [len(h) for h in header]
    for r in rows:
        cells = r if len(r) == len(header) else r[:1]
        for i, c in enumerate(cells):
            widths[i] = max(widths[i], len(c))
    out = []
    for r in [header] + rows:
        if len(r) != len(header):  # an error row
            out.append(f"  {r[0].rjust(widths[0])}  error: {r[1]}")
            continue
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                 for i, c in enumerate(r)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _operator_record(op) -> dict:
    rec = {"index": op.index, "opcode": op.opcode, "custom_code": op.custom_code,
           "version": op.version, "inputs": list(op.inputs), "outputs": list(op.outputs)}
    opt_type, err = _optional(lambda: op.options_type)
    rec["options_type"] = opt_type
    if opt_type:
        opts, err = _optional(lambda: op.options)
        rec["options"] = _jsonable(opts) if err is None else {"error": err}
    return rec


def _signatures_record(model):
    sigs, err = _optional(lambda: model.signatures)
    if err is not None:
        return None, err
    out = []
    for key, s in sigs.items():
        inputs, _ = _optional(lambda: s.input_indices)
        outputs, _ = _optional(lambda: s.output_indices)
        if inputs is None or outputs is None:
            inputs = {k: t.index for k, t in s.inputs.items()}
            outputs = {k: t.index for k, t in s.outputs.items()}
        sg = s.subgraph if isinstance(s.subgraph, int) else getattr(s.subgraph, "index", None)
        out.append({"key": key, "subgraph": sg, "inputs": dict(inputs),
                    "outputs": dict(outputs)})
    return out, None


def _metadata_record(model):
    md, err = _optional(model.describe)
    return (_jsonable(md) if md is not None else None), err


def cmd_inspect(args) -> int:
    model = _open_model(args.model)
    errors = []
    sgs = model.subgraphs
    if args.subgraph is not None and not 0 <= args.subgraph < len(sgs):
        raise UsageError(f"subgraph {args.subgraph} does not exist (the model has {len(sgs)})")
    chosen = [sg for sg in sgs if args.subgraph is None or sg.index == args.subgraph]
    sigs, sig_err = _signatures_record(model)
    meta, meta_err = _metadata_record(model)
    for what, err in (("signatures", sig_err), ("metadata", meta_err)):
        if err is not None:
            errors.append({"where": what, "message": err})
    minrt, _ = _optional(lambda: model.min_runtime_version)
    if args.json:
        from .export.json_export import tensor_record
        doc = {
            "format_version": JSON_FORMAT_VERSION,
            "generator": f"{PROG} {__version__}",
            "model": {"file": os.path.basename(args.model), "size": model.size,
                      "version": model.version, "description": model.description,
                      "subgraph_count": len(sgs), "buffer_count": model.buffer_count,
                      "min_runtime_version": minrt},
            "subgraphs": [],
        }
        for sg in chosen:
            rec = {"index": sg.index, "name": sg.name, "inputs": list(sg.inputs),
                   "outputs": list(sg.outputs), "tensors": []}
            for t in sg.tensors:
                try:
                    rec["tensors"].append(tensor_record(t))
                except TFLiteWeightsError as e:
                    msg = _one_line(e)
                    rec["tensors"].append({"subgraph": sg.index, "index": t.index,
                                           "error": msg})
                    errors.append({"where": f"subgraph {sg.index} tensor {t.index}",
                                   "message": msg})
            ops, err = _optional(lambda: sg.operators)
            if err is None:
                rec["operators"] = []
                for op in ops:
                    try:
                        rec["operators"].append(_operator_record(op))
                    except TFLiteWeightsError as e:
                        msg = _one_line(e)
                        rec["operators"].append({"index": op.index, "error": msg})
                        errors.append({"where": f"subgraph {sg.index} operator {op.index}",
                                       "message": msg})
            else:
                errors.append({"where": f"subgraph {sg.index} operators", "message": err})
            doc["subgraphs"].append(rec)
        if sigs is not None:
            doc["signatures"] = sigs
        if meta is not None:
            doc["metadata"] = meta
        doc["errors"] = errors
        _print(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False))
        return 1 if errors else 0

    lines = [f"file         {os.path.basename(args.model)} ({model.size} bytes)",
             f"version      {model.version}",
             f"description  {model.description if model.description is not None else '-'}",
             f"subgraphs    {len(sgs)}",
             f"buffers      {model.buffer_count}"]
    if minrt:
        lines.append(f"min runtime  {minrt}")
    if meta:
        names = [m.get("name") for m in meta.get("metadata") or [] if isinstance(m, dict)]
        if names:
            lines.append(f"metadata     {', '.join(str(n) for n in names)}")
        cm = meta.get("conversion_metadata")
        if cm:
            lines.append(f"conversion   {json.dumps(cm, ensure_ascii=False)}")
    for line in lines:
        _print(line)
    if sigs:
        _print()
        for s in sigs:
            _print(f"signature {s['key']!r} (subgraph {s['subgraph']})")
            _print(f"  inputs   {', '.join(f'{k}={v}' for k, v in s['inputs'].items()) or '-'}")
            _print(f"  outputs  {', '.join(f'{k}={v}' for k, v in s['outputs'].items()) or '-'}")
    for sg in chosen:
        ops, ops_err = _optional(lambda: sg.operators)
        nops = f", {len(ops)} operators" if ops is not None else ""
        _print()
        _print(f"subgraph {sg.index} {sg.name!r}: {len(sg.tensors)} tensors{nops}, inputs "
               f"{list(sg.inputs)}, outputs {list(sg.outputs)}")
        rows = []
        for t in sg.tensors:
            try:
                rows.append(_tensor_row(t))
            except TFLiteWeightsError as e:
                msg = _one_line(e)
                rows.append((str(t.index), msg))
                errors.append({"where": f"subgraph {sg.index} tensor {t.index}", "message": msg})
        for line in _table(rows, ["#", "type", "shape", "quantization", "bytes", "name"]):
            _print(line)
        if args.ops:
            _print()
            if ops is None:
                _print(f"  operators: {ops_err}")
                errors.append({"where": f"subgraph {sg.index} operators", "message": ops_err})
                continue
            _print("  operators")
            for op in ops:
                try:
                    code = op.opcode + (f" {op.custom_code!r}" if op.custom_code else "")
                    ins = ",".join(str(i) for i in op.inputs)
                    outs = ",".join(str(i) for i in op.outputs)
                    _print(f"  {op.index:>3}  {code} v{op.version}  [{ins}] -> [{outs}]")
                except TFLiteWeightsError as e:
                    msg = _one_line(e)
                    _print(f"  {op.index:>3}  error: {msg}")
                    errors.append({"where": f"subgraph {sg.index} operator {op.index}",
                                   "message": msg})
    for e in errors:
        _err("error", f"{e['where']}: {e['message']}")
    return 1 if errors else 0


# -- show -------------------------------------------------------------------------------------


def _stats(a: np.ndarray) -> str:
    if a.dtype == object or a.size == 0:
        return f"{a.size} values"
    if a.dtype.kind == "b":
        return f"{int(a.sum())} true of {a.size}"
    if a.dtype.kind == "c":
        return f"zeros {int(np.count_nonzero(a == 0))} of {a.size}"
    w = a.astype(np.float64) if a.dtype.kind not in "iu" else a
    nan = int(np.count_nonzero(np.isnan(w))) if w.dtype.kind == "f" else 0
    fin = w[np.isfinite(w)] if w.dtype.kind == "f" else w
    if fin.size == 0:
        return f"{nan} NaN of {a.size}"
    lo, hi = fin.min(), fin.max()
    fmt = (lambda v: str(int(v))) if w.dtype.kind in "iu" else (lambda v: f"{float(v):.6g}")
    text = (f"min {fmt(lo)}  max {fmt(hi)}  mean {float(fin.mean(dtype=np.float64)):.6g}  "
            f"zeros {int(np.count_nonzero(a == 0))} of {a.size}")
    if nan:
        text += f"  NaN {nan}"
    return text


def _array_text(a: np.ndarray, limit: int) -> str:
    if a.size <= limit:
        with np.printoptions(threshold=max(limit, 1), linewidth=100):
            return np.array2string(a, separator=" ")
    with np.printoptions(threshold=max(limit, 1) + 1, linewidth=100):
        return (np.array2string(a.reshape(-1)[:limit], separator=" ")
                + f"\n(first {limit} of {a.size} values, flat in row-major order)")


def cmd_show(args) -> int:
    model = _open_model(args.model)
    key = args.tensor
    sgs = model.subgraphs
    if not 0 <= args.subgraph < len(sgs):
        raise UsageError(f"subgraph {args.subgraph} does not exist (the model has {len(sgs)})")
    sg = sgs[args.subgraph]
    try:
        t = sg.tensor(key)
    except TensorNotFoundError:
        if not key.isdigit():
            raise
        t = sg.tensor(int(key))  # not a name: an index
    _print(f"tensor {t.subgraph}:{t.index} {t.name!r}")
    dtype = t.dtype
    _print(f"type          {t.type} (code {t.type_code})"
           + (f", numpy {dtype.name if dtype != object else 'object (bytes)'}"
              if dtype is not None else ""))
    sig = t.shape_signature
    _print(f"shape         {shape_text(t.shape)} ({t.size} elements)"
           + (f", signature {shape_text(sig)}" if tuple(sig) != tuple(t.shape) else ""))
    flags = [f for f, on in (("variable", t.is_variable), ("sparse", t.is_sparse)) if on]
    if flags:
        _print(f"flags         {', '.join(flags)}")
    if t.has_data:
        b = model.buffer(t.buffer) if t.buffer else None
        where = f" {b.location}" if b is not None else ""
        _print(f"buffer        {t.buffer}: {t.nbytes} bytes{where} at byte {t.data_offset}")
    else:
        _print(f"buffer        {t.buffer}: no stored values")
    q = t.quantization
    if q is None:
        _print("quantization  none")
    else:
        _print(f"quantization  {q.summary()}")
        with np.printoptions(threshold=args.limit, linewidth=100):
            if q.scale.size:
                _print(f"  scale       {np.array2string(q.scale, separator=' ')}")
                _print(f"  zero_point  {np.array2string(q.zero_point, separator=' ')}")
                if q.is_per_channel:
                    _print(f"  axis        {q.quantized_dimension}")
        if q.details_type not in ("NONE",):
            _print(f"  details     {json.dumps(_jsonable(q.to_dict()))}")
    if not t.has_data or dtype is None:
        return 0
    values = t.numpy()
    _print(f"stored        {_stats(values)}")
    info = TYPES.get(t.type_code)
    if q is not None and info is not None and info.has_values and info.layout != STRING \
            and not info.dequantizes_to_itself:
        try:
            deq = t.dequantize()
            _print(f"dequantized   {_stats(deq)}")
        except TFLiteWeightsError as e:
            _print(f"dequantized   not available: {_one_line(e)}")
    _print("values")
    _print(_array_text(values, args.limit))
    return 0


# -- export ------------------------------------------------------------------------------------


_C_ONLY = ("split", "align", "section", "prefix", "unpack", "requant", "single_rounding")


def _check_export_args(args) -> None:
    fmt = args.format
    for opt in _C_ONLY:
        if fmt != "c" and getattr(args, opt) not in (None, False):
            raise UsageError(f"--{opt.replace('_', '-')} applies to --format c only")
    if fmt != "json" and args.values:
        raise UsageError("--values applies to --format json only")
    if args.output == "-" and (fmt == "npz" or args.split):
        raise UsageError("--output - (stdout) works for --format c (without --split) and json")


class _AtomicFile:
    """A file written under a temporary name and renamed into place on success, so a
    build never sees half an output."""

    def __init__(self, path: str, mode: str):
        self.path = path
        d = os.path.dirname(os.path.abspath(path))
        fd, self.tmp = tempfile.mkstemp(prefix=".tflw-", dir=d)
        self.f = os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {}))

    def commit(self) -> None:
        self.f.close()
        os.chmod(self.tmp, 0o644 & ~_umask())
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.f.close()
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def cmd_export(args) -> int:
    _check_export_args(args)
    from .export import select_tensors, source_info
    model = _open_model(args.model)
    tensors = select_tensors(model, args.tensors, include_all=args.all)
    progress = _tty_progress(args, f"export {args.format}")
    files = []

    def output(path, mode):
        f = _AtomicFile(path, mode)
        files.append(f)
        return f.f

    try:
        if args.format == "c":
            from .export.c_header import CExportError, export_c
            if args.split:
                base = args.output[:-2] if args.output.endswith(".h") else args.output
                hpath, cpath = base + ".h", base + ".c"
                header, source = output(hpath, "wb"), output(cpath, "wb")
                name = os.path.basename(hpath)
            else:
                header = (sys.stdout.buffer if args.output == "-"
                          else output(args.output, "wb"))
                source = None
                name = None if args.output == "-" else os.path.basename(args.output)
            try:
                summary = export_c(model, header, source, tensors=tensors, prefix=args.prefix,
                                   align=16 if args.align is None else args.align,
                                   section=args.section, unpack=args.unpack,
                                   requant=args.requant, dequantize=args.dequantize,
                                   single_rounding=args.single_rounding, header_name=name,
                                   progress=progress)
            except CExportError as e:
                raise UsageError(_one_line(e)) from None
            what = (f"{summary['tensors']} tensors, {summary['data_bytes']} bytes of data"
                    + (f", {summary['operators']} operators" if args.requant else ""))
        elif args.format == "npz":
            from .export.npz import export_npz
            summary = export_npz(model, output(args.output, "wb"), tensors=tensors,
                                 dequantize=args.dequantize, source=source_info(model),
                                 progress=progress)
            what = f"{summary['tensors']} tensors"
        else:
            from .export.json_export import export_json
            out = sys.stdout if args.output == "-" else output(args.output, "w")
            summary = export_json(model, out, tensors=tensors, values=args.values,
                                  dequantize=args.dequantize, source=source_info(model),
                                  progress=progress)
            what = f"{summary['tensors']} tensors"
    except BaseException:
        progress.close()
        for f in files:
            f.discard()
        raise
    progress.close()
    for f in files:
        f.commit()
    if args.output != "-" and not args.quiet and sys.stderr.isatty():
        names = ", ".join(f.path for f in files)
        sys.stderr.write(f"wrote {names}: {what}\n")
    return 0


# -- verify --------------------------------------------------------------------------------------


def cmd_verify(args) -> int:
    from .verify import verify
    defects = verify(args.model)
    errors = [d for d in defects if d.is_error]
    warnings = [d for d in defects if not d.is_error]
    name = os.path.basename(args.model)
    if errors:
        if args.all:
            for d in defects:
                _err("error" if d.is_error else "warning", f"{name}: {d}")
        else:
            more = len(defects) - 1
            hint = f" ({more} more defect{'s' if more != 1 else ''}; --all lists them)" \
                if more else ""
            _err("error", f"{name}: {errors[0]}{hint}")
        return 1
    if args.all:
        for d in warnings:
            _err("warning", f"{name}: {d}")
    if not args.quiet:
        extra = ""
        if warnings:
            extra = (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
                     + ("" if args.all else " (--all lists them)"))
        _print(f"{name}: sound{extra}")
    return 0


# -- diff --------------------------------------------------------------------------------------


def cmd_diff(args) -> int:
    from .diff import diff_models
    ma, mb = _open_model(args.a), _open_model(args.b)
    d = diff_models(ma, mb)
    if d.empty:
        if not args.quiet:
            _print("no differences")
        return 0
    _print(f"--- {args.a}")
    _print(f"+++ {args.b}")
    for line in d.lines():
        _print(line)
    return 1


# -- parser --------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return v


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show a traceback for errors")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress, no summary lines")

    p = _Parser(prog=PROG, description="Read the tensors and quantization of TensorFlow Lite "
                "(.tflite) models without TensorFlow: inspect, export to C/npz/JSON, verify, "
                "diff.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("inspect", parents=[common], help="model header and one row per tensor",
                       description="Model header, signatures, metadata and one row per tensor "
                       "of every subgraph.")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--json", action="store_true",
                   help="machine-readable output (format_version 1, see docs/cli.md)")
    s.add_argument("--subgraph", type=_positive, metavar="N", help="only subgraph N")
    s.add_argument("--ops", action="store_true", help="list operators with their tensors")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("show", parents=[common], help="one tensor: metadata, statistics, values")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("tensor", metavar="TENSOR", help="tensor name or index")
    s.add_argument("--subgraph", type=_positive, default=0, metavar="N")
    s.add_argument("--limit", type=_positive, default=64, metavar="N",
                   help="print at most N values (default 64)")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("export", parents=[common], help="write tensors as C, npz or JSON")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--format", required=True, choices=("c", "npz", "json"))
    s.add_argument("--output", "-o", required=True, metavar="PATH",
                   help="output file; - for stdout (c and json)")
    s.add_argument("--tensors", nargs="+", metavar="PATTERN",
                   help="tensor names or fnmatch patterns (default: every constant)")
    s.add_argument("--dequantize", action="store_true", help="add dequantized float values")
    s.add_argument("--all", action="store_true",
                   help="include tensors without stored values (metadata and quantization)")
    s.add_argument("--values", action="store_true", help="json: include the values")
    g = s.add_argument_group("C header options")
    g.add_argument("--split", action="store_true",
                   help="write PATH.h with declarations and PATH.c with the data")
    g.add_argument("--align", type=_positive, metavar="N",
                   help="alignment of data arrays in bytes (default 16)")
    g.add_argument("--section", metavar="NAME", help="linker section of data arrays")
    g.add_argument("--prefix", metavar="PREFIX",
                   help="identifier prefix (default: from the model file name)")
    g.add_argument("--unpack", action="store_true",
                   help="INT4/UINT4/INT2 as one byte per element instead of packed")
    g.add_argument("--requant", action="store_true",
                   help="per-channel requantization multipliers and shifts of int8 "
                   "CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED")
    g.add_argument("--single-rounding", action="store_true",
                   help="requantization as built with TFLITE_SINGLE_ROUNDING")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("verify", parents=[common],
                       help="check every table, vector, string and buffer")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--all", action="store_true", help="list every defect and warning")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("diff", parents=[common], help="compare two models tensor by tensor")
    s.add_argument("a", metavar="A")
    s.add_argument("b", metavar="B")
    s.set_defaults(func=cmd_diff)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2), --help and --version (0)
        return e.code if isinstance(e.code, int) else 2
    debug = getattr(args, "debug", False)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except UsageError as e:
        if debug:
            traceback.print_exc()
        _err("error", _one_line(e))
        return 2
    except TensorNotFoundError as e:
        if debug:
            traceback.print_exc()
        _err("error", _one_line(e))
        return 2
    except TFLiteWeightsError as e:
        if debug:
            traceback.print_exc()
        _err("error", _one_line(e))
        return 1
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:
        if debug:
            traceback.print_exc()
        name = f"{e.filename}: " if e.filename else ""
        _err("error", f"{name}{e.strerror or _one_line(e)}")
        return 1
    except KeyboardInterrupt:
        _err("error", "interrupted")
        return 130
    except Exception as e:  # a bug: say so in one line, the traceback with --debug
        if debug:
            traceback.print_exc()
        _err("error", f"internal error: {type(e).__name__}: {_one_line(e)} (--debug shows "
             f"the traceback)")
        return 1
