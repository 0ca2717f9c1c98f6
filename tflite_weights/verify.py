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
import os
from dataclasses import dataclass

import numpy as np

from .errors import InvalidModelError, TFLiteWeightsError
from .format import records, schema as _schema
from .format.flatbuffer import SCALARS, FlatBuffer, Table
from .format.source import open_source
from .format.schema import FILE_IDENTIFIER as IDENTIFIER, SCHEMA_VERSION
from .format.types import FIXED, PACKED, STRING, TYPES, shape_text as _shape_text
from .numerics.quantization import affine_findings
from .numerics.values import string_findings

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
    "quantization-per-channel-scalar": (_W, "a scalar tensor with several scales (the runtime "
                                            "accepts it; they cannot apply to one value)"),
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
        # a table or vector reached again (shared by many references) is not walked
        # again: (position, schema entry) -> (tables under it, levels of tables)
        self._seen: "dict[tuple, tuple[int, int]]" = {}

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
    def _again(self, key, where: str, pos: int, depth: int) -> "int | None":
        """For a table or vector walked before: count its tables again (as the C++
        verifier, which walks it again, would) and check the nesting it reaches from
        here; return its height (None: not seen)."""
        seen = self._seen.get(key)
        if seen is None:
            return None
        count, height = seen
        self.tables += count
        if self.tables > MAX_TABLES:
            self.defect("too-many-tables",
                        where, f"the flatbuffer holds more than {MAX_TABLES} tables", pos)
            raise _Stop
        if depth + height > MAX_DEPTH:
            self.defect("table-nesting-too-deep",
                        where, f"tables are nested more than {MAX_DEPTH} deep", pos)
        return height

    def table(self, pos: int, tdef, where: str, depth: int) -> int:
        """Verify the table at ``pos``; returns the levels of tables it holds (0 when
        it could not be walked)."""
        key = (pos, tdef.name)
        height = self._again(key, where, pos, depth)
        if height is not None:
            return height
        before = self.tables
        height = self._table(pos, tdef, where, depth)
        self._seen[key] = (self.tables - before, height)
        return height

    def _table(self, pos: int, tdef, where: str, depth: int) -> int:
        # Verifier::VerifyTableStart
        if not (self.aligned(pos, 4, where, "table", "table-misaligned")
                and self.range_check(pos, 4, where, "table", "table-outside")):
            return 0
        self.tables += 1
        depth += 1
        if depth > MAX_DEPTH:
            self.defect("table-nesting-too-deep",
                        where, f"tables are nested more than {MAX_DEPTH} deep", pos)
            return 1
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
            return 1
        if not self.aligned(vt, 2, where, "vtable", "vtable-misaligned"):
            return 1
        vsize = self.u16(vt)
        if vsize & 1:
            self.defect("vtable-odd-size",
                        where, f"vtable at byte {vt} declares an odd size {vsize}", vt)
            return 1
        if not self.range_check(vt, vsize, where, "vtable", "vtable-outside"):
            return 1
        # stricter: room for the table size, and the table inside the buffer
        if vsize < 4:
            self.defect("vtable-too-small",
                        where, f"vtable at byte {vt} declares {vsize} bytes, too few to hold "
                        f"the table size (stricter than the verifier)", vt)
            return 1
        tsize = self.u16(vt + 2)
        if tsize < 4 or not self.in_range(pos, tsize):
            self.defect("table-size-invalid",
                        where, f"table declares {tsize} bytes, which is less than 4 or does not "
                        f"fit in the flatbuffer ({self.size} bytes) (stricter than the "
                        f"verifier)", pos)
            return 1
        nslots = (vsize - 4) // 2
        # every field offset of the vtable in one read (the range is checked above)
        slots = self.fb.array(vt + 4, "<u2", nslots, where).tolist() if nslots else []
        below = 0
        for f in tdef.fields:
            below = max(below, self.field(pos, slots, tsize, f, where, depth))
        return 1 + below

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

    def field(self, pos, slots, tsize, f, twhere, depth) -> int:
        """Verify one field; returns the levels of tables under it."""
        where = f"{twhere}.{f.name}"
        if f.kind == "scalar":
            fpos = self._field_pos(pos, slots, tsize, f.slot, SCALARS[f.elem][1], where)
            if fpos is not None:
                self.scalar_field(fpos, f.elem, where)
            return 0
        code = 0
        if f.kind == "union":
            tpos = self._field_pos(pos, slots, tsize, f.slot - 1, 1, where + "_type")
            if tpos is not None and self.scalar_field(tpos, "u8", where + "_type"):
                code = self.fb.scalar(tpos, "u8", where)
        fpos = self._field_pos(pos, slots, tsize, f.slot, 4, where)
        if fpos is None:
            return 0
        target = self.offset(fpos, where)
        if target is None:
            return 0
        kind = f.kind
        if kind == "string":
            self.string(target, where)
        elif kind == "vector":
            self.vector(target, SCALARS[f.elem][1], where)
        elif kind == "table":
            return self.table(target, _schema.TABLES[f.elem], where, depth)
        elif kind in ("vector_table", "vector_string"):
            key = (target, kind, f.elem)
            height = self._again(key, where, target, depth)
            if height is not None:
                return height
            before = self.tables
            height = self._elements(target, kind, f.elem, where, depth)
            self._seen[key] = (self.tables - before, height)
            return height
        elif kind == "union":
            if code == 0:
                return 0
            members = _schema.UNIONS[f.elem]
            if code > len(members):
                self.defect("union-type-unknown", where, f"union type {code} is unknown to the "
                            f"schema ({f.elem} has {len(members)} members); the runtime skips "
                            f"it", fpos)
                return 0
            member = members[code - 1]
            return self.table(target, _schema.TABLES[member], f"{where}<{member}>", depth)
        return 0

    def _elements(self, target: int, kind: str, elem: str, where: str, depth: int) -> int:
        v = self.vector(target, 4, where)
        if v is None:
            return 0
        start, n = v
        tdef = _schema.TABLES[elem] if kind == "vector_table" else None
        height = 0
        for i in range(n):
            ew = f"{where}[{i}]"
            t = self.element_target(start + 4 * i, ew)
            if t is None:
                continue
            if tdef is None:
                self.string(t, ew)
            else:
                height = max(height, self.table(t, tdef, ew, depth))
        return height

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


_STRICT_STRINGS = " (stricter: the runtime reads a string buffer only when the tensor is used)"


def _subgraph_fields(tdef) -> "list":
    """Fields of an options table that name other subgraphs (IF, WHILE, CALL_ONCE, ...)."""
    return [f for f in tdef.fields
            if f.name.endswith("subgraph_index") or f.name.endswith("subgraph_indices")
            or f.name in ("subgraph", "called_computations")]


_SUBGRAPH_FIELDS = {name: _subgraph_fields(t) for name, t in _schema.TABLES.items()
                    if name.endswith("Options")}
_NUM_BUILTINS = len(_schema.BUILTIN_OPERATORS)


class _Rules:
    """The model rules, over the records of :mod:`tflite_weights.format.records` (the
    reader's own decoders).  A table referenced many times is checked once, and so
    is a vector of tensor indices shared by many operators: the cost follows the
    bytes of the file, not the number of references."""

    def __init__(self, fb: FlatBuffer, file_size: int, defects: list):
        self.fb = fb
        self.file_size = file_size
        self.defects = defects
        self.start = len(defects)
        self._checked: set = set()
        self._overflow: dict = {}

    def report(self, rule, where, what, offset=None):
        _add(self.defects, _defect(rule, where, what, offset), self.start)

    def overflows(self, shape, info) -> bool:
        """:func:`_bytes_overflow`, once per shape vector (long shapes shared by many
        tensors are one tuple: see ``Table.ints``)."""
        if len(shape) < 16:
            return _bytes_overflow(shape, info)
        key = (id(shape), info.bits)
        got = self._overflow.get(key)
        if got is None:
            got = self._overflow[key] = (_bytes_overflow(shape, info), shape)
        return got[0]

    def once(self, *key) -> bool:
        """True the first time ``key`` is seen (a shared table or vector is checked once)."""
        if key in self._checked:
            return False
        self._checked.add(key)
        return True

    def run(self) -> None:
        root = self.fb.root(IDENTIFIER)
        version = records.model_version(root)
        if version != SCHEMA_VERSION:
            self.report("schema-version",
                        "Model.version", f"schema version is {version}; the runtime accepts only "
                        f"{SCHEMA_VERSION}", records.model_version_pos(root))
        codes = self.operator_codes(root)
        buffers = records.vector(root, "buffers")
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
        sgs = records.vector(root, "subgraphs")
        if sgs is None or len(sgs) == 0:
            self.report("subgraphs-missing",
                        "Model.subgraphs", "the model has no subgraph (the interpreter refuses "
                        "it)", root.pos)
            sgs = ()
        self.nsub = len(sgs)
        self.subgraph_tensors: "list[int]" = []
        subgraphs = []
        for i in range(len(sgs)):
            rec = records.decode_subgraph(sgs[i], i)
            tensors = records.subgraph_vector(rec.table, "tensors")
            subgraphs.append((sgs[i], rec, tensors))
            self.subgraph_tensors.append(0 if tensors is None else len(tensors))
        for table, rec, tensors in subgraphs:
            self.subgraph(rec, table, tensors, codes)
        self.signatures(root)
        self.metadata(root)

    # -- pieces --------------------------------------------------------------------------
    def buffer(self, index: int) -> "tuple[int | None, int, str | None]":
        """``(file offset or None, size, location)`` of buffer ``index`` (checked); the
        location is the reader's rule (:func:`records.buffer_location`), "bad" for an
        offset buffer outside the file."""
        got = self._buffer_cache.get(index)
        if got is not None:
            return got
        t = self.buffers[index]
        loc, start, length, problem = records.buffer_location(*records.read_buffer(t),
                                                              self.file_size)
        if problem is not None:
            self.report("buffer-offset-beyond-file", f"Model.buffers[{index}]", problem, t.pos)
            got = (None, 0, "bad")
        else:
            got = (start if loc is not None else None, length, loc)
        self._buffer_cache[index] = got
        return got

    def operator_codes(self, root) -> list:
        vec = records.vector(root, "operator_codes")
        out = []
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            rec = records.decode_operator_code(t, i)
            where = f"Model.operator_codes[{i}]"
            code = rec.code
            if code < 0:
                self.report("builtin-code-negative",
                            where, f"builtin code {code} is negative", t.pos)
            elif code >= _NUM_BUILTINS:
                self.report("builtin-code-unknown",
                            where, f"builtin code {code} is newer than this reader's schema "
                            f"(known: 0-{_NUM_BUILTINS - 1}); older runtimes "
                            f"refuse it", t.pos)
            if code == records.CUSTOM_CODE and not rec.has_custom_code:
                self.report("custom-code-missing",
                            where, "a CUSTOM operator code has no custom_code (the interpreter "
                            "refuses it)", t.pos)
            builtin, dep = rec.builtin_code, rec.deprecated_builtin_code
            if 0 <= builtin and rec.has_deprecated_builtin_code and rec.has_builtin_code and \
                    dep != min(builtin, records.PLACEHOLDER_CODE):
                self.report("deprecated-builtin-code-mismatch",
                            where, f"deprecated_builtin_code {dep} does not match builtin_code "
                            f"{builtin} (readers of older schemas see another operator)", t.pos)
            if rec.version < 1:
                self.report("operator-version-below-1",
                            where, f"operator version {rec.version} is below 1", t.pos)
            out.append(code)
        return out

    def _indices(self, values, n: int, where: str, pos: int, what: str, optional: str) -> None:
        """``optional``: "allow" (-1 means omitted), "warn" (-1 accepted by the runtime but
        meaningless here).  A vector shared by many tables is checked once."""
        if not values or not self.once("indices", id(values), n, optional):
            return
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

    def subgraph(self, rec: records.SubgraphRecord, sg: Table, tvec, codes: list) -> None:
        si = rec.index
        sw = f"Model.subgraphs[{si}]"
        if tvec is None:
            self.report("tensors-missing",
                        f"{sw}.tensors", "the subgraph has no tensors vector (the interpreter "
                        "refuses it)", sg.pos)
            nt = 0
        else:
            nt = len(tvec)
        # SetInputs/SetOutputs: CheckTensorIndices allows -1.  The builder ignores their
        # failure, but the model cannot be allocated: refused here (stricter).
        self._indices(rec.inputs, nt, f"{sw}.inputs", sg.pos, "subgraph input", "warn")
        self._indices(rec.outputs, nt, f"{sw}.outputs", sg.pos, "subgraph output", "warn")
        for ti in range(nt):
            t = tvec[ti]
            if self.once("tensor", t.pos, nt):
                self.tensor(si, ti, t, nt)
        ovec = records.subgraph_vector(sg, "operators")
        for oi in range(0 if ovec is None else len(ovec)):
            op = ovec[oi]
            if self.once("operator", op.pos, nt):
                self.operator(si, oi, op, codes, nt)

    def tensor(self, si: int, ti: int, t: Table, nt: int) -> None:
        rec = records.decode_tensor(t)
        name = rec.name
        where = f"Model.subgraphs[{si}].tensors[{ti}]"
        label = f"tensor {name!r}" if name else "tensor"
        code = rec.type_code
        info = TYPES.get(code)
        if info is None:
            self.report("tensor-type-unknown",
                        f"{where}.type", f"{label} has tensor type {code}, unknown to the schema "
                        f"(the interpreter refuses it)", t.pos)
        shape = rec.shape
        overflows = info is not None and info.layout in (FIXED, PACKED) and \
            self.overflows(shape, info)
        if overflows:
            self.report("tensor-shape-overflow",
                        f"{where}.shape", f"{label}: the {info.name} shape {_shape_text(shape)} "
                        f"has a negative dimension or needs 2**64 bytes or more (the "
                        f"interpreter refuses it: BytesRequired overflows)", t.pos)
        bidx = rec.buffer
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
            if records.tensor_is_variable(rec):
                self.report("variable-tensor-with-buffer",
                            where, f"{label} is a variable tensor with a buffer (buffer {bidx}), "
                            f"which the interpreter refuses", t.pos)
            if rec.external_buffer:
                self.report("tensor-buffer-and-external-buffer",
                            where, f"{label} has both a buffer and an external buffer, which the "
                            f"interpreter refuses", t.pos)
        sparse = records.tensor_sparsity(rec)
        if has_data and sparse is not None:
            self.sparsity(where, label, sparse)
        if has_data and info is not None and sparse is None and not overflows:
            self.data_size(where, label, info, shape, start, size, bidx, t.pos)
        q = records.tensor_quantization(rec)
        if q is not None:
            self.quantization(f"{where}.quantization", label, q, shape, nt)

    def data_size(self, where, label, info, shape, start, size, bidx, pos) -> None:
        if any(d < 0 for d in shape):
            self.report("constant-negative-dimension",
                        f"{where}.shape", f"constant {label} has a negative dimension in its "
                        f"shape {list(shape)}", pos)
            return
        count = math.prod(shape)
        if info.layout == STRING:
            raw = self.fb.array(start, np.uint8, size, where) if size else np.zeros(0, np.uint8)
            # stricter than the interpreter, which reads the layout only when used
            for rule, text in string_findings(raw, count, shape):
                self.report(rule, where, f"string {label}: {text}{_STRICT_STRINGS}", start)
            return
        if info.layout not in (FIXED, PACKED):
            return
        need = info.stored_bytes(count)
        if need > size:
            self.report("constant-data-too-short",
                        where, f"{label}: {info.name} shape {list(shape)} needs {need} bytes, "
                        f"buffer {bidx} holds {size} (the interpreter refuses it)", start)
        elif need < size:
            self.report("constant-data-too-long",
                        where, f"{label}: {info.name} shape {list(shape)} needs {need} bytes, "
                        f"buffer {bidx} holds {size}; the rest is ignored", start)

    def quantization(self, where, label, q: Table, shape, nt: int) -> None:
        rec = records.decode_quantization(q)
        if rec is None:
            return
        rank = len(shape)
        if rec.details_type in (records.BLOCKWISE, records.MULTI_AXIS):
            blockwise = rec.details_type == records.BLOCKWISE
            d = rec.details
            if d is None:
                self.report("quantization-details-missing",
                            where, f"{label}: {rec.details_type} without its details table"
                            + (" (the interpreter refuses it)" if blockwise else ""), q.pos)
                return
            # The runtime checks the multi-axis indices itself; for blockwise ones the
            # check is ours (the kernels would read past the tensors).
            dpos = records.quantization_details_pos(q)
            kind = "blockwise" if blockwise else "multi-axis"
            if not 0 <= d.scales < nt:
                self.report("quantization-scales-tensor-out-of-range",
                            where, f"{label}: {kind} scales name tensor {d.scales}, out of range "
                            f"({nt} tensors)" + (" (stricter: the kernels would read past "
                                                 "the tensors)" if blockwise else ""), dpos)
            if d.zero_points != -1 and not 0 <= d.zero_points < nt:
                self.report("quantization-zero-points-tensor-out-of-range",
                            where, f"{label}: {kind} zero_points name tensor {d.zero_points}, "
                            f"neither -1 nor in range ({nt} tensors)"
                            + (" (stricter)" if blockwise else ""), dpos)
            if d.block_size < 0:
                self.report("quantization-block-size-negative",
                            where, f"{label}: negative block_size", dpos)
            if not blockwise:
                dims = d.quantized_dimensions
                if not dims or any(not 0 <= x < rank for x in dims):
                    self.report("quantization-dimensions-invalid",
                                where, f"{label}: quantized_dimensions {list(dims)} must be "
                                f"non-empty and each in [0, {rank})", dpos)
            return
        for f in affine_findings(shape, rec.scale, rec.zero_point, rec.quantized_dimension,
                                 records.quantization_has_zero_point(q)):
            self.report(f.rule, where, f"{label}{f.text}", q.pos)

    def sparsity(self, where, label, sp: Table) -> None:
        w = f"{where}.sparsity"
        has_traversal, has_dims, dims = records.sparsity_levels(sp)
        if not has_traversal or not has_dims:
            self.report("sparsity-incomplete",
                        w, f"{label}: sparsity needs both traversal_order and dim_metadata (the "
                        f"interpreter refuses it)", sp.pos)
            return
        for i in range(len(dims)):
            d = dims[i]
            problems = records.dimension_problems(d)
            for field, problem in problems:
                if field == "format":
                    self.report("sparsity-format-unknown", f"{w}.dim_metadata[{i}]",
                                f"{label}: {problem}", d.pos)
                else:
                    self.report("sparsity-csr-vector-missing", f"{w}.dim_metadata[{i}].{field}",
                                f"{label}: {problem} (the interpreter refuses it)", d.pos)

    def operator(self, si: int, oi: int, op: Table, codes: list, nt: int) -> None:
        where = f"Model.subgraphs[{si}].operators[{oi}]"
        rec = records.decode_operator(op, oi)
        idx = rec.opcode_index
        code = None
        if idx >= len(codes):
            self.report("opcode-index-out-of-range",
                        f"{where}.opcode_index", f"opcode_index {idx} is out of range: the model "
                        f"has {len(codes)} operator codes (the interpreter refuses it)", op.pos)
        else:
            code = codes[idx]
        self._indices(rec.inputs, nt, f"{where}.inputs", op.pos, "input tensor", "allow")
        self._indices(rec.outputs, nt, f"{where}.outputs", op.pos, "output tensor", "warn")
        self._indices(rec.intermediates, nt, f"{where}.intermediates", op.pos,
                      "intermediate tensor", "allow")
        if code is not None and code != records.CUSTOM_CODE and rec.custom_options is not None:
            self.report("builtin-operator-custom-options",
                        where, "a builtin operator carries custom options (the runtime reports "
                        "and ignores them)", op.pos)
        if code == records.CUSTOM_CODE and rec.custom_options is None:
            off, size = rec.large_custom_options
            if off > 1 and off + size > self.file_size:
                self.report("large-custom-options-beyond-file",
                            where, f"large custom options at offset {off} + size {size} lie "
                            f"beyond the end of the file ({self.file_size} bytes)", op.pos)
        member = records.options_member(rec)
        fields = _SUBGRAPH_FIELDS.get(member) if member else None
        opts = rec.options if fields else None
        if opts is None:
            return
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
                                f"{where}.{member}.{f.name}",
                                f"names subgraph {v}, but the model has {self.nsub} "
                                f"subgraphs (stricter: the kernel fails when prepared)",
                                opts.pos)

    def signatures(self, root) -> None:
        vec = records.vector(root, "signature_defs")
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            rec = records.decode_signature(t, i)
            where = f"Model.signature_defs[{i}]"
            if rec.key is None:
                self.report("signature-key-missing",
                            where, "a SignatureDef has no signature_key (the interpreter refuses "
                            "it)", t.pos)
            si = rec.subgraph
            if si >= self.nsub:
                self.report("signature-subgraph-out-of-range",
                            where, f"subgraph_index {si} is out of range: the model has "
                            f"{self.nsub} subgraphs (stricter: the runtime fails when the "
                            f"signature is used)", t.pos)
                continue
            nt = self.subgraph_tensors[si]
            for side in ("inputs", "outputs"):
                maps = records.signature_map_tables(t, side)
                for j in range(0 if maps is None else len(maps)):
                    m = maps[j]
                    name, ti = records.decode_tensor_map(m)
                    if ti >= nt:
                        self.report("signature-tensor-out-of-range", f"{where}.{side}[{j}]",
                                    f"{name!r} names tensor {ti}, "
                                    f"but subgraph {si} has {nt} tensors (stricter: the runtime "
                                    f"fails when the signature is used)", m.pos)

    def metadata(self, root) -> None:
        vec = records.vector(root, "metadata")
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            rec = records.decode_metadata(t, i)
            where = f"Model.metadata[{i}]"
            name, b = rec.name, rec.buffer
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


def verify(source, *, mmap: bool = True) -> "list[Defect]":
    """Check a model completely; return every defect found (an empty list: sound).

    ``source`` is a path, bytes-like data or an open :class:`~tflite_weights.Model`.
    Never raises for a damaged file (every problem becomes a :class:`Defect`);
    raises ``OSError`` when a path cannot be read, and the package's error when it
    names a pipe, a device or a directory.  ``mmap=False`` reads the file into
    memory instead of mapping it (see :func:`tflite_weights.open`).  Use
    :func:`errors_of` to keep the defects that make the model unusable (warnings are
    left out).
    """
    src = None
    if isinstance(source, (str, os.PathLike)):
        try:
            src = open_source(source, mmap=mmap)
        except InvalidModelError as e:
            if "empty" not in str(e):
                raise
            return [_defect("file-empty", "file", f"{os.path.basename(os.fspath(source))} "
                            f"is empty (0 bytes)")]
        data = src.data
    else:
        try:
            data = memoryview(source)
        except TypeError:  # an open Model: its bytes (ClosedModelError once closed)
            data = source.data
        if data.ndim != 1 or data.itemsize != 1:
            data = data.cast("B")
    try:
        return _verify(data)
    finally:
        if src is not None:
            src.close()


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
