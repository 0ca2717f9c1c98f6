"""A full structural check of a ``.tflite`` file: every table, vector, string and buffer.

Two passes, both driven by data rather than by code per table:

1. **Flatbuffer structure.**  Every table reachable from the root is walked
   generically from :data:`tflite_weights._schema.TABLES` (every field, every
   union member, every vector of tables or strings, at any depth) and checked
   with the rules of the C++ ``flatbuffers::Verifier`` that guards the
   interpreter (``include/flatbuffers/verifier.h`` and ``table.h``): offsets
   and scalars aligned to their size, offsets non-zero and inside the signed
   32-bit range, every range inside the buffer, vtables of even size inside
   the buffer, strings NUL-terminated, vector byte sizes without overflow, at
   most 64 nested tables and 1,000,000 tables in all.  The window checked is
   ``min(file size, 2**31 - 2)`` bytes, as in ``VerifyAndBuildFromAllocation``:
   data after the flatbuffer (offset buffers, an appended zip) is allowed.

2. **Model rules** that the interpreter builder enforces when it turns the
   flatbuffer into a graph (``InterpreterBuilder`` in
   ``tflite/core/interpreter_builder.cc``, ``Subgraph::SetTensorParametersReadOnly``):
   schema version 3, operator code and tensor indices in range, buffer
   indices in range, offset buffers inside the file, constant data at least
   as large as the shape needs, quantization parameters that fit the tensor,
   sparsity parameters complete.  They run only when the structure is sound,
   since they read the structure.

Each problem is a :class:`Defect` naming its ``rule``, an identifier of
:data:`RULES`, the one table of every rule with its severity: ``"error"`` (the
interpreter would refuse the model, or this reader cannot read it) or
``"warning"`` (accepted by the runtime, but suspicious).  Where this check is
stricter than the interpreter, the rule says so in its message and
``docs/cli.md`` lists why.
"""

from __future__ import annotations

import math
import mmap
import os
from dataclasses import dataclass

import numpy as np

from . import _schema
from ._flatbuffer import SCALARS, FlatBuffer, Table
from .dtypes import TYPES
from .errors import TFLiteWeightsError

__all__ = ["Defect", "RULES", "verify", "errors_of", "MAX_DEPTH", "MAX_TABLES",
           "MAX_DEFECTS", "MAX_BUFFER_SIZE"]

#: flatbuffers::Verifier::Options defaults
MAX_DEPTH = 64
MAX_TABLES = 1_000_000
#: defects reported before the check stops: a damaged length can make every one of a
#: million vector entries a defect, and listing them all helps no one (the C++
#: verifier stops at the first)
MAX_DEFECTS = 1000
#: FLATBUFFERS_MAX_BUFFER_SIZE (2**31 - 1); a verified window must be smaller
MAX_BUFFER_SIZE = (1 << 31) - 1
SCHEMA_VERSION = 3
IDENTIFIER = b"TFL3"

_E, _W = "error", "warning"

#: Every rule the check applies: identifier -> (severity, what it requires).  Each
#: defect names one of these; ``docs/cli.md`` lists them, and each has a test
#: (tests/test_verify_rules.py) that breaks it alone.
RULES: "dict[str, tuple[str, str]]" = {
    # -- reading the file ------------------------------------------------------------------
    "file-empty": (_E, "the file is empty (0 bytes)"),
    "defect-limit": (_W, f"{MAX_DEFECTS} defects were reported and the check stopped: the "
                         f"file is damaged throughout"),
    "model-unreadable": (_E, "reading the model failed although its structure passed (a "
                             "structural rule is missing)"),
    # -- pass 1: the flatbuffer structure --------------------------------------------------
    "flatbuffer-too-short": (_E, "the data is shorter than the 8 bytes of a root offset and a "
                                 "file identifier"),
    "file-identifier": (_E, "bytes 4-7 are not the file identifier TFL3: not a TFLite model"),
    "offset-misaligned": (_E, "an offset field is not 4-byte aligned"),
    "offset-zero": (_E, "an offset is 0 (it would point at itself)"),
    "offset-not-signed-32-bit": (_E, "an offset is 2^31 or more: outside the signed 32-bit "
                                     "range"),
    "offset-outside": (_E, "an offset, or what it points at, lies outside the flatbuffer"),
    "element-offset-invalid": (_E, "an element offset of a vector of tables or strings is 0 "
                                   "or 2^31 or more (stricter than the verifier)"),
    "table-misaligned": (_E, "a table does not start 4-byte aligned"),
    "table-outside": (_E, "a table's first 4 bytes lie outside the flatbuffer"),
    "table-nesting-too-deep": (_E, f"tables are nested more than MAX_DEPTH ({MAX_DEPTH}) "
                                   f"deep"),
    "too-many-tables": (_E, f"more than MAX_TABLES ({MAX_TABLES:,}) tables are reached "
                            f"from the root; the walk stops"),
    "vtable-outside": (_E, "a table's vtable lies outside the flatbuffer"),
    "vtable-misaligned": (_E, "a vtable does not start 2-byte aligned"),
    "vtable-odd-size": (_E, "a vtable declares an odd size"),
    "vtable-too-small": (_E, "a vtable declares fewer than 4 bytes, too few for the table "
                             "size (stricter than the verifier)"),
    "table-size-invalid": (_E, "a table declares fewer than 4 bytes or more than the "
                               "flatbuffer holds (stricter than the verifier)"),
    "field-outside-table": (_E, "a field lies outside its table's declared size (stricter "
                                "than the verifier)"),
    "field-misaligned": (_E, "a scalar field is not aligned to its size"),
    "vector-misaligned": (_E, "the length of a vector or string is not 4-byte aligned"),
    "vector-too-long": (_E, "a vector's count times its element size exceeds the largest "
                            "flatbuffer (2^31 - 1 bytes)"),
    "vector-outside": (_E, "a vector or string (its length and elements) does not fit in the "
                           "flatbuffer"),
    "vector-elements-misaligned": (_W, "the elements of a vector of 8-byte values are not "
                                       "8-byte aligned (stricter than the verifier)"),
    "string-not-nul-terminated": (_E, "a string is not followed by a NUL byte inside the "
                                      "flatbuffer"),
    "union-type-unknown": (_W, "a union type is unknown to the schema (the runtime skips "
                               "the member)"),
    # -- pass 2: model rules ---------------------------------------------------------------
    "schema-version": (_E, f"Model.version is not {SCHEMA_VERSION}, the only version the "
                           f"runtime accepts"),
    "buffers-missing": (_E, "the model has no buffers vector"),
    "sentinel-buffer-not-empty": (_W, "buffer 0, the empty sentinel, holds bytes (the "
                                      "runtime warns)"),
    "subgraphs-missing": (_E, "the model has no subgraph"),
    "buffer-offset-beyond-file": (_E, "a buffer's offset + size lies beyond the end of the "
                                      "file"),
    "builtin-code-negative": (_E, "an operator code's builtin code is negative"),
    "builtin-code-unknown": (_W, "an operator code is newer than this reader's schema "
                                 "(older runtimes refuse it)"),
    "custom-code-missing": (_E, "a CUSTOM operator code has no custom_code"),
    "deprecated-builtin-code-mismatch": (_W, "deprecated_builtin_code does not match "
                                             "builtin_code"),
    "operator-version-below-1": (_W, "an operator code's version is below 1"),
    "opcode-index-out-of-range": (_E, "an operator's opcode_index is past "
                                      "Model.operator_codes"),
    "tensors-missing": (_E, "a subgraph has no tensors vector"),
    "tensor-index-out-of-range": (_E, "a tensor index of an operator or of a subgraph's "
                                      "inputs or outputs is neither -1 nor in range"),
    "tensor-index-minus-one": (_W, "an operator output, subgraph input or subgraph output is "
                                   "-1 (no tensor)"),
    "tensor-type-unknown": (_E, "a tensor type is unknown to the schema"),
    "tensor-shape-overflow": (_E, "a shape has a negative dimension or needs 2^64 bytes or "
                                  "more (the runtime's BytesRequired overflows)"),
    "tensor-buffer-out-of-range": (_E, "a tensor's buffer index is past Model.buffers"),
    "variable-tensor-with-buffer": (_E, "a variable tensor has a buffer with data"),
    "tensor-buffer-and-external-buffer": (_E, "a tensor has both a buffer with data and an "
                                              "external buffer"),
    "constant-negative-dimension": (_E, "a constant STRING, RESOURCE or VARIANT tensor has a "
                                        "negative dimension"),
    "constant-data-too-short": (_E, "a constant's buffer holds fewer bytes than its shape "
                                    "and type need"),
    "constant-data-too-long": (_W, "a constant's buffer holds more bytes than its shape and "
                                   "type need (the rest is ignored)"),
    "string-buffer-too-short": (_E, "a STRING constant's buffer has fewer than 4 bytes "
                                    "(stricter)"),
    "string-header-outside-buffer": (_E, "a STRING constant's string count is negative or "
                                         "its offsets do not fit in the buffer (stricter)"),
    "string-count-mismatch": (_E, "a STRING constant holds another number of strings than "
                                  "its shape needs (stricter)"),
    "string-offsets-not-rising": (_E, "a STRING constant's offsets do not rise from the "
                                      "header's end to at most the buffer size (stricter)"),
    "quantization-details-missing": (_E, "blockwise or multi-axis quantization without its "
                                         "details table"),
    "quantization-scales-tensor-out-of-range": (_E, "the scales tensor index of blockwise or "
                                                    "multi-axis details is out of range"),
    "quantization-zero-points-tensor-out-of-range": (_E, "the zero_points tensor index of "
                                                         "blockwise or multi-axis details is "
                                                         "neither -1 nor in range"),
    "quantization-block-size-negative": (_E, "blockwise or multi-axis details with a "
                                             "negative block_size"),
    "quantization-dimensions-invalid": (_E, "multi-axis quantized_dimensions are empty or "
                                            "not each in [0, rank)"),
    "quantization-zero-point-missing": (_E, "scales without a zero_point vector"),
    "quantization-one-zero-point": (_W, "several scales and one zero point (the interpreter "
                                        "refuses it; TFLite Micro applies it to every "
                                        "channel)"),
    "quantization-zero-point-count": (_E, "scale and zero_point differ in length"),
    "quantization-dimension-negative": (_E, "quantized_dimension is negative"),
    "quantization-dimension-out-of-range": (_E, "quantized_dimension is not below the rank"),
    "quantization-dimension-rank-1": (_W, "quantized_dimension is past the only axis of a "
                                          "rank-1 tensor whose scales fit that axis"),
    "quantization-scale-count": (_E, "several scales, but not one per index of the quantized "
                                     "dimension"),
    "quantization-scale-not-finite": (_E, "a scale is NaN or infinite (stricter: the kernels "
                                          "abort)"),
    "quantization-scale-negative": (_E, "a scale is negative (stricter: the kernels abort)"),
    "quantization-scale-zero": (_W, "a scale is 0: every value dequantizes to 0"),
    "quantization-zero-point-beyond-int32": (_W, "a zero point lies outside the int32 range "
                                                 "(the runtime truncates it)"),
    "sparsity-incomplete": (_E, "sparsity parameters without traversal_order or "
                                "dim_metadata"),
    "sparsity-format-unknown": (_E, "a sparse dimension's format is neither DENSE nor "
                                    "SPARSE_CSR"),
    "sparsity-csr-vector-missing": (_E, "a SPARSE_CSR dimension lacks array_segments or "
                                        "array_indices"),
    "builtin-operator-custom-options": (_W, "a builtin operator carries custom options (the "
                                            "runtime ignores them)"),
    "large-custom-options-beyond-file": (_E, "large custom options lie beyond the end of the "
                                             "file"),
    "options-subgraph-out-of-range": (_E, "a control-flow option names a subgraph that does "
                                          "not exist (stricter)"),
    "signature-key-missing": (_E, "a SignatureDef has no signature_key"),
    "signature-subgraph-out-of-range": (_E, "a SignatureDef's subgraph_index is out of range "
                                            "(stricter)"),
    "signature-tensor-out-of-range": (_E, "a signature's tensor_index is out of range for its "
                                          "subgraph (stricter)"),
    "metadata-name-missing": (_W, "a metadata entry has no name (the runtime skips it)"),
    "metadata-buffer-out-of-range": (_W, "a metadata entry names a buffer that does not exist "
                                         "(the runtime skips it)"),
    "min-runtime-version-not-terminated": (_W, "min_runtime_version has no NUL byte (the "
                                               "runtime reports it as malformed)"),
    "conversion-metadata-structure": (_W, "the nested CONVERSION_METADATA flatbuffer breaks a "
                                          "structural rule (the interpreter does not verify "
                                          "it)"),
}


@dataclass(frozen=True)
class Defect:
    """One problem: ``where`` (a path such as ``Model.subgraphs[0].tensors[3].shape``),
    ``what`` (the rule and the numbers), ``offset`` (the byte offset in the file, or
    None), ``severity`` (``"error"`` or ``"warning"``) and ``rule`` (its identifier
    in :data:`RULES`)."""

    where: str
    what: str
    offset: "int | None" = None
    severity: str = "error"
    rule: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        at = f" (byte {self.offset})" if self.offset is not None else ""
        return f"{self.where}: {self.what}{at}"


def errors_of(defects: "list[Defect]") -> "list[Defect]":
    return [d for d in defects if d.is_error]


class _Stop(Exception):
    """The table or defect limit was reached: the walk ends."""


def _defect(rule: str, where: str, what: str, offset=None) -> "Defect":
    """A defect of ``rule``, with the rule's severity."""
    return Defect(where, what, offset, RULES[rule][0], rule)


def _add(defects: list, defect: "Defect", start: int) -> None:
    """Append ``defect``; past :data:`MAX_DEFECTS` since ``start``, say so and stop."""
    defects.append(defect)
    if len(defects) - start >= MAX_DEFECTS:
        # a note on the report, not on the file: the defects before it decide
        defects.append(_defect("defect-limit", defect.where, f"stopped after {MAX_DEFECTS} "
                               f"defects: the file is damaged throughout"))
        raise _Stop


# -- pass 1: the flatbuffer structure -------------------------------------------------


class _Structure:
    """The generic walk.  Reads go through :class:`FlatBuffer` after this class
    has checked the range itself, so they never raise."""

    def __init__(self, fb: FlatBuffer, size: int, defects: list, rule: "str | None" = None,
                 root_name: str = "Model"):
        self.fb = fb
        self.size = size  # the verifier's window
        self.defects = defects
        self.rule = rule  # set for a nested flatbuffer: every defect is of this rule
        self.root_name = root_name
        self.tables = 0
        self.start = len(defects)

    # -- helpers -------------------------------------------------------------------
    def defect(self, rule: str, where: str, what: str, offset) -> None:
        _add(self.defects, _defect(self.rule or rule, where, what, offset), self.start)

    def in_range(self, elem: int, length: int) -> bool:
        # Verifier::Verify: elem_len < size_ && elem <= size_ - elem_len
        return 0 <= elem and length < self.size and elem <= self.size - length

    def range_check(self, elem: int, length: int, where: str, what: str, rule: str) -> bool:
        if self.in_range(elem, length):
            return True
        self.defect(rule, where, f"{what} ({length} bytes at byte {elem}) lies outside the "
                    f"flatbuffer ({self.size} bytes)", elem)
        return False

    def aligned(self, elem: int, align: int, where: str, what: str, rule: str) -> bool:
        if elem % align == 0:
            return True
        self.defect(rule, where, f"{what} at byte {elem} is not {align}-byte aligned", elem)
        return False

    def u16(self, pos: int) -> int:
        return self.fb.scalar(pos, "u16", "verify")

    def u32(self, pos: int) -> int:
        return self.fb.u32(pos, "verify")

    def offset(self, pos: int, where: str) -> "int | None":
        """Verifier::VerifyOffset at ``pos``: the target position, or None."""
        if not (self.aligned(pos, 4, where, "offset", "offset-misaligned")
                and self.range_check(pos, 4, where, "offset", "offset-outside")):
            return None
        o = self.u32(pos)
        if o == 0:
            self.defect("offset-zero", where, "offset is 0 (it would point at itself)", pos)
            return None
        if o >= 1 << 31:
            self.defect("offset-not-signed-32-bit", where,
                        f"offset {o} is outside the signed 32-bit range", pos)
            return None
        if not self.range_check(pos + o, 1, where, f"target of offset {o}", "offset-outside"):
            return None
        return pos + o

    def vector(self, pos: int, elem_size: int, where: str) -> "tuple[int, int] | None":
        """Verifier::VerifyVectorOrString: ``(start of elements, count)`` or None."""
        if not (self.aligned(pos, 4, where, "vector length", "vector-misaligned")
                and self.range_check(pos, 4, where, "vector length", "vector-outside")):
            return None
        n = self.u32(pos)
        if n >= MAX_BUFFER_SIZE // elem_size:
            self.defect("vector-too-long",
                        where, f"vector declares {n} elements of {elem_size} bytes, more than "
                        f"a flatbuffer can hold", pos)
            return None
        if not self.range_check(pos, 4 + n * elem_size, where,
                                f"vector of {n} elements of {elem_size} bytes", "vector-outside"):
            return None
        if elem_size == 8 and n and (pos + 4) % 8:
            self.defect("vector-elements-misaligned", where,
                        f"the 8-byte elements of this vector start at byte {pos + 4}, "
                        f"not 8-byte aligned (the runtime reads them unaligned; stricter "
                        f"than the verifier)", pos + 4)
        return pos + 4, n

    def string(self, pos: int, where: str) -> None:
        v = self.vector(pos, 1, where)
        if v is None:
            return
        end = v[0] + v[1]
        if not self.range_check(end, 1, where, "string terminator",
                                "string-not-nul-terminated"):
            return
        if self.fb.scalar(end, "u8", where) != 0:
            self.defect("string-not-nul-terminated",
                        where, f"string of {v[1]} bytes is not NUL-terminated", end)

    def element_target(self, p: int, where: str) -> "int | None":
        """The target of the offset at element position ``p`` of a vector.  The C++
        reads these without VerifyOffset (a zero offset makes the element point at
        its own slot); we require a non-zero offset in range: stricter."""
        o = self.u32(p)
        if o == 0 or o >= 1 << 31:
            self.defect("element-offset-invalid",
                        where, f"element offset {o} is 0 or outside the signed 32-bit range "
                        f"(stricter than the verifier)", p)
            return None
        if not self.range_check(p + o, 1, where, f"target of element offset {o}",
                                "offset-outside"):
            return None
        return p + o

    # -- tables ------------------------------------------------------------------------
    def table(self, pos: int, tdef, where: str, depth: int) -> None:
        # Verifier::VerifyTableStart
        if not (self.aligned(pos, 4, where, "table", "table-misaligned")
                and self.range_check(pos, 4, where, "table", "table-outside")):
            return
        self.tables += 1
        depth += 1
        if depth > MAX_DEPTH:
            self.defect("table-nesting-too-deep",
                        where, f"tables are nested more than {MAX_DEPTH} deep", pos)
            return
        if self.tables > MAX_TABLES:
            self.defect("too-many-tables",
                        where, f"the flatbuffer holds more than {MAX_TABLES} tables", pos)
            raise _Stop
        soff = self.fb.scalar(pos, "i32", where)
        vt = pos - soff
        if not self.in_range(vt, 2):
            self.defect("vtable-outside",
                        where, f"table at byte {pos} has its vtable at byte {vt}, outside the "
                        f"flatbuffer ({self.size} bytes)", pos)
            return
        if not self.aligned(vt, 2, where, "vtable", "vtable-misaligned"):
            return
        vsize = self.u16(vt)
        if vsize & 1:
            self.defect("vtable-odd-size",
                        where, f"vtable at byte {vt} declares an odd size {vsize}", vt)
            return
        if not self.range_check(vt, vsize, where, "vtable", "vtable-outside"):
            return
        # stricter: room for the table size, and the table inside the buffer
        if vsize < 4:
            self.defect("vtable-too-small",
                        where, f"vtable at byte {vt} declares {vsize} bytes, too few to hold "
                        f"the table size (stricter than the verifier)", vt)
            return
        tsize = self.u16(vt + 2)
        if tsize < 4 or not self.in_range(pos, tsize):
            self.defect("table-size-invalid",
                        where, f"table declares {tsize} bytes, which is less than 4 or does not "
                        f"fit in the flatbuffer ({self.size} bytes) (stricter than the "
                        f"verifier)", pos)
            return
        nslots = (vsize - 4) // 2
        # every field offset of the vtable in one read (the range is checked above)
        slots = self.fb.array(vt + 4, "<u2", nslots, where).tolist() if nslots else []
        for f in tdef.fields:
            self.field(pos, slots, tsize, f, where, depth)

    def _field_pos(self, pos: int, slots: list, tsize: int, slot: int, size: int,
                   where: str) -> "int | None":
        if slot >= len(slots):
            return None
        voff = slots[slot]
        if voff == 0:
            return None
        if voff < 4 or voff + size > tsize:
            self.defect("field-outside-table",
                        where, f"field offset {voff} (+{size} bytes) lies outside the table's "
                        f"{tsize} bytes (stricter than the verifier)", pos + voff)
            return None
        return pos + voff

    def scalar_field(self, fpos: int, kind: str, where: str) -> bool:
        size = SCALARS[kind][1]
        return (self.aligned(fpos, size, where, f"{kind} field", "field-misaligned")
                and self.range_check(fpos, size, where, f"{kind} field", "field-outside-table"))

    def field(self, pos, slots, tsize, f, twhere, depth) -> None:
        where = f"{twhere}.{f.name}"
        if f.kind == "scalar":
            fpos = self._field_pos(pos, slots, tsize, f.slot, SCALARS[f.elem][1], where)
            if fpos is not None:
                self.scalar_field(fpos, f.elem, where)
            return
        code = 0
        if f.kind == "union":
            tpos = self._field_pos(pos, slots, tsize, f.slot - 1, 1, where + "_type")
            if tpos is not None and self.scalar_field(tpos, "u8", where + "_type"):
                code = self.fb.scalar(tpos, "u8", where)
        fpos = self._field_pos(pos, slots, tsize, f.slot, 4, where)
        if fpos is None:
            return
        target = self.offset(fpos, where)
        if target is None:
            return
        kind = f.kind
        if kind == "string":
            self.string(target, where)
        elif kind == "vector":
            self.vector(target, SCALARS[f.elem][1], where)
        elif kind == "table":
            self.table(target, _schema.TABLES[f.elem], where, depth)
        elif kind in ("vector_table", "vector_string"):
            v = self.vector(target, 4, where)
            if v is None:
                return
            start, n = v
            tdef = _schema.TABLES[f.elem] if kind == "vector_table" else None
            for i in range(n):
                ew = f"{where}[{i}]"
                t = self.element_target(start + 4 * i, ew)
                if t is None:
                    continue
                if tdef is None:
                    self.string(t, ew)
                else:
                    self.table(t, tdef, ew, depth)
        elif kind == "union":
            if code == 0:
                return
            members = _schema.UNIONS[f.elem]
            if code > len(members):
                self.defect("union-type-unknown", where, f"union type {code} is unknown to the "
                            f"schema ({f.elem} has {len(members)} members); the runtime skips "
                            f"it", fpos)
                return
            member = members[code - 1]
            self.table(target, _schema.TABLES[member], f"{where}<{member}>", depth)

    def walk(self, identifier: "bytes | None") -> bool:
        """Verify the whole buffer from its root; False when it cannot be walked at all."""
        root = self.root_name
        if self.size < 8:
            self.defect("flatbuffer-too-short",
                        root, f"{self.size} bytes is too short for a flatbuffer (at least 8 "
                        f"needed)", 0)
            return False
        if identifier is not None:
            got = self.fb.bytes_at(4, 4, "identifier")
            if got != identifier:
                self.defect("file-identifier",
                            root, f"file identifier is {got!r} at bytes 4-7, expected "
                            f"{identifier!r}: this is not a TFLite model", 4)
                return False
        target = self.offset(0, f"{root} (root offset)")
        if target is None:
            return False
        try:
            self.table(target, _schema.TABLES[root], root, 0)
        except _Stop:
            pass
        return True


# -- pass 2: model rules ------------------------------------------------------------------

_S = _schema.slots
_M = dict(zip(
    ("version", "operator_codes", "subgraphs", "buffers", "metadata", "signature_defs"),
    _S("Model", "version", "operator_codes", "subgraphs", "buffers", "metadata",
       "signature_defs")))
_OC_DEP, _OC_CUSTOM, _OC_VERSION, _OC_BUILTIN = _S(
    "OperatorCode", "deprecated_builtin_code", "custom_code", "version", "builtin_code")
_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS = _S(
    "SubGraph", "tensors", "inputs", "outputs", "operators")
(_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_VARIABLE, _T_SPARSITY,
 _T_EXTERNAL) = _S("Tensor", "shape", "type", "buffer", "name", "quantization", "is_variable",
                   "sparsity", "external_buffer")
_B_DATA, _B_OFFSET, _B_SIZE = _S("Buffer", "data", "offset", "size")
_Q_SCALE, _Q_ZP, _Q_DETAILS, _Q_DIM = _S(
    "QuantizationParameters", "scale", "zero_point", "details", "quantized_dimension")
_BW_SCALES, _BW_ZPS, _BW_BLOCK = _S("BlockwiseQuantization", "scales", "zero_points",
                                    "block_size")
# MultiAxisQuantization starts with the same three fields, read with the slots above
assert _S("MultiAxisQuantization", "scales", "zero_points", "block_size") == (
    _BW_SCALES, _BW_ZPS, _BW_BLOCK)
_MA_DIMS = _S("MultiAxisQuantization", "quantized_dimensions")[0]
_SP_TRAVERSAL, _SP_DIMS = _S("SparsityParameters", "traversal_order", "dim_metadata")
_DM_FORMAT, _DM_SEGMENTS, _DM_INDICES = _S("DimensionMetadata", "format", "array_segments",
                                           "array_indices")
(_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS, _OP_CUSTOM, _OP_INTERMEDIATES,
 _OP_LARGE_OFFSET, _OP_LARGE_SIZE, _OP_OPTIONS_2) = _S(
    "Operator", "opcode_index", "inputs", "outputs", "builtin_options", "custom_options",
    "intermediates", "large_custom_options_offset", "large_custom_options_size",
    "builtin_options_2")
_SD_INPUTS, _SD_OUTPUTS, _SD_KEY, _SD_SUBGRAPH = _S(
    "SignatureDef", "inputs", "outputs", "signature_key", "subgraph_index")
_TM_NAME, _TM_INDEX = _S("TensorMap", "name", "tensor_index")
_MD_NAME, _MD_BUFFER = _S("Metadata", "name", "buffer")

_CUSTOM = _schema.BUILTIN_OPERATORS.index("CUSTOM")
_PLACEHOLDER = _schema.BUILTIN_OPERATORS.index("PLACEHOLDER_FOR_GREATER_OP_CODES")
_NO_SIZE_CHECK = ("STRING", "RESOURCE", "VARIANT")
_SIZE_T = 1 << 64


def _bytes_overflow(shape, info) -> bool:
    """The interpreter's BytesRequired check (``tflite/util.cc``), made for every
    tensor but strings, resources and variants when the model is built.  Measured
    on ai-edge-litert 2.3.0: a negative dimension is refused wherever it is (even
    after a 0); otherwise the running product of the dimensions must stay below
    2**64 (a 0 after an overflow does not save it), and so must the byte count."""
    if any(d < 0 for d in shape):
        return True
    count = 1
    for d in shape:
        count *= d
        if count >= _SIZE_T:
            return True
    return count * max(1, info.bits // 8) >= _SIZE_T


def _shape_text(shape) -> str:
    """A shape for a message, its middle elided past 16 dimensions."""
    if len(shape) <= 16:
        return str(list(shape))
    return (f"[{', '.join(map(str, shape[:8]))}, ... ({len(shape)} dimensions) ..., "
            f"{', '.join(map(str, shape[-4:]))}]")
_STRICT_STRINGS = " (stricter: the runtime reads a string buffer only when the tensor is used)"


def _subgraph_fields(tdef) -> "list":
    """Fields of an options table that name other subgraphs (IF, WHILE, CALL_ONCE, ...)."""
    return [f for f in tdef.fields
            if f.name.endswith("subgraph_index") or f.name.endswith("subgraph_indices")
            or f.name in ("subgraph", "called_computations")]


_SUBGRAPH_FIELDS = {name: _subgraph_fields(t) for name, t in _schema.TABLES.items()
                    if name.endswith("Options")}


class _Rules:
    def __init__(self, fb: FlatBuffer, file_size: int, defects: list):
        self.fb = fb
        self.file_size = file_size
        self.defects = defects
        self.start = len(defects)

    def report(self, rule, where, what, offset=None):
        _add(self.defects, _defect(rule, where, what, offset), self.start)

    def run(self) -> None:
        root = self.fb.root(IDENTIFIER)
        version = root.scalar(_M["version"], "u32", 0, "version")
        if version != SCHEMA_VERSION:
            self.report("schema-version",
                        "Model.version", f"schema version is {version}; the runtime accepts only "
                        f"{SCHEMA_VERSION}", root.field_pos(_M["version"]) or root.pos)
        codes = self.operator_codes(root)
        buffers = root.tables(_M["buffers"], "buffers")
        if buffers is None:
            self.report("buffers-missing",
                        "Model.buffers", "the model has no buffers vector (the interpreter "
                        "refuses it)", root.pos)
        self.buffers = buffers
        self.nbuf = 0 if buffers is None else len(buffers)
        self._buffer_cache: dict[int, tuple] = {}
        if self.nbuf:
            b0 = self.buffer(0)
            if b0[1]:
                self.report("sentinel-buffer-not-empty",
                            "Model.buffers[0]", f"the sentinel buffer 0 holds {b0[1]} bytes; it "
                            f"should be empty (the runtime warns)", b0[0])
        sgs = root.tables(_M["subgraphs"], "subgraphs")
        if sgs is None or len(sgs) == 0:
            self.report("subgraphs-missing",
                        "Model.subgraphs", "the model has no subgraph (the interpreter refuses "
                        "it)", root.pos)
            sgs = ()
        self.nsub = len(sgs)
        for i in range(len(sgs)):
            self.subgraph(i, sgs[i], codes)
        self.signatures(root, sgs)
        self.metadata(root)

    # -- pieces --------------------------------------------------------------------------
    def buffer(self, index: int) -> "tuple[int | None, int, str | None]":
        """``(file offset or None, size, location)`` of buffer ``index`` (checked)."""
        got = self._buffer_cache.get(index)
        if got is not None:
            return got
        t = self.buffers[index]
        where = f"Model.buffers[{index}]"
        v = t.vector(_B_DATA, 1, "data")
        if v is not None:
            got = (v[0], v[1], "inline")
        else:
            off = t.scalar(_B_OFFSET, "u64", 0, "offset")
            size = t.scalar(_B_SIZE, "u64", 0, "size")
            if off > 1:
                if off + size > self.file_size:
                    self.report("buffer-offset-beyond-file",
                                where, f"offset {off} + size {size} = {off + size} lies beyond the "
                                f"end of the file ({self.file_size} bytes)", t.pos)
                    got = (None, 0, "bad")
                else:
                    got = (off, size, "offset")
            else:
                got = (None, 0, None)
        self._buffer_cache[index] = got
        return got

    def operator_codes(self, root) -> list:
        vec = root.tables(_M["operator_codes"], "operator_codes")
        out = []
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            where = f"Model.operator_codes[{i}]"
            dep = t.scalar(_OC_DEP, "i8", 0, "deprecated_builtin_code")
            builtin = t.scalar(_OC_BUILTIN, "i32", 0, "builtin_code")
            code = max(dep, builtin)
            if code < 0:
                self.report("builtin-code-negative",
                            where, f"builtin code {code} is negative", t.pos)
            elif code >= len(_schema.BUILTIN_OPERATORS):
                self.report("builtin-code-unknown",
                            where, f"builtin code {code} is newer than this reader's schema "
                            f"(known: 0-{len(_schema.BUILTIN_OPERATORS) - 1}); older runtimes "
                            f"refuse it", t.pos)
            if code == _CUSTOM and not t.has(_OC_CUSTOM):
                self.report("custom-code-missing",
                            where, "a CUSTOM operator code has no custom_code (the interpreter "
                            "refuses it)", t.pos)
            if 0 <= builtin and t.has(_OC_DEP) and dep != min(builtin, _PLACEHOLDER) and \
                    t.has(_OC_BUILTIN):
                self.report("deprecated-builtin-code-mismatch",
                            where, f"deprecated_builtin_code {dep} does not match builtin_code "
                            f"{builtin} (readers of older schemas see another operator)", t.pos)
            version = t.scalar(_OC_VERSION, "i32", 1, "version")
            if version < 1:
                self.report("operator-version-below-1",
                            where, f"operator version {version} is below 1", t.pos)
            out.append(code)
        return out

    def _indices(self, values, n: int, where: str, pos: int, what: str, optional: str) -> None:
        """``optional``: "allow" (-1 means omitted), "warn" (-1 accepted by the runtime but
        meaningless here)."""
        for j, idx in enumerate(values):
            if idx == -1:
                if optional == "warn":
                    self.report("tensor-index-minus-one",
                                f"{where}[{j}]", f"{what} is -1 (no tensor)", pos)
                continue
            if not 0 <= idx < n:
                self.report("tensor-index-out-of-range",
                            f"{where}[{j}]", f"{what} {idx} is out of range: the subgraph has "
                            f"{n} tensors", pos)

    def subgraph(self, si: int, sg: Table, codes: list) -> None:
        sw = f"Model.subgraphs[{si}]"
        tvec = sg.tables(_SG_TENSORS, "tensors")
        if tvec is None:
            self.report("tensors-missing",
                        f"{sw}.tensors", "the subgraph has no tensors vector (the interpreter "
                        "refuses it)", sg.pos)
            nt = 0
        else:
            nt = len(tvec)
        # SetInputs/SetOutputs: CheckTensorIndices allows -1.  The builder ignores their
        # failure, but the model cannot be allocated: refused here (stricter).
        self._indices(sg.ints(_SG_INPUTS, "i32", "inputs") or (), nt, f"{sw}.inputs", sg.pos,
                      "subgraph input", "warn")
        self._indices(sg.ints(_SG_OUTPUTS, "i32", "outputs") or (), nt, f"{sw}.outputs", sg.pos,
                      "subgraph output", "warn")
        for ti in range(nt):
            self.tensor(si, ti, tvec[ti], tvec, nt)
        ovec = sg.tables(_SG_OPERATORS, "operators")
        for oi in range(0 if ovec is None else len(ovec)):
            self.operator(si, oi, ovec[oi], codes, nt)

    def tensor(self, si: int, ti: int, t: Table, tvec, nt: int) -> None:
        name = t.string(_T_NAME, "name") or ""
        where = f"Model.subgraphs[{si}].tensors[{ti}]"
        label = f"tensor {name!r}" if name else "tensor"
        code = t.scalar(_T_TYPE, "i8", 0, "type")
        info = TYPES.get(code)
        if info is None:
            self.report("tensor-type-unknown",
                        f"{where}.type", f"{label} has tensor type {code}, unknown to the schema "
                        f"(the interpreter refuses it)", t.pos)
        shape = t.ints(_T_SHAPE, "i32", "shape") or ()
        overflows = info is not None and info.name not in _NO_SIZE_CHECK and \
            _bytes_overflow(shape, info)
        if overflows:
            self.report("tensor-shape-overflow",
                        f"{where}.shape", f"{label}: the {info.name} shape {_shape_text(shape)} "
                        f"has a negative dimension or needs 2**64 bytes or more (the "
                        f"interpreter refuses it: BytesRequired overflows)", t.pos)
        bidx = t.scalar(_T_BUFFER, "u32", 0, "buffer")
        start, size, loc = None, 0, None
        if bidx != 0:
            if bidx >= self.nbuf:
                self.report("tensor-buffer-out-of-range",
                            f"{where}.buffer", f"{label} uses buffer {bidx}, but the model has "
                            f"{self.nbuf} buffers", t.pos)
            else:
                start, size, loc = self.buffer(bidx)
        has_data = loc in ("inline", "offset")
        if has_data:
            if t.scalar(_T_VARIABLE, "bool", 0, "is_variable"):
                self.report("variable-tensor-with-buffer",
                            where, f"{label} is a variable tensor with a buffer (buffer {bidx}), "
                            f"which the interpreter refuses", t.pos)
            if t.scalar(_T_EXTERNAL, "u32", 0, "external_buffer"):
                self.report("tensor-buffer-and-external-buffer",
                            where, f"{label} has both a buffer and an external buffer, which the "
                            f"interpreter refuses", t.pos)
        sparse = t.table(_T_SPARSITY, "sparsity")
        if has_data and sparse is not None:
            self.sparsity(where, label, sparse)
        if has_data and info is not None and sparse is None and not overflows:
            self.data_size(where, label, info, shape, start, size, bidx, t.pos)
        q = t.table(_T_QUANT, "quantization")
        if q is not None:
            self.quantization(f"{where}.quantization", label, q, shape, nt)

    def data_size(self, where, label, info, shape, start, size, bidx, pos) -> None:
        if any(d < 0 for d in shape):
            self.report("constant-negative-dimension",
                        f"{where}.shape", f"constant {label} has a negative dimension in its "
                        f"shape {list(shape)}", pos)
            return
        count = math.prod(shape)
        if info.name == "STRING":
            self.strings(where, label, shape, count, start, size)
            return
        if info.name in _NO_SIZE_CHECK:
            return
        need = -(-count * info.bits // 8)
        if need > size:
            self.report("constant-data-too-short",
                        where, f"{label}: {info.name} shape {list(shape)} needs {need} bytes, "
                        f"buffer {bidx} holds {size} (the interpreter refuses it)", start)
        elif need < size:
            self.report("constant-data-too-long",
                        where, f"{label}: {info.name} shape {list(shape)} needs {need} bytes, "
                        f"buffer {bidx} holds {size}; the rest is ignored", start)

    def strings(self, where, label, shape, count, start, size) -> None:
        # Stricter than the interpreter, which reads the layout only when the tensor
        # is used: int32 n, int32 offsets[n + 1] from the buffer's start, then bytes.
        raw = self.fb.array(start, np.uint8, size, where) if size else np.zeros(0, np.uint8)
        if size < 4:
            self.report("string-buffer-too-short",
                        where, f"string {label}: a string buffer needs at least 4 bytes, it has "
                        f"{size}{_STRICT_STRINGS}", start)
            return
        n = int(raw[:4].view("<i4")[0])
        header = 4 * (n + 2)
        if n < 0 or header > size:
            self.report("string-header-outside-buffer",
                        where, f"string {label}: {n} strings need a {max(header, 4)}-byte "
                        f"header, the buffer has {size} bytes{_STRICT_STRINGS}", start)
            return
        if n != count:
            self.report("string-count-mismatch",
                        where, f"string {label}: the buffer holds {n} strings, the shape "
                        f"{list(shape)} needs {count}{_STRICT_STRINGS}", start)
        offs = raw[4:header].view("<i4")
        if offs[0] < header or offs[-1] > size or np.any(np.diff(offs) < 0):
            self.report("string-offsets-not-rising",
                        where, f"string {label}: string offsets must rise from {header} to at "
                        f"most {size}{_STRICT_STRINGS}", start)

    def quantization(self, where, label, q: Table, shape, nt: int) -> None:
        code = q.scalar(_Q_DETAILS - 1, "u8", 0, "details_type")
        rank = len(shape)
        if code in (2, 3):  # BlockwiseQuantization, MultiAxisQuantization
            blockwise = code == 2
            name = "BlockwiseQuantization" if blockwise else "MultiAxisQuantization"
            d = q.table(_Q_DETAILS, "details")
            if d is None:
                self.report("quantization-details-missing",
                            where, f"{label}: {name} without its details table"
                            + (" (the interpreter refuses it)" if blockwise else ""), q.pos)
                return
            # the two tables share their first three fields: scales, zero_points,
            # block_size.  The runtime checks the multi-axis indices itself; for
            # blockwise ones the check is ours (the kernels would read past the tensors).
            kind = "blockwise" if blockwise else "multi-axis"
            scales = d.scalar(_BW_SCALES, "i32", 0, "scales")
            zps = d.scalar(_BW_ZPS, "i32", 0, "zero_points")
            if not 0 <= scales < nt:
                self.report("quantization-scales-tensor-out-of-range",
                            where, f"{label}: {kind} scales name tensor {scales}, out of range "
                            f"({nt} tensors)" + (" (stricter: the kernels would read past "
                                                 "the tensors)" if blockwise else ""), d.pos)
            if zps != -1 and not 0 <= zps < nt:
                self.report("quantization-zero-points-tensor-out-of-range",
                            where, f"{label}: {kind} zero_points name tensor {zps}, neither -1 "
                            f"nor in range ({nt} tensors)" + (" (stricter)" if blockwise else ""),
                            d.pos)
            if d.scalar(_BW_BLOCK, "i32", 0, "block_size") < 0:
                self.report("quantization-block-size-negative",
                            where, f"{label}: negative block_size", d.pos)
            if not blockwise:
                dims = d.ints(_MA_DIMS, "i32", "quantized_dimensions") or ()
                if not dims or any(not 0 <= x < rank for x in dims):
                    self.report("quantization-dimensions-invalid",
                                where, f"{label}: quantized_dimensions {list(dims)} must be "
                                f"non-empty and each in [0, {rank})", d.pos)
            return
        scale = q.array(_Q_SCALE, "f32", "scale")
        if scale.size == 0:
            return
        if not q.has(_Q_ZP):
            self.report("quantization-zero-point-missing",
                        where, f"{label} has {scale.size} scales but no zero_point (the "
                        f"interpreter refuses it)", q.pos)
            return
        zp = q.array(_Q_ZP, "i64", "zero_point")
        n = scale.size
        if zp.size == 1 and n > 1:
            # TFLite Micro's allocator takes one zero point for every channel (a
            # space saving it documents); the meaning is unambiguous
            self.report("quantization-one-zero-point",
                        where, f"{label} has {n} scales and one zero point; the interpreter "
                        f"refuses this, TFLite Micro applies the zero point to every channel",
                        q.pos)
        elif zp.size != n:
            self.report("quantization-zero-point-count",
                        where, f"{label} has {n} scales and {zp.size} zero points; the "
                        f"interpreter requires as many of each", q.pos)
            return
        axis = q.scalar(_Q_DIM, "i32", 0, "quantized_dimension")
        if axis < 0:
            self.report("quantization-dimension-negative",
                        where, f"{label}: quantized_dimension {axis} is negative", q.pos)
            return
        if rank and axis >= rank:
            if rank == 1 and n in (1, shape[0]):
                # e.g. TFLite Micro's person_detect: per-channel bias scales on a rank-1
                # tensor with quantized_dimension 3.  The interpreter refuses it; TFLite
                # Micro's kernels read the scales without looking at the axis, and the
                # parameters can be applied in one way only (along the only axis).
                self.report("quantization-dimension-rank-1",
                            where, f"{label} of shape {list(shape)} has quantized_dimension "
                            f"{axis}, outside [0, {rank}); the interpreter refuses this, TFLite "
                            f"Micro ignores it, and the {n} scale(s) can only apply along "
                            f"axis 0", q.pos)
            else:
                self.report("quantization-dimension-out-of-range",
                            where, f"{label} of shape {list(shape)} has quantized_dimension "
                            f"{axis}, outside [0, {rank}) (the interpreter refuses it)", q.pos)
                return
        elif n != 1 and rank and n != shape[axis]:
            self.report("quantization-scale-count",
                        where, f"{label} of shape {list(shape)} has {n} scales; dimension {axis} "
                        f"has {shape[axis]} entries (the interpreter refuses it)", q.pos)
            return
        finite = np.isfinite(scale)
        if not finite.all() or np.any(scale < 0):
            rule, bad = (("quantization-scale-not-finite", scale[~finite]) if not finite.all()
                         else ("quantization-scale-negative", scale[scale < 0]))
            self.report(rule, where, f"{label} has a scale that is negative or not finite "
                        f"({float(bad[0])!r}) (stricter than the interpreter, whose kernels "
                        f"abort on it)", q.pos)
        elif np.any(scale == 0):
            self.report("quantization-scale-zero",
                        where, f"{label} has a zero scale: every value dequantizes to 0",
                        q.pos)
        if zp.size and (zp.min() < -(1 << 31) or zp.max() >= 1 << 31):
            self.report("quantization-zero-point-beyond-int32",
                        where, f"{label} has zero points outside the int32 range, which the "
                        f"runtime truncates", q.pos)

    def sparsity(self, where, label, sp: Table) -> None:
        w = f"{where}.sparsity"
        if not sp.has(_SP_TRAVERSAL) or not sp.has(_SP_DIMS):
            self.report("sparsity-incomplete",
                        w, f"{label}: sparsity needs both traversal_order and dim_metadata (the "
                        f"interpreter refuses it)", sp.pos)
            return
        dims = sp.tables(_SP_DIMS, "dim_metadata")
        for i in range(len(dims)):
            d = dims[i]
            fmt = d.scalar(_DM_FORMAT, "i8", 0, "format")
            if fmt not in (0, 1):
                self.report("sparsity-format-unknown",
                            f"{w}.dim_metadata[{i}]", f"{label}: unknown dimension format {fmt}",
                            d.pos)
            elif fmt == 1:
                for slot, fname in ((_DM_SEGMENTS, "array_segments"),
                                    (_DM_INDICES, "array_indices")):
                    kind = d.scalar(slot - 1, "u8", 0, fname + "_type")
                    if kind not in (1, 2, 3) or d.table(slot, fname) is None:
                        self.report("sparsity-csr-vector-missing", f"{w}.dim_metadata[{i}].{fname}",
                                    f"{label}: a SPARSE_CSR dimension needs {fname} (the "
                                    f"interpreter refuses it)", d.pos)

    def operator(self, si: int, oi: int, op: Table, codes: list, nt: int) -> None:
        where = f"Model.subgraphs[{si}].operators[{oi}]"
        idx = op.scalar(_OP_OPCODE, "u32", 0, "opcode_index")
        code = None
        if idx >= len(codes):
            self.report("opcode-index-out-of-range",
                        f"{where}.opcode_index", f"opcode_index {idx} is out of range: the model "
                        f"has {len(codes)} operator codes (the interpreter refuses it)", op.pos)
        else:
            code = codes[idx]
        self._indices(op.ints(_OP_INPUTS, "i32", "inputs") or (), nt, f"{where}.inputs", op.pos,
                      "input tensor", "allow")
        self._indices(op.ints(_OP_OUTPUTS, "i32", "outputs") or (), nt, f"{where}.outputs",
                      op.pos, "output tensor", "warn")
        self._indices(op.ints(_OP_INTERMEDIATES, "i32", "intermediates") or (), nt,
                      f"{where}.intermediates", op.pos, "intermediate tensor", "allow")
        if code is not None and code != _CUSTOM and op.has(_OP_CUSTOM):
            self.report("builtin-operator-custom-options",
                        where, "a builtin operator carries custom options (the runtime reports "
                        "and ignores them)", op.pos)
        if code == _CUSTOM and not op.has(_OP_CUSTOM):
            off = op.scalar(_OP_LARGE_OFFSET, "u64", 0, "large_custom_options_offset")
            size = op.scalar(_OP_LARGE_SIZE, "u64", 0, "large_custom_options_size")
            if off > 1 and off + size > self.file_size:
                self.report("large-custom-options-beyond-file",
                            where, f"large custom options at offset {off} + size {size} lie "
                            f"beyond the end of the file ({self.file_size} bytes)", op.pos)
        for slot, members in ((_OP_OPTIONS, _schema.UNIONS["BuiltinOptions"]),
                              (_OP_OPTIONS_2, _schema.UNIONS["BuiltinOptions2"])):
            ucode = op.scalar(slot - 1, "u8", 0, "options_type")
            if not ucode or ucode > len(members):
                continue
            fields = _SUBGRAPH_FIELDS.get(members[ucode - 1])
            opts = op.table(slot, "options") if fields else None
            if opts is None:
                continue
            for f in fields:
                if f.kind == "vector":
                    values = opts.ints(f.slot, f.elem, f.name) or ()
                elif opts.has(f.slot):
                    values = (opts.scalar(f.slot, f.elem, 0, f.name),)
                else:
                    values = (f.default or 0,)
                for v in values:
                    if not 0 <= v < self.nsub:
                        self.report("options-subgraph-out-of-range",
                                    f"{where}.{members[ucode - 1]}.{f.name}",
                                    f"names subgraph {v}, but the model has {self.nsub} "
                                    f"subgraphs (stricter: the kernel fails when prepared)",
                                    opts.pos)

    def signatures(self, root, sgs) -> None:
        vec = root.tables(_M["signature_defs"], "signature_defs")
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            where = f"Model.signature_defs[{i}]"
            if not t.has(_SD_KEY):
                self.report("signature-key-missing",
                            where, "a SignatureDef has no signature_key (the interpreter refuses "
                            "it)", t.pos)
            si = t.scalar(_SD_SUBGRAPH, "u32", 0, "subgraph_index")
            if si >= len(sgs):
                self.report("signature-subgraph-out-of-range",
                            where, f"subgraph_index {si} is out of range: the model has "
                            f"{len(sgs)} subgraphs (stricter: the runtime fails when the "
                            f"signature is used)", t.pos)
                continue
            tv = sgs[si].tables(_SG_TENSORS, "tensors")
            nt = 0 if tv is None else len(tv)
            for slot, fname in ((_SD_INPUTS, "inputs"), (_SD_OUTPUTS, "outputs")):
                maps = t.tables(slot, fname)
                for j in range(0 if maps is None else len(maps)):
                    m = maps[j]
                    ti = m.scalar(_TM_INDEX, "u32", 0, "tensor_index")
                    if ti >= nt:
                        self.report("signature-tensor-out-of-range", f"{where}.{fname}[{j}]",
                                    f"{(m.string(_TM_NAME, 'name') or '')!r} names tensor {ti}, "
                                    f"but subgraph {si} has {nt} tensors (stricter: the runtime "
                                    f"fails when the signature is used)", m.pos)

    def metadata(self, root) -> None:
        vec = root.tables(_M["metadata"], "metadata")
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            where = f"Model.metadata[{i}]"
            name = t.string(_MD_NAME, "name")
            b = t.scalar(_MD_BUFFER, "u32", 0, "buffer")
            if name is None:
                self.report("metadata-name-missing",
                            where, "a metadata entry has no name (the runtime skips it)", t.pos)
            if b >= self.nbuf:
                self.report("metadata-buffer-out-of-range",
                            where, f"metadata {name!r} names buffer {b}, but the model has "
                            f"{self.nbuf} buffers (the runtime skips it)", t.pos)
                continue
            start, size, loc = self.buffer(b)
            if name == "min_runtime_version" and loc == "inline" and size:
                raw = self.fb.bytes_at(start, size, where)
                if b"\0" not in raw:
                    self.report("min-runtime-version-not-terminated",
                                where, "min_runtime_version is not NUL-terminated (the runtime "
                                "reports it as malformed)", start)
            if name == "CONVERSION_METADATA" and loc == "inline" and size:
                nested = FlatBuffer(self.fb.data, self.fb.base + start, size,
                                    label="CONVERSION_METADATA")
                _Structure(nested, min(size, MAX_BUFFER_SIZE - 1), self.defects,
                           "conversion-metadata-structure", "ConversionMetadata").walk(None)


# -- entry point ----------------------------------------------------------------------------


def verify(source) -> "list[Defect]":
    """Check a model completely; return every defect found (an empty list: sound).

    ``source`` is a path, bytes-like data or an open :class:`~tflite_weights.Model`.
    Never raises for a damaged file (every problem becomes a :class:`Defect`);
    raises ``OSError`` when a path cannot be read.  Use :func:`errors_of` to keep
    the defects that make the model unusable (warnings are left out).
    """
    from .model import Model

    mapping = None
    if isinstance(source, Model):
        data = source._fb.data
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return [_defect("file-empty", "file",
                                f"{os.path.basename(path)} is empty (0 bytes)")]
            mapping = data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    else:
        data = memoryview(source)
        if data.ndim != 1 or data.itemsize != 1:
            data = data.cast("B")
    try:
        return _verify(data)
    finally:
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:  # pragma: no cover - no views escape
                pass


def _verify(data) -> "list[Defect]":
    defects: list[Defect] = []
    fb = FlatBuffer(data)
    window = min(fb.size, MAX_BUFFER_SIZE - 1)
    walker = _Structure(FlatBuffer(data, 0, window), window, defects)
    if not walker.walk(IDENTIFIER) or errors_of(defects):
        return defects
    try:
        _Rules(fb, fb.size, defects).run()
    except _Stop:
        pass
    except TFLiteWeightsError as e:  # the structure check should have caught it
        defects.append(_defect("model-unreadable", "Model", f"unreadable: {e}"))
    return defects
