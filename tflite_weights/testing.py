"""Compare what a model holds with what a TFLite interpreter reports, from pytest.

    from tflite_weights.testing import assert_matches_interpreter

    def test_my_model_reads_like_the_interpreter():
        assert_matches_interpreter("model.tflite")

The interpreter (``ai_edge_litert``, or ``tf.lite`` when that is what is
installed) runs in a subprocess, so a crash (it aborts or segfaults on some
valid models) cannot take the test process down; it is reported as an
interpreter failure, not as a difference.  When no interpreter is installed
the helpers skip (``pytest.skip``).

What is compared, per tensor of the file: name, shape, shape_signature and
dtype as the interpreter describes them before ``allocate_tensors()``; the
quantization scales, zero points, ``quantized_dimension`` and the legacy
``quantization`` tuple (block scales and block size for blockwise
parameters); the sparsity parameters; whether the tensor is a constant
(``has_data``), the file offset of its data and its values.  Per model: the
subgraph count, the signature keys, each signature's inputs and outputs, its
subgraph and its tensor indices.  The quantization ``min`` and ``max`` are not
compared: the interpreter does not report them, so they need another reference
(such as the schema's generated bindings).

Values are compared by meaning, bit for bit: the array's dtype must be the one
the interpreter gives (native byte order included), and every element's bit
pattern must match once both arrays are in native byte order, so NaN payloads
count and a value decoded with the wrong byte order is a difference even though
its bytes are the same.

The comparison knows the interpreter's habits:

* it is built with ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``
  (the XNNPACK delegate rewrites quantization parameters after
  ``allocate_tensors()``);
* the legacy ``quantization`` tuple is ``(scale, zero_point)`` only for
  per-tensor parameters and ``(0.0, 0)`` otherwise: both forms are checked
  against the file's parameters;
* values are compared only for the tensors the interpreter reads as
  constants before ``allocate_tensors()`` (the others give "Tensor data is
  null" or arena memory); tensors it adds itself (kernel temporaries) are
  ignored;
* sparse constants come back from ``get_tensor()`` as their stored values,
  compared with :meth:`Tensor.sparse_values`; their sparsity parameters give
  each level's format as 0 (DENSE) or 1 (SPARSE_CSR), index vectors as ints
  whatever their stored width, and no ``dense_size`` for SPARSE_CSR levels;
* a scalar constant comes back as one element of shape ``(1,)``;
* FLOAT8 values come back as int8 arrays of the same bytes, and the dtype is
  reported as "int8"; BFLOAT16 tensors are left out of its tensor details
  (its wrapper has no numpy type for them), so there is nothing to compare;
* strings come back as ``bytes`` objects, compared with ours in hex;
* models it refuses are reported with its message.

Nothing here is imported by ``tflite_weights`` itself; the interpreter is
imported only inside the subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ._interpreter_dump import run_dump
from .errors import TFLiteWeightsError
from .format.types import TYPES
from .model import Model, open as _open

__all__ = ["Difference", "Report", "compare_with_interpreter", "assert_matches_interpreter",
           "compare_with_dump", "interpreter_available", "run_interpreter_dump"]



@dataclass
class Difference:
    """One field on which the reader and the interpreter disagree."""

    subgraph: int
    tensor: int | None
    name: str
    field: str
    ours: object
    theirs: object

    def __str__(self) -> str:
        where = f"subgraph {self.subgraph}" + (
            f", tensor {self.tensor} {self.name!r}" if self.tensor is not None else
            f", {self.name!r}" if self.name else "")  # a signature's key
        return f"{where}: {self.field}: ours {_short(self.ours)}, interpreter {_short(self.theirs)}"


@dataclass
class Report:
    """The outcome of one comparison.

    ``status`` is ``"ok"`` (the interpreter read the model), ``"refused"``
    (it rejected the model: ``error`` says why), ``"crashed"`` (its process
    died: ``error`` has the signal or exit code) or ``"unavailable"`` (no
    interpreter installed).  ``differences`` lists every disagreement;
    ``tensors_compared`` and ``values_compared`` count what was checked.
    """

    model: str
    interpreter: str | None = None
    status: str = "ok"
    error: str | None = None
    differences: list[Difference] = field(default_factory=list)
    tensors_compared: int = 0
    values_compared: int = 0
    signatures_compared: int = 0
    skipped: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the interpreter read the model and nothing differs."""
        return self.status == "ok" and not self.differences

    @property
    def interpreter_failed(self) -> bool:
        return self.status in ("refused", "crashed")

    def __str__(self) -> str:
        """A head line that says plainly whether the model matches, then one line per
        difference (the first 50)."""
        n = len(self.differences)
        found = "no differences" if n == 0 else f"{n} difference{'s' if n != 1 else ''}"
        if self.status == "ok":
            verdict = "OK: " + found if self.ok else "NOT OK: " + found
        else:
            verdict = "NOT OK: " + _FAILURES.get(self.status, f"status {self.status!r}")
            if self.error:
                verdict += ": " + _error_text(self.error)
            verdict += f"; {found} in what it reported"
        head = (f"{self.model}: {verdict}; {self.tensors_compared} tensors, "
                f"{self.values_compared} values, {self.signatures_compared} signatures "
                f"compared with interpreter {self.interpreter or '-'}")
        if not n:
            return head
        lines = [head + ":"]
        lines += [f"  {d}" for d in self.differences[:50]]
        if n > 50:
            lines.append(f"  ... and {n - 50} more")
        return "\n".join(lines)


_FAILURES = {"refused": "the interpreter refused the model",
             "crashed": "the interpreter crashed",
             "unavailable": "no interpreter is installed"}


def _error_text(error: str, limit: int = 8) -> str:
    """The interpreter's messages on one line, separated by "; " (its error reporter
    runs them together, "...Was 3.Tensor 33 has...parameters.quantized_dimension...",
    or breaks lines inside one)."""
    text = re.sub(r"(https?://\S+) (?=[A-Z])", "\\1\n", error)  # a link ends a message
    # a word and a space right after a full stop, or a capital word right after a
    # parenthesis, start the next message
    parts = [p.strip() for p in re.split(
        r"\n+|(?<=[A-Za-z0-9)\]]\.)(?=[A-Za-z_]\w* )|(?<=\))(?=[A-Z]\w* )", text)]
    parts = [p[:-1] if p.endswith(".") else p for p in parts if p]
    if len(parts) > limit:
        parts = parts[:limit] + [f"... {len(parts) - limit} more messages"]
    return "; ".join(parts)


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


# -- running the interpreter ----------------------------------------------------------
def interpreter_available(python: str | None = None) -> bool:
    """True when ``ai_edge_litert`` or ``tensorflow`` can be imported (by ``python``)."""
    if python is None or python == sys.executable:
        return any(importlib.util.find_spec(m) is not None
                   for m in ("ai_edge_litert", "tensorflow"))
    code = ("import importlib.util as u, sys; "
            "sys.exit(0 if u.find_spec('ai_edge_litert') or u.find_spec('tensorflow') else 1)")
    return subprocess.run([python, "-c", code]).returncode == 0


def run_interpreter_dump(path: str, *, timeout: float = 300, python: str | None = None
                         ) -> "tuple[dict, dict[str, np.ndarray]]":
    """Run the interpreter on ``path`` in a subprocess; return its report and values.

    The report is the JSON of ``_interpreter_dump.py`` (format 1) with
    ``status`` "ok", "refused" or "crashed"; a crash inside one tensor read is
    retried with that read skipped, as the dump script allows
    (:func:`tflite_weights._interpreter_dump.run_dump`, the runner the fixture
    script uses too).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "dump.json")
        out_npz = os.path.join(tmp, "dump.npz")
        dump = run_dump(os.fspath(path), out_json, out_npz, python=python, timeout=timeout,
                        max_runs=16)
        arrays = {}
        if os.path.exists(out_npz):
            with np.load(out_npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        return dump, arrays


# -- comparing --------------------------------------------------------------------------
def _expected_dtype(t) -> "str | None":
    """The dtype name the interpreter's wrapper reports for ``t`` (None: not
    comparable, as for BFLOAT16, which it reports as NPY_USERDEF)."""
    info = TYPES.get(t.type_code)
    if info is None:
        return None
    return info.interpreter_dtype or None


def _interpreter_value_dtype(t, ours: np.dtype) -> np.dtype:
    """The dtype of what its ``get_tensor()`` returns: the same bytes, reinterpreted
    where the wrapper has no numpy type of its own (FLOAT8 comes back as int8)."""
    info = TYPES.get(t.type_code)
    if info is None or info.dtype is None or not info.interpreter_dtype:
        return ours
    theirs = np.dtype(info.interpreter_dtype)
    return theirs if theirs.itemsize == info.dtype.itemsize and theirs.kind != info.dtype.kind \
        else ours


def compare_with_dump(model: Model, dump: dict, arrays: "dict[str, np.ndarray]",
                      report: Report | None = None) -> Report:
    """Compare ``model`` with an interpreter dump (see :func:`run_interpreter_dump`;
    the committed goldens of ``fixtures/goldens`` have the same form)."""
    if report is None:
        report = Report(model=model.path or "<bytes>")
    interp = dump.get("interpreter") or {}
    report.interpreter = (f"{interp.get('package')} {interp.get('version')}"
                          if interp else report.interpreter)
    report.status = dump.get("status", "ok")
    report.error = dump.get("error")
    if report.status == "crashed" and not dump.get("tensors"):
        return report
    if report.status == "refused" and not dump.get("tensors"):
        return report
    groups = [(0, dump.get("tensors") or [])]
    groups += [(o["subgraph"], o.get("tensors") or []) for o in dump.get("other_subgraphs") or []]
    diff = report.differences.append
    subgraphs = model.subgraphs
    if dump.get("num_subgraphs") is not None and dump["num_subgraphs"] != len(subgraphs):
        diff(Difference(0, None, "", "subgraph count", len(subgraphs), dump["num_subgraphs"]))
    for sgi, entries in groups:
        if sgi >= len(subgraphs):
            diff(Difference(sgi, None, "", "subgraph exists", False, True))
            continue
        tensors = subgraphs[sgi].tensors
        for e in entries:
            if e.get("added_by_allocate"):
                report.skipped.append((sgi, e["index"], "added by allocate_tensors()"))
                continue
            i = e["index"]
            if i >= len(tensors):
                diff(Difference(sgi, i, e.get("name", ""), "tensor exists", False, True))
                continue
            _compare_tensor(tensors[i], e, arrays, report)
    _compare_signatures(model, dump, report)
    return report


def _compare_tensor(t, e: dict, arrays: dict, report: Report) -> None:
    diffs = report.differences

    def check(fieldname, ours, theirs):
        if ours != theirs:
            diffs.append(Difference(t.subgraph, t.index, e.get("name", ""), fieldname,
                                    ours, theirs))

    report.tensors_compared += 1
    # the tensor as the interpreter read it from the file, before allocate_tensors()
    # renamed, retyped or reshaped anything (older dumps have only the state after)
    desc = e.get("before_allocate") or e
    try:
        check("name", t.name, desc["name"])
        check("shape", list(t.shape), list(desc["shape"]))
        check("shape_signature", list(t.shape_signature), list(desc["shape_signature"]))
        want = _expected_dtype(t)
        if want is not None:
            check("dtype", want, desc["dtype"])
        _compare_quantization(t, e, check)
        if "sparsity_parameters" in e:
            _compare_sparsity(t, e["sparsity_parameters"] or {}, check)
        _compare_values(t, e, arrays, check, report)
    except TFLiteWeightsError as err:
        diffs.append(Difference(t.subgraph, t.index, e.get("name", ""), "readable",
                                f"{type(err).__name__}: {err}", "read by the interpreter"))


def _compare_quantization(t, e: dict, check) -> None:
    qp = e.get("quantization_parameters") or {}
    theirs_scale = [float(np.float32(x)) for x in qp.get("scales", [])]
    theirs_zp = [int(x) for x in qp.get("zero_points", [])]
    q = t.quantization
    if q is None:
        check("quantization scales", [], theirs_scale)
        check("quantization zero points", [], theirs_zp)
        return
    if q.details_type in ("BlockwiseQuantization", "MultiAxisQuantization"):
        # the interpreter's wrapper reads the scale tensor's bytes as float16 whatever
        # its type (TensorQuantizationParameters), and reports block_size
        if q.block_scale is not None:
            details = q.blockwise or q.multi_axis
            scale_tensor = t.model.subgraphs[t.subgraph].tensors[details.scales]
            if scale_tensor.dtype == np.dtype("<f2"):
                ours = np.asarray(q.block_scale, np.float32).reshape(-1)
            else:
                raw = scale_tensor.raw()
                ours = raw[:raw.size - raw.size % 2].view("<f2").astype(np.float32)
            check("blockwise scales", [float(x) for x in ours], theirs_scale)
        if "block_size" in qp:
            check("block_size", int(q.block_size), int(qp["block_size"]))
        return
    ours_scale = [float(x) for x in q.scale]
    ours_zp = [int(x) for x in q.zero_point]
    check("quantization scales", ours_scale, theirs_scale)
    check("quantization zero points", ours_zp, theirs_zp)
    if ours_scale:
        check("quantized_dimension", int(q.quantized_dimension),
              int(qp.get("quantized_dimension", 0)))
    legacy = e.get("quantization")
    if legacy is not None:
        expect = ([ours_scale[0], ours_zp[0]] if len(ours_scale) == 1 and ours_zp
                  else [0.0, 0])
        check("legacy quantization tuple", expect, [float(np.float32(legacy[0])),
                                                    int(legacy[1])])


# DimensionType codes, as the interpreter's get_tensor_details() gives them
_DIM_FORMAT = {0: "DENSE", 1: "SPARSE_CSR"}


def _compare_sparsity(t, theirs: dict, check) -> None:
    """The interpreter's ``sparsity_parameters`` (``{}`` for a dense tensor): the
    traversal order, the block map and each level's format with its dense_size (DENSE)
    or its segments and indices widened to int (SPARSE_CSR; it reports no dense_size
    for these, and neither is it compared)."""
    sp = t.sparsity
    ours = {} if sp is None else sp.to_dict()
    if not ours or not theirs:
        if ours or theirs:
            check("sparsity parameters", ours, theirs)
        return
    for key in ("traversal_order", "block_map"):
        _compare_index_list(f"sparsity {key}", ours[key], theirs.get(key) or [], check)
    levels, their_levels = ours["dim_metadata"], theirs.get("dim_metadata") or []
    if len(levels) != len(their_levels):
        check("sparsity dim_metadata levels", len(levels), len(their_levels))
        return
    for i, (mine, other) in enumerate(zip(levels, their_levels)):
        where = f"sparsity dim_metadata[{i}]"
        fmt = _DIM_FORMAT.get(other.get("format"), other.get("format"))
        if mine["format"] != fmt:
            check(f"{where}.format", mine["format"], fmt)
        elif fmt == "DENSE":
            check(f"{where}.dense_size", mine["dense_size"], other.get("dense_size"))
        else:
            for key in ("array_segments", "array_indices"):
                _compare_index_list(f"{where}.{key}", mine[key], other.get(key), check)


def _compare_index_list(fieldname: str, ours, theirs, check) -> None:
    """Two lists of ints: the first differing element when their lengths agree (index
    vectors run to thousands of entries), else the lists."""
    if ours is not None and theirs is not None and len(ours) == len(theirs):
        for j, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                check(f"{fieldname}[{j}]", a, b)
                return
        return
    check(fieldname, ours, theirs)


def _compare_values(t, e: dict, arrays: dict, check, report: Report) -> None:
    constant = e.get("value_before_allocate") == "ok"
    if e.get("value_before_allocate") in (None, "absent"):
        constant = e.get("npz_key") is not None
    info = TYPES.get(t.type_code)
    if (info is not None and not info.has_values) or t.size == 0:
        return  # no values; an empty tensor reads as empty whether or not it has a buffer
    check("has_data", t.has_data, constant)
    if not constant or not t.has_data:
        return
    if e.get("data_source") == "model_file" and e.get("data_offset") is not None:
        check("data_offset", t.data_offset, e["data_offset"])
    if "string_value" in e:
        ours = [bytes(x).hex() for x in np.asarray(t.numpy()).reshape(-1)]
        check("string values", ours, e["string_value"])
        report.values_compared += 1
        return
    key = e.get("npz_key")
    if key is None or key not in arrays:
        return
    theirs = arrays[key]
    if e.get("npz_layout") == "sparse_stored_values":
        ours = np.asarray(t.sparse_values()).reshape(-1)
        theirs = theirs.reshape(-1)
        # the interpreter's stored values are those the sparsity parameters count; the
        # buffer may hold more
        n = theirs.size
        if ours.size < n:
            check("sparse stored value count", ours.size, n)
            n = ours.size
        _compare_elements("sparse stored values", t, ours[:n], theirs[:n], check)
    else:
        ours = t.numpy()
        if ours.shape == () and theirs.shape == (1,):
            theirs = theirs.reshape(())  # the dump stores a scalar as one element
        if ours.shape != theirs.shape:
            check("value shape", list(ours.shape), list(theirs.shape))
        else:
            _compare_elements("values", t, ours, theirs, check)
    report.values_compared += 1


def _native_bits(a: np.ndarray) -> np.ndarray:
    """The bit pattern of every element of ``a`` in native byte order: a 1-D array of
    unsigned ints of the itemsize (rows of bytes for 16-byte types)."""
    a = np.ascontiguousarray(a).reshape(-1)
    if a.dtype.byteorder not in "=|":
        a = a.astype(a.dtype.newbyteorder("="))  # a byte swap: NaN payloads survive
    size = a.dtype.itemsize
    if size in (1, 2, 4, 8):
        return a.view(f"u{size}")
    return a.view(np.uint8).reshape(a.size, size)


def _compare_elements(label: str, t, ours: np.ndarray, theirs: np.ndarray, check) -> None:
    """Values by their meaning, bit for bit: the dtype the interpreter gives (native
    byte order included) and every element's bit pattern, both in native byte order
    (a FLOAT16 read with the wrong byte order has the same bytes, not the same values)."""
    want = _interpreter_value_dtype(t, ours.dtype)
    if want != theirs.dtype:
        check(f"{label} dtype", want.str, theirs.dtype.str)
    if ours.dtype.itemsize != theirs.dtype.itemsize:
        return  # the dtype difference says it all
    a, b = _native_bits(ours), _native_bits(theirs)
    unequal = a != b
    if unequal.ndim > 1:
        unequal = unequal.any(axis=1)
    bad = np.flatnonzero(unequal)
    if bad.size:
        i = int(bad[0])
        mine, other = ours.reshape(-1)[i].item(), theirs.reshape(-1)[i].item()
        if repr(mine) == repr(other):  # NaN payloads: show the bits
            mine, other = _bits_text(mine, a[i]), _bits_text(other, b[i])
        check(f"{label} ({bad.size} of {ours.size} differ, first at flat index {i})",
              mine, other)


def _bits_text(value, bits) -> str:
    text = np.asarray(bits).tobytes().hex() if np.ndim(bits) else format(int(bits), "x")
    return f"{value!r} (bits 0x{text})"


def _compare_signatures(model: Model, dump: dict, report: Report) -> None:
    sigs = dump.get("signatures")
    if sigs is None:
        return
    diff = report.differences.append
    try:
        ours = model.signatures
    except TFLiteWeightsError as err:
        diff(Difference(0, None, "", "signatures readable", str(err), sorted(sigs)))
        return
    if sorted(ours) != sorted(sigs):
        diff(Difference(0, None, "", "signature keys", sorted(ours), sorted(sigs)))
    runners = dump.get("signature_runners") or {}
    for key, sig in sigs.items():
        if key not in ours:
            continue
        report.signatures_compared += 1
        mine = ours[key]
        for part in ("inputs", "outputs"):
            if sorted(getattr(mine, part)) != sorted(sig.get(part, [])):
                diff(Difference(mine.subgraph, None, key, f"signature {part}",
                                sorted(getattr(mine, part)), sorted(sig.get(part, []))))
        runner = runners.get(key)
        if not runner or "error" in runner:
            continue
        if runner.get("subgraph_index") is not None and \
                runner["subgraph_index"] != mine.subgraph:
            diff(Difference(mine.subgraph, None, key, "signature subgraph", mine.subgraph,
                            runner["subgraph_index"]))
        for part in ("inputs", "outputs"):
            for name, det in (runner.get(part) or {}).items():
                t = getattr(mine, part).get(name)
                if t is not None and t.index != det.get("index"):
                    diff(Difference(mine.subgraph, t.index, name, f"signature {part} index",
                                    t.index, det.get("index")))


# -- the entry points -------------------------------------------------------------------------
_FAILURE_MODES = ("ignore", "skip", "fail")


def _on_failure(report: Report, mode: str) -> None:
    """Apply ``on_interpreter_failure`` to a report whose interpreter refused or crashed."""
    if not report.interpreter_failed:
        return
    msg = f"the interpreter {report.status} on {report.model}: {report.error}"
    if mode == "fail":
        raise AssertionError(msg)
    if mode == "skip":
        _skip(msg)


def _check_mode(mode: str) -> None:
    if mode not in _FAILURE_MODES:
        raise ValueError(f"on_interpreter_failure must be one of {', '.join(_FAILURE_MODES)}, "
                         f"not {mode!r}")


def compare_with_interpreter(model, *, on_interpreter_failure: str = "ignore",
                             timeout: float = 300, python: str | None = None) -> Report:
    """Compare every tensor (name, shape, type, quantization, values) and signature
    of ``model`` (a path, bytes or an open :class:`Model`) with a live interpreter.

    Returns a :class:`Report`; its ``status`` says when the interpreter refused
    the model or crashed (that is not counted as a difference).  What happens then
    is ``on_interpreter_failure``'s choice: ``"ignore"`` (the default: return the
    report), ``"skip"`` (pytest.skip) or ``"fail"`` (AssertionError).  Skips
    (``pytest.skip``) when no interpreter is installed.
    """
    _check_mode(on_interpreter_failure)
    if not interpreter_available(python):
        _skip("no TFLite interpreter (ai-edge-litert or tensorflow) is installed")
    with _as_path(model) as (path, m):
        report = Report(model=path)
        dump, arrays = run_interpreter_dump(path, timeout=timeout, python=python)
        report = compare_with_dump(m, dump, arrays, report)
    _on_failure(report, on_interpreter_failure)
    return report


def assert_matches_interpreter(model, *, on_interpreter_failure: str = "skip",
                               timeout: float = 300, python: str | None = None) -> Report:
    """Raise AssertionError listing every difference (tensor, field, ours,
    theirs) between the reader and a live interpreter.

    When the interpreter refuses the model or crashes, ``on_interpreter_failure``
    decides: ``"skip"`` (pytest.skip, the default), ``"fail"`` (AssertionError)
    or ``"ignore"`` (return the report).
    """
    _check_mode(on_interpreter_failure)
    report = compare_with_interpreter(model, on_interpreter_failure=on_interpreter_failure,
                                      timeout=timeout, python=python)
    if report.interpreter_failed:
        return report
    if report.differences:
        raise AssertionError(str(report))
    return report


class _as_path:
    """A file path for the subprocess, and an open model for the comparison."""

    def __init__(self, model):
        self.model = model
        self._tmp = None
        self._opened = None

    def __enter__(self):
        m = self.model
        if isinstance(m, Model):
            if m.path:
                return m.path, m
            data = bytes(m.data)
            opened = m
        elif isinstance(m, (str, os.PathLike)):
            self._opened = _open(m)
            return os.fspath(m), self._opened
        else:
            data = bytes(memoryview(m))
            opened = None
        fd, path = tempfile.mkstemp(suffix=".tflite")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._tmp = path
        if opened is None:
            opened = self._opened = _open(path)
        return path, opened

    def __exit__(self, *exc):
        if self._opened is not None:
            self._opened.close()
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass


def _skip(msg: str):
    try:
        import pytest
    except ImportError:  # outside pytest: a plain error
        raise RuntimeError(msg) from None
    pytest.skip(msg)
