#!/usr/bin/env python3
"""Mutation testing: small deliberate bugs in the source, and whether the tests notice.

Run by hand from the repository's virtual environment (it needs ``coverage``,
from the ``mutation`` extra)::

    .venv/bin/pip install -e '.[test,mutation]'
    .venv/bin/python scripts/mutate.py                       # the core modules
    .venv/bin/python scripts/mutate.py --modules tflite_weights/numerics/fixedpoint.py
    .venv/bin/python scripts/mutate.py --list                # the mutants, nothing run

Each mutant is the module with one change made through its syntax tree (a
comparison, an operator, an integer, a dropped ``raise``, ...).  The test
suite runs once under ``coverage`` with one context per test, which says
which tests execute each line; a mutant then runs only the tests covering its
line, fastest first, stopping at the first failure.  A mutant no test notices
is a survivor: either the tests miss a behaviour or the mutant is equivalent
(listed with a reason in ``scripts/mutants-equivalent.txt``).

The working tree is never written to: every worker mutates its own copy of
the repository in a temporary directory and runs ``python -m pytest`` there.
``scripts/README.md`` describes the report and the rules.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import fnmatch
import hashlib
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# The modules mutated when --modules is not given, relative to the repository root.
MODULES = [
    "tflite_weights/format/flatbuffer.py",
    "tflite_weights/format/types.py",
    "tflite_weights/format/records.py",
    "tflite_weights/numerics/values.py",
    "tflite_weights/numerics/quantization.py",
    "tflite_weights/numerics/blockwise.py",
    "tflite_weights/numerics/fixedpoint.py",
    "tflite_weights/numerics/sparsity.py",
    "tflite_weights/verify.py",
    "tflite_weights/export/c_header.py",
    "tflite_weights/export/npz.py",
    "tflite_weights/export/json_export.py",
    "tflite_weights/testing.py",
]

# Folders next to the repository that the tests read (../shared/corpus); each
# temporary copy gets a symbolic link to them at the same relative place.
SIBLINGS = ["shared"]

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = "scripts/mutants-equivalent.txt"
DEFAULT_RESULTS = ".mutation/results.json"

# Without git, the copy leaves these out (with git it takes what `git ls-files` lists).
COPY_IGNORE = {".git", ".venv", ".venv-fixtures", ".mutation", "__pycache__", ".pytest_cache",
               ".hypothesis", "build", "dist"}

SKIP_FUNCTIONS = {"__repr__", "__str__"}
MIN_TIMEOUT = 20.0
TIMEOUT_FACTOR = 10.0

# keywords whose omission is a realistic slip (besides pass-through ones, f(x=x))
DROP_KEYWORDS = {"dtype", "axis", "copy", "order", "casting", "keepdims", "count", "offset",
                 "signed", "byteorder", "strict"}

CMP_SWAP = {ast.Lt: (ast.LtE, "<=", "lt_le"), ast.LtE: (ast.Lt, "<", "le_lt"),
            ast.Gt: (ast.GtE, ">=", "gt_ge"), ast.GtE: (ast.Gt, ">", "ge_gt"),
            ast.Eq: (ast.NotEq, "!=", "eq_ne"), ast.NotEq: (ast.Eq, "==", "ne_eq"),
            ast.Is: (ast.IsNot, "is not", "is_isnot"), ast.IsNot: (ast.Is, "is", "isnot_is"),
            ast.In: (ast.NotIn, "not in", "in_notin"), ast.NotIn: (ast.In, "in", "notin_in")}
BIN_SWAP = {ast.Add: (ast.Sub, "-", "add_sub"), ast.Sub: (ast.Add, "+", "sub_add"),
            ast.Mult: (ast.FloorDiv, "//", "mul_floordiv"), ast.FloorDiv: (ast.Mult, "*", "floordiv_mul"),
            ast.Div: (ast.Mult, "*", "div_mul"),
            ast.LShift: (ast.RShift, ">>", "lshift_rshift"), ast.RShift: (ast.LShift, "<<", "rshift_lshift"),
            ast.BitAnd: (ast.BitOr, "|", "bitand_bitor"), ast.BitOr: (ast.BitAnd, "&", "bitor_bitand")}
MINMAX_SWAP = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum",
               "amin": "amax", "amax": "amin", "argmin": "argmax", "argmax": "argmin",
               "nanmin": "nanmax", "nanmax": "nanmin"}
BODY_FIELDS = ("body", "orelse", "finalbody", "handlers")


# --------------------------------------------------------------------------- mutants


@dataclass
class Mutant:
    id: str
    module: str          # path relative to the repository root
    qualname: str
    operator: str
    line: int            # first line of the change
    lines: tuple         # the lines whose coverage selects the tests (first, last)
    scope: tuple         # lines of the enclosing function or class, for header changes
    original: str        # the source lines the change touches
    mutated: str         # the same lines after the change
    text: str = field(repr=False, default="")   # the whole mutated module

    def record(self) -> dict:
        return {"module": self.module, "qualname": self.qualname, "operator": self.operator,
                "line": self.line, "original": self.original, "mutated": self.mutated}


class _Site:
    """One change of the tree: how to make it, undo it, and write it in the source."""

    def __init__(self, operator, stmt_info, apply, revert, candidates, lines):
        self.operator = operator
        self.stmt_info = stmt_info   # (qualname, statement key, scope, statement node)
        self.apply = apply
        self.revert = revert
        self.candidates = candidates  # () -> [[(start, end, text), ...], ...], called after apply
        self.lines = lines


def _set_child(parent, fieldname, index, new):
    if index is None:
        setattr(parent, fieldname, new)
    else:
        getattr(parent, fieldname)[index] = new


def _is_text(node) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_text(node.left) or _is_text(node.right)
    return False


def _call_name(node) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


def _is_message_call(node) -> bool:
    """Calls whose arguments are messages: exception constructors, warnings, str.format."""
    name = _call_name(node)
    if name.endswith(("Error", "Exception", "Warning")) or name == "warn":
        return True
    return (name == "format" and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str))


def _is_guard(test) -> bool:
    """``if TYPE_CHECKING`` and ``if __name__ == "__main__"``."""
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _stmt_key(st) -> str:
    """The statement's normalised source; for a compound statement, its header only."""
    if any(isinstance(getattr(st, f, None), list) and getattr(st, f) for f in BODY_FIELDS):
        c = copy.copy(st)
        for f in BODY_FIELDS:
            if hasattr(c, f):
                setattr(c, f, [ast.Pass()] if f == "body" else [])
        return ast.unparse(c)
    return ast.unparse(st)


def _int_text(original: str, value: int) -> str:
    o = original.lower().lstrip("-")
    if o.startswith("0x"):
        return hex(value)
    if o.startswith("0b"):
        return bin(value)
    if o.startswith("0o"):
        return oct(value)
    return str(value)


class Generator:
    """All mutants of one module, each with its source verified against the mutated tree."""

    def __init__(self, relpath: str, source: str):
        self.relpath = relpath
        self.modname = relpath[:-3].replace("/", ".").removesuffix(".__init__")
        self.source = source
        self.tree = ast.parse(source)
        self.lines = re.split(r"(?<=\n)", source)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.tokens = []   # (start, end, type, string), absolute character offsets
        for t in tokenize.generate_tokens(io.StringIO(source).readline):
            if t.type in (tokenize.OP, tokenize.NAME):
                self.tokens.append((self._tok(t.start), self._tok(t.end), t.type, t.string))
        self.sites: list[_Site] = []
        self.problems: list[str] = []
        self.paths = {}   # id(statement) -> [(field, index), ...] from the module
        self._index(self.tree, [])

    def _index(self, node, path):
        for f in BODY_FIELDS:
            for i, child in enumerate(getattr(node, f, None) or []):
                self.paths[id(child)] = path + [(f, i)]
                self._index(child, path + [(f, i)])

    @staticmethod
    def _at(tree, path):
        node = tree
        for f, i in path:
            body = getattr(node, f, None)
            if body is None or i >= len(body):
                return None
            node = body[i]
        return node

    # positions
    def _tok(self, pos) -> int:
        return self.starts[pos[0] - 1] + pos[1]

    def _off(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8"))

    def span(self, node) -> tuple:
        return (self._off(node.lineno, node.col_offset),
                self._off(node.end_lineno, node.end_col_offset))

    def seg(self, node) -> str:
        a, b = self.span(node)
        return self.source[a:b]

    def _line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid
        return lo + 1

    def _ops_between(self, a: int, b: int, strings) -> list:
        return [t for t in self.tokens if a <= t[0] and t[1] <= b and t[3] in strings]

    # walking
    def generate(self) -> list[Mutant]:
        self._stmts(self.tree, "body", [])
        return self._build()

    def _stmts(self, parent, fieldname, qual):
        for i, st in enumerate(getattr(parent, fieldname)):
            self._stmt(st, parent, fieldname, i, qual)

    def _stmt(self, st, parent, fieldname, index, qual):
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if st.name in SKIP_FUNCTIONS:
                return
            inner = (st.body[0].lineno, st.end_lineno)
            info = (".".join(qual) or "<module>", _stmt_key(st), inner, st)
            header = list(st.decorator_list)
            if isinstance(st, ast.ClassDef):
                header += st.bases + st.keywords
            else:
                a = st.args
                header += a.defaults + [d for d in a.kw_defaults if d is not None]
            for node in header:
                self._expr(node, None, None, None, info)
            self._stmts(st, "body", qual + [st.name])
            return
        if isinstance(st, ast.If) and _is_guard(st.test):
            self._stmts(st, "orelse", qual)
            return
        info = (".".join(qual) or "<module>", _stmt_key(st), None, st)
        first = st.lineno
        if isinstance(st, ast.Raise):
            self._raise(st, parent, fieldname, index, info)
            return
        if isinstance(st, ast.Assert):
            self._expr(st.test, st, "test", None, info, first)
            return
        if isinstance(st, ast.AugAssign):
            self._augassign(st, info)
        if isinstance(st, ast.Return) and st.value is not None and not (
                isinstance(st.value, ast.Constant) and st.value.value is None):
            self._return(st, info)
        for f, value in ast.iter_fields(st):
            if f in BODY_FIELDS or f in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if isinstance(v, ast.AST):
                        self._expr(v, st, f, i, info, first)
            elif isinstance(value, ast.AST):
                self._expr(value, st, f, None, info, first)
        if isinstance(st, ast.If) and len(st.body) > 1 and any(isinstance(s, ast.Raise) for s in st.body):
            self._if_raise(st, info)
        for f in BODY_FIELDS:
            body = getattr(st, f, None)
            if not body:
                continue
            if f == "handlers":
                for h in body:
                    hinfo = (info[0], _stmt_key(h), None, h)
                    if h.type is not None:
                        self._expr(h.type, h, "type", None, hinfo, h.lineno)
                    self._stmts(h, "body", qual)
            else:
                self._stmts(st, f, qual)

    def _expr(self, node, parent, fieldname, index, info, first=None):
        if node is None or isinstance(node, ast.JoinedStr):
            return
        if isinstance(node, ast.Call) and _is_message_call(node):
            return
        if isinstance(node, ast.keyword) and node.arg == "stacklevel":
            return
        self._sites(node, parent, fieldname, index, info, first)
        for f, value in ast.iter_fields(node):
            if f in ("annotation", "returns", "type_comment"):
                continue
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if isinstance(v, ast.AST):
                        self._expr(v, node, f, i, info, first)
            elif isinstance(value, ast.AST):
                self._expr(value, node, f, None, info, first)

    def _add(self, operator, info, apply, revert, candidates, lines):
        self.sites.append(_Site(operator, info, apply, revert, candidates, lines))

    def _lines(self, first, node_or_end):
        end = node_or_end if isinstance(node_or_end, int) else node_or_end.end_lineno
        return (first if first is not None else end, end)

    def _paren(self, node):
        a, b = self.span(node)
        return [(a, b, "(" + ast.unparse(node) + ")")]

    def _sites(self, node, parent, fieldname, index, info, first):
        lines = self._lines(first if first is not None else getattr(node, "lineno", None), node) \
            if hasattr(node, "end_lineno") else None
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) not in CMP_SWAP:
                    continue
                new_cls, text, name = CMP_SWAP[type(op)]
                left = node.left if i == 0 else node.comparators[i - 1]
                right = node.comparators[i]
                gap = (self.span(left)[1], self.span(right)[0])
                old_words = {"<", "<=", ">", ">=", "==", "!=", "is", "not", "in"}

                def apply(node=node, i=i, new_cls=new_cls):
                    node.ops[i] = new_cls()

                def revert(node=node, i=i, op=op):
                    node.ops[i] = op

                def cands(node=node, gap=gap, text=text):
                    toks = self._ops_between(gap[0], gap[1], old_words)
                    out = []
                    if toks:
                        out.append([(toks[0][0], toks[-1][1], text)])
                    return out + [self._paren(node)]
                self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAP and not (
                _is_text(node.left) or _is_text(node.right)):
            new_cls, text, name = BIN_SWAP[type(node.op)]
            gap = (self.span(node.left)[1], self.span(node.right)[0])
            sym = {"+", "-", "*", "/", "//", "<<", ">>", "&", "|"}

            def apply(node=node, new_cls=new_cls):
                node.op = new_cls()

            def revert(node=node, op=node.op):
                node.op = op

            def cands(node=node, gap=gap, text=text):
                toks = self._ops_between(gap[0], gap[1], sym)
                return ([[(toks[0][0], toks[0][1], text)]] if len(toks) == 1 else []) + [self._paren(node)]
            self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.BoolOp):
            new_cls, text, name = ((ast.Or, "or", "and_or") if isinstance(node.op, ast.And)
                                   else (ast.And, "and", "or_and"))

            def apply(node=node, new_cls=new_cls):
                node.op = new_cls()

            def revert(node=node, op=node.op):
                node.op = op

            def cands(node=node, text=text):
                edits = []
                for x, y in zip(node.values, node.values[1:]):
                    toks = self._ops_between(self.span(x)[1], self.span(y)[0], {"and", "or"})
                    if len(toks) != 1:
                        return [self._paren(node)]
                    edits.append((toks[0][0], toks[0][1], text))
                return [edits, self._paren(node)]
            self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and parent is not None:
            def apply(node=node, parent=parent, fieldname=fieldname, index=index):
                _set_child(parent, fieldname, index, node.operand)

            def revert(node=node, parent=parent, fieldname=fieldname, index=index):
                _set_child(parent, fieldname, index, node)

            def cands(node=node):
                a, b = self.span(node)
                inner = self.seg(node.operand)
                return [[(a, b, inner)], [(a, b, "(" + inner + ")")]]
            self._add("not_drop", info, apply, revert, cands, lines)
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            name = "true_false" if node.value else "false_true"

            def apply(node=node):
                node.value = not node.value

            def revert(node=node, v=node.value):
                node.value = v

            def cands(node=node, v=node.value):
                a, b = self.span(node)
                return [[(a, b, str(not v))]]
            self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            deltas = [(+1, "int_plus1")] if node.value == 0 else [(+1, "int_plus1"), (-1, "int_minus1")]
            for delta, name in deltas:
                def apply(node=node, delta=delta):
                    node.value += delta

                def revert(node=node, v=node.value):
                    node.value = v

                def cands(node=node, v=node.value + delta):
                    a, b = self.span(node)
                    return [[(a, b, _int_text(self.source[a:b], v))], [(a, b, "(" + str(v) + ")")]]
                self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.Slice):
            for part in ("lower", "upper"):
                bound = getattr(node, part)
                if bound is None or isinstance(bound, ast.Constant) or (
                        isinstance(bound, ast.UnaryOp) and isinstance(bound.operand, ast.Constant)):
                    continue   # literal bounds get the integer mutants
                for delta, sign in ((1, "+"), (-1, "-")):
                    name = f"slice_{part}_{'plus' if delta > 0 else 'minus'}1"

                    def apply(node=node, part=part, bound=bound, sign=sign):
                        op = ast.Add() if sign == "+" else ast.Sub()
                        setattr(node, part, ast.BinOp(bound, op, ast.Constant(1)))

                    def revert(node=node, part=part, bound=bound):
                        setattr(node, part, bound)

                    def cands(bound=bound, sign=sign):
                        a, b = self.span(bound)
                        s = self.seg(bound)
                        return [[(a, b, f"{s} {sign} 1")], [(a, b, f"({s}) {sign} 1")]]
                    self._add(name, info, apply, revert, cands, lines)
        elif isinstance(node, ast.Call):
            self._call(node, parent, fieldname, index, info, lines)

    def _call(self, node, parent, fieldname, index, info, lines):
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("min", "max") or (
                isinstance(f, ast.Attribute) and f.attr in MINMAX_SWAP):
            old = f.id if isinstance(f, ast.Name) else f.attr
            new = MINMAX_SWAP[old]

            def apply(f=f, new=new):
                setattr(f, "id" if isinstance(f, ast.Name) else "attr", new)

            def revert(f=f, old=old):
                setattr(f, "id" if isinstance(f, ast.Name) else "attr", old)

            def cands(f=f, old=old, new=new):
                a, b = self.span(f)
                return [[(b - len(old), b, new)]]
            self._add(f"{old}_{new}", info, apply, revert, cands, lines)
        if isinstance(f, ast.Attribute) and f.attr == "astype" and parent is not None:
            def apply(node=node, parent=parent, fieldname=fieldname, index=index):
                _set_child(parent, fieldname, index, node.func.value)

            def revert(node=node, parent=parent, fieldname=fieldname, index=index):
                _set_child(parent, fieldname, index, node)

            def cands(node=node):
                a, b = self.span(node)
                inner = self.seg(node.func.value)
                return [[(a, b, inner)], [(a, b, "(" + inner + ")")]]
            self._add("astype_drop", info, apply, revert, cands, lines)
        for j, kw in enumerate(node.keywords):
            if kw.arg is None:
                continue
            if not (kw.arg in DROP_KEYWORDS or (isinstance(kw.value, ast.Name) and kw.value.id == kw.arg)):
                continue

            def apply(node=node, j=j):
                node.keywords.pop(j)

            def revert(node=node, j=j, kw=kw):
                node.keywords.insert(j, kw)

            def cands(node=node, kw=kw):
                items = sorted(list(node.args) + list(node.keywords) + [kw],
                               key=lambda n: (n.lineno, n.col_offset))
                k = items.index(kw)
                a, b = self.span(kw)
                if k > 0:
                    return [[(self.span(items[k - 1])[1], b, "")]]
                if len(items) > 1:
                    return [[(a, self.span(items[1])[0], "")]]
                return [[(a, b, "")]]
            self._add(f"drop_kw_{kw.arg}", info, apply, revert, cands, lines)

    def _augassign(self, st, info):
        if type(st.op) not in BIN_SWAP or _is_text(st.value):
            return
        new_cls, text, name = BIN_SWAP[type(st.op)]
        gap = (self.span(st.target)[1], self.span(st.value)[0])

        def apply(st=st, new_cls=new_cls):
            st.op = new_cls()

        def revert(st=st, op=st.op):
            st.op = op

        def cands(st=st, gap=gap, text=text):
            toks = [t for t in self.tokens if gap[0] <= t[0] and t[1] <= gap[1] and t[3].endswith("=")]
            out = [[(toks[0][0], toks[0][1], text + "=")]] if len(toks) == 1 else []
            a, b = self.span(st)
            return out + [[(a, b, ast.unparse(st))]]
        self._add(name, info, apply, revert, cands, (st.lineno, st.end_lineno))

    def _return(self, st, info):
        def apply(st=st):
            st._saved, st.value = st.value, ast.Constant(None)

        def revert(st=st):
            st.value = st._saved
            del st._saved

        def cands(st=st):
            a, b = self.span(st._saved)
            return [[(a, b, "None")]]
        self._add("return_none", info, apply, revert, cands, (st.lineno, st.end_lineno))

    def _raise(self, st, parent, fieldname, index, info):
        def apply(st=st, parent=parent, fieldname=fieldname, index=index):
            getattr(parent, fieldname)[index] = ast.Pass()

        def revert(st=st, parent=parent, fieldname=fieldname, index=index):
            getattr(parent, fieldname)[index] = st

        def cands(st=st):
            a, b = self.span(st)
            return [[(a, b, "pass")]]
        self._add("raise_drop", info, apply, revert, cands, (st.lineno, st.end_lineno))

    def _if_raise(self, st, info):
        def apply(st=st):
            st._saved, st.body = st.body, [ast.Pass()]

        def revert(st=st):
            st.body = st._saved
            del st._saved

        def cands(st=st):
            a = self.span(st._saved[0])[0]
            b = self.span(st._saved[-1])[1]
            return [[(a, b, "pass")]]
        self._add("ifraise_pass", info, apply, revert, cands, (st.body[0].lineno, st.body[-1].end_lineno))

    # building
    def _build(self) -> list[Mutant]:
        mutants = []
        occurrences = {}
        same_key = {}   # (qualname, key) -> the statements with that source, in order
        seen_ids = set()
        for site in self.sites:
            qual, key, scope, st = site.stmt_info
            owners = same_key.setdefault((qual, key), [])
            if not any(o is st for o in owners):
                owners.append(st)
            dup = next(i for i, o in enumerate(owners) if o is st)
            digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:8] + (f"~{dup}" if dup else "")
            n = occurrences.get((qual, digest, site.operator), 0)
            occurrences[(qual, digest, site.operator)] = n + 1
            mid = f"{self.modname}:{qual}:{site.operator}:{digest}:{n}"
            if mid in seen_ids:
                self.problems.append(f"duplicate id {mid}")
                continue
            seen_ids.add(mid)
            mutant = self._materialise(site, mid, qual, scope)
            if mutant is not None:
                mutants.append(mutant)
        return mutants

    def _fragment(self, st):
        """``(start, end, indented)`` of the whole lines that hold ``st`` and nothing else."""
        if not isinstance(st, ast.stmt):
            return None
        first = min([st.lineno] + [d.lineno for d in getattr(st, "decorator_list", [])])
        ls, le = self.starts[first - 1], self.starts[st.end_lineno]
        a, b = self.span(st)
        if getattr(st, "decorator_list", None):
            a = self.span(st.decorator_list[0])[0] - 1   # the "@"
        tail = self.source[b:le].strip()
        if self.source[ls:a].strip() or (tail and not tail.startswith("#")):
            return None
        return ls, le, a > ls

    def _parse_stmt(self, text, path, frag):
        """The statement at ``path`` of the mutated module ``text``, or None."""
        try:
            if frag is None:
                return self._at(ast.parse(text), path)
            ls, le, indented = frag
            piece = text[ls:le + len(text) - len(self.source)]
            tree = ast.parse("if 1:\n" + piece if indented else piece)
            body = tree.body[0].body if indented else tree.body
            return body[0] if len(body) == 1 and len(tree.body) == 1 else None
        except SyntaxError:
            return None

    def _materialise(self, site, mid, qual, scope):
        # The edits stay inside the statement and the rest of the module is the same text,
        # so parsing the statement's lines alone and comparing them with the mutated tree
        # checks the whole change (and costs little on long modules).
        st = site.stmt_info[3]
        path = self.paths[id(st)]
        frag = self._fragment(st)
        site.apply()
        try:
            expected = ast.dump(self._at(self.tree, path))
            candidates = site.candidates()
        finally:
            site.revert()
        for edits in candidates:
            text = self.source
            for a, b, new in sorted(edits, reverse=True):
                text = text[:a] + new + text[b:]
            got = self._parse_stmt(text, path, frag)
            if got is None and frag is not None:
                got = self._parse_stmt(text, path, None)
            if got is None or ast.dump(got) != expected:
                continue
            a = min(e[0] for e in edits)
            b = max(e[1] for e in edits)
            first, last = self._line_of(a), self._line_of(max(a, b - 1))
            ls, le = self.starts[first - 1], self.starts[last]
            original = self.source[ls:le]
            mutated = text[ls:le + len(text) - len(self.source)]
            return Mutant(mid, self.relpath, qual, site.operator, first, site.lines,
                          scope or site.lines, original.rstrip("\n"), mutated.rstrip("\n"), text)
        self.problems.append(f"{mid}: no source edit gives the mutated tree; left out")
        return None


def generate(relpath: str) -> tuple[list[Mutant], list[str]]:
    source = (ROOT / relpath).read_text(encoding="utf-8")
    g = Generator(relpath, source)
    return g.generate(), g.problems


# --------------------------------------------------------------------------- equivalents


def read_equivalents(path: Path) -> dict:
    out = {}
    if not path.exists():
        return out
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            sys.exit(f"{path}:{n}: an equivalent mutant needs a reason: {line!r}")
        out[parts[0]] = parts[1].strip()
    return out


# --------------------------------------------------------------------------- copies and runs

PLUGIN = r'''
"""Loaded with -p by scripts/mutate.py: one coverage context per test, durations."""
import json
import os
import sys

import pytest

_durations = {}
_failed = []


def _coverage():
    try:
        import coverage
    except ImportError:
        return None
    return coverage.Coverage.current()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cov = _coverage()
    if cov is not None:
        cov.switch_context(item.nodeid)
    yield
    if cov is not None:
        cov.switch_context("")


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if report.failed:
        _failed.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("MUTATE_REPORT")
    if not out:
        return
    packages = {}
    for name in os.environ.get("MUTATE_PACKAGES", "").split(","):
        if name:
            packages[name] = getattr(sys.modules.get(name), "__file__", None)
    with open(out, "w") as f:
        json.dump({"durations": _durations, "failed": _failed, "packages": packages,
                   "exitstatus": int(exitstatus)}, f)
'''


def repo_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
        return sorted(p for p in out.decode("utf-8").split("\0") if p and (ROOT / p).is_file())
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x not in COPY_IGNORE and not x.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names if not n.endswith(".pyc")]
        return sorted(files)


# files that cannot change what the tests do: editing them keeps the cached coverage map
FINGERPRINT_SKIP = {"scripts/mutate.py", EQUIVALENT_FILE, "scripts/README.md"}


def fingerprint(files) -> str:
    h = hashlib.sha256()
    for rel in files:
        if rel in FINGERPRINT_SKIP:
            continue
        h.update(rel.encode("utf-8") + b"\0")
        h.update(hashlib.sha256((ROOT / rel).read_bytes()).digest())
    h.update(sys.version.encode())
    return h.hexdigest()


class Worker:
    def __init__(self, base: Path, n: int, files):
        self.dir = base / f"w{n}"
        self.root = self.dir / ROOT.name
        for rel in files:
            dst = self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst)
        for s in SIBLINGS:
            src = ROOT.parent / s
            if src.exists():
                (self.dir / s).symlink_to(src, target_is_directory=src.is_dir())
        self.plugin_dir = base
        self.argsfile = self.dir / "tests.txt"
        self.proc = None

    def env(self, report=None, packages=()):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(self.plugin_dir)]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.pop("MUTATE_REPORT", None)
        if report:
            env["MUTATE_REPORT"] = str(report)
            env["MUTATE_PACKAGES"] = ",".join(packages)
        return env

    def clear_bytecode(self, relpath: str):
        p = self.root / relpath
        for pyc in (p.parent / "__pycache__").glob(p.stem + ".*.pyc"):
            pyc.unlink(missing_ok=True)

    def pytest(self, tests, timeout, extra=(), report=None, packages=(), prefix=()):
        self.argsfile.write_text("".join(t + "\n" for t in tests), encoding="utf-8")
        shutil.rmtree(self.root / ".hypothesis", ignore_errors=True)
        # prefix: what runs "-m pytest" (the coverage baseline puts "coverage run" there)
        cmd = [*(prefix or [sys.executable]), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               *PYTEST_EXTRA, *extra]
        if tests:
            cmd.append("@" + str(self.argsfile))   # one node id a line
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(report, packages),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
            rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate()
            rc = None
        finally:
            self.proc = None
        return rc, out.decode("utf-8", "replace"), time.monotonic() - t0

    def kill(self):
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


PYTEST_EXTRA: list[str] = []


def _failure_line(out: str) -> str:
    for line in out.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:300]
    for line in out.splitlines():
        if line.startswith("E "):
            return line[:300]
    lines = [x for x in out.splitlines() if x.strip()]
    return lines[-1][:300] if lines else ""


def coverage_map(worker: Worker, modules, files, cache: Path, fresh: bool) -> dict:
    """line -> tests for every module, and each test's duration (cached per source tree)."""
    key = fingerprint(files)
    if cache.exists() and not fresh:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if (data.get("fingerprint") == key and "tests" in data
                and all(m in data["files"] for m in modules)):
            print(f"coverage map: reusing {cache.relative_to(ROOT)} (same sources and tests)")
            return data
    try:
        import coverage
    except ImportError:
        sys.exit("scripts/mutate.py needs coverage: pip install -e '.[test,mutation]'")
    datafile = worker.dir / ".coverage"
    rc_file = worker.dir / "coveragerc"
    include = ",\n    ".join(str(worker.root / m) for m in modules)
    rc_file.write_text(f"[run]\ndata_file = {datafile}\ninclude =\n    {include}\n", encoding="utf-8")
    report = worker.dir / "baseline.json"
    packages = sorted({m.split("/")[0] for m in modules})
    print("baseline: the whole suite under coverage, one context per test ...", flush=True)
    rc, out, secs = worker.pytest([], None, extra=["-p", "_mutate_plugin"], report=report, packages=packages,
                                  prefix=[sys.executable, "-m", "coverage", "run", f"--rcfile={rc_file}"])
    if rc != 0:
        sys.stdout.write(out[-6000:])
        sys.exit(f"the test suite fails in the copy (exit status {rc}); fix that first")
    info = json.loads(report.read_text(encoding="utf-8"))
    check_packages(info, worker)
    cov = coverage.CoverageData(basename=str(datafile))
    cov.read()
    # line -> indices into "tests"; a line run only outside any test (at import) maps to []
    names = sorted(info["durations"])
    index = {t: i for i, t in enumerate(names)}
    result = {"fingerprint": key, "seconds": round(secs, 1), "tests": names,
              "durations": [round(info["durations"][t], 4) for t in names], "files": {}}
    measured = {os.path.realpath(f): f for f in cov.measured_files()}
    for m in modules:
        path = measured.get(os.path.realpath(worker.root / m))
        by_line = cov.contexts_by_lineno(path) if path else {}
        result["files"][m] = {str(line): sorted({index[c] for c in ctx if c in index})
                              for line, ctx in by_line.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result), encoding="utf-8")
    print(f"baseline: passed in {secs:.0f} s, {len(info['durations'])} tests", flush=True)
    return result


def check_packages(info, worker: Worker):
    for name, path in info["packages"].items():
        if path is None or not Path(path).resolve().is_relative_to(worker.root.resolve()):
            sys.exit(f"the copy's tests imported {name} from {path}, not from {worker.root}; "
                     f"results would not be about the mutants")


def select(mutant: Mutant, cmap: dict) -> tuple[list[str], str]:
    """The tests to run on ``mutant``, fastest first, and why they were chosen."""
    lines = cmap["files"].get(mutant.module, {})

    def tests_of(first, last):
        found = set()
        executed = False
        for n in range(first, last + 1):
            tests = lines.get(str(n))
            if tests is not None:
                executed = True
                found.update(tests)
        return found, executed

    found, executed = tests_of(*mutant.lines)
    kind = "lines"
    if not found and mutant.scope != mutant.lines:
        # a default argument or a decorator: the tests that run the function or class
        found, scope_executed = tests_of(*mutant.scope)
        kind = "scope"
        executed = executed or scope_executed
    if not found and executed:
        # run at import only: every test that runs any of the module's code
        found = {t for tests in lines.values() for t in tests}
        kind = "import"
    if not found:
        return [], "none"
    return _by_duration(found, cmap), kind


def _by_duration(indices, cmap) -> list[str]:
    d = cmap["durations"]
    return [cmap["tests"][i] for i in sorted(indices, key=lambda i: (d[i], cmap["tests"][i]))]


def _budget(tests, cmap) -> float:
    d = dict(zip(cmap["tests"], cmap["durations"]))
    return sum(d.get(t, 0.0) for t in tests)


def sanity(worker: Worker, modules, cmap):
    """The copy's baseline passes, it is the package imported, and breaking it fails the tests."""
    module = modules[0]
    tests = _by_duration({t for ts in cmap["files"].get(module, {}).values() for t in ts}, cmap)[:1]
    if not tests:
        tests = _by_duration(range(len(cmap["tests"])), cmap)[:1]
    packages = sorted({m.split("/")[0] for m in modules})
    report = worker.dir / "sanity.json"
    rc, out, _ = worker.pytest(tests, 300, extra=["-p", "_mutate_plugin"], report=report,
                               packages=packages)
    if rc != 0:
        sys.stdout.write(out[-4000:])
        sys.exit(f"sanity: {tests[0]} fails in the unmodified copy {worker.root}")
    check_packages(json.loads(report.read_text(encoding="utf-8")), worker)
    path = worker.root / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + '\nraise RuntimeError("broken on purpose by scripts/mutate.py")\n',
                        encoding="utf-8")
        worker.clear_bytecode(module)
        rc, out, _ = worker.pytest(tests, 300)
    finally:
        path.write_text(original, encoding="utf-8")
        worker.clear_bytecode(module)
    if rc == 0:
        sys.exit(f"sanity: {tests[0]} passes with {module} broken in {worker.root}; "
                 f"the tests do not import the copy")


def run_mutant(worker: Worker, mutant: Mutant, cmap: dict) -> dict:
    tests, kind = select(mutant, cmap)
    rec = mutant.record()
    rec.update(selection=kind, tests=len(tests))
    if not tests:
        rec.update(status="not covered", seconds=0.0)
        return rec
    timeout = max(MIN_TIMEOUT, TIMEOUT_FACTOR * _budget(tests, cmap))
    path = worker.root / mutant.module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(mutant.text, encoding="utf-8")
        worker.clear_bytecode(mutant.module)
        rc, out, secs = worker.pytest(tests, timeout)
        if rc in (4, 5) and not _collection_error(out):
            # a node id pytest could not find again: fall back to whole test functions
            plain = list(dict.fromkeys(t.split("[", 1)[0] for t in tests))
            rc, out, more = worker.pytest(plain, timeout)
            secs += more
    finally:
        path.write_text(original, encoding="utf-8")
        worker.clear_bytecode(mutant.module)
    rec.update(seconds=round(secs, 2), timeout=round(timeout, 1))
    if rc is None:
        rec["status"] = "timeout"
    elif rc == 0:
        rec["status"] = "survived"
    elif rc in (4, 5) and not _collection_error(out):
        rec.update(status="error", detail=_failure_line(out))
    else:
        # a failed test, or a test module that no longer imports (pytest then reports the
        # node ids in it as not found, exit status 4)
        rec.update(status="killed", killed_by=_failure_line(out) if rc > 0 else f"signal {-rc}")
    return rec


def _collection_error(out: str) -> bool:
    """A test module failed to import ("ERROR tests/x.py - ..."), not a node id unknown."""
    return any(line.startswith("ERROR ") and " - " in line for line in out.splitlines())


# --------------------------------------------------------------------------- results and report


def load_results(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"version": 1, "mutants": {}, "runs": []}


def save_results(path: Path, results: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def verdict(rec: dict, equivalents: dict) -> str:
    if rec["status"] in ("survived", "not covered") and rec["id"] in equivalents:
        return "equivalent"
    return rec["status"]


def report(mutants, results, equivalents, modules, every_id) -> int:
    recs = []
    for m in mutants:
        rec = results["mutants"].get(m.id)
        if rec is not None:
            recs.append(dict(rec, id=m.id, verdict=verdict(dict(rec, id=m.id), equivalents)))
    cols = ["made", "killed", "survived", "timeout", "not covered", "equivalent", "error"]
    width = max([len(m) for m in modules] + [len("total")])
    print()
    print(f"{'module':<{width}}  " + "  ".join(f"{c:>{max(len(c), 5)}}" for c in cols))
    totals = dict.fromkeys(cols, 0)
    for module in modules:
        row = dict.fromkeys(cols, 0)
        row["made"] = sum(1 for m in mutants if m.module == module)
        for r in recs:
            if r["module"] == module:
                row[r["verdict"]] += 1
        for c in cols:
            totals[c] += row[c]
        print(f"{module:<{width}}  " + "  ".join(f"{row[c]:>{max(len(c), 5)}}" for c in cols))
    if len(modules) > 1:
        print(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>{max(len(c), 5)}}" for c in cols))
    not_run = totals["made"] - len(recs)
    if not_run:
        print(f"({not_run} mutants not run yet)")

    survivors = [r for r in recs if r["verdict"] in ("survived", "not covered")]
    if survivors:
        print(f"\nsurvivors ({len(survivors)}): a test should fail on each, or it goes to "
              f"{EQUIVALENT_FILE} with the reason it changes no behaviour")
        for r in survivors:
            print(f"\n{r['id']}  [{r['verdict']}]")
            print(f"  {r['module']}:{r['line']}")
            for line in r["original"].splitlines()[:8]:
                print(f"  - {line}")
            for line in r["mutated"].splitlines()[:8]:
                print(f"  + {line}")
    errors = [r for r in recs if r["verdict"] == "error"]
    for r in errors:
        print(f"\nerror: {r['id']} ({r['module']}:{r['line']}): {r.get('detail', '')}")
    stale = [r for r in recs if r["id"] in equivalents and r["verdict"] in ("killed", "timeout")]
    prefixes = tuple(m[:-3].replace("/", ".") + ":" for m in modules)
    unknown = [i for i in equivalents if i.startswith(prefixes) and i not in every_id]
    for r in stale:
        print(f"\nstale annotation: {r['id']} is listed as equivalent but is {r['verdict']}"
              + (f" ({r['killed_by']})" if r.get("killed_by") else "")
              + f"; remove it from {EQUIVALENT_FILE}")
    for i in unknown:
        print(f"\nstale annotation: {i} is not a mutant of the source any more; "
              f"remove it from {EQUIVALENT_FILE}")
    timed = [r["seconds"] for r in recs if r.get("seconds")]
    if timed:
        print(f"\n{len(timed)} mutants ran tests, {sum(timed) / len(timed):.1f} s each on average "
              f"(one worker's time)")
    return 1 if survivors or errors or stale or unknown else 0


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", nargs="+", default=MODULES, metavar="PATH",
                   help="modules to mutate, relative to the repository root (default: the core modules)")
    p.add_argument("--only", action="extend", nargs="+", metavar="ID",
                   help="run only these mutants (ids or shell-style patterns)")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results file (default {DEFAULT_RESULTS})")
    p.add_argument("--resume", action="store_true", help="skip mutants already in the results file")
    p.add_argument("--list", action="store_true", help="print the mutants and run nothing")
    p.add_argument("--fresh-coverage", action="store_true",
                   help="run the coverage baseline even if the sources and tests are unchanged")
    args = p.parse_args(argv)

    modules = [m.replace(os.sep, "/") for m in args.modules]
    for m in modules:
        if not (ROOT / m).is_file():
            sys.exit(f"no such module: {m}")
    equivalents = read_equivalents(ROOT / EQUIVALENT_FILE)

    mutants = []
    for m in modules:
        made, problems = generate(m)
        for problem in problems:
            print(f"warning: {m}: {problem}", file=sys.stderr)
        mutants += made
    every_id = {m.id for m in mutants}
    if args.only:
        mutants = [m for m in mutants if any(fnmatch.fnmatchcase(m.id, pat) for pat in args.only)]
        if not mutants:
            sys.exit("--only matches no mutant")
        modules = [m for m in modules if any(x.module == m for x in mutants)]

    if args.list:
        for m in mutants:
            mark = "  [equivalent]" if m.id in equivalents else ""
            print(f"{m.id}  {m.module}:{m.line}{mark}")
            print(f"  - {m.original.splitlines()[0].strip()}")
            print(f"  + {(m.mutated.splitlines() or [''])[0].strip()}")
        print(f"{len(mutants)} mutants")
        return 0

    results_path = (ROOT / args.results) if not os.path.isabs(args.results) else Path(args.results)
    results = load_results(results_path)
    # forget results of mutants the modules no longer have
    prefixes = tuple(m[:-3].replace("/", ".") + ":" for m in modules)
    for mid in [i for i in results["mutants"] if i.startswith(prefixes) and i not in every_id]:
        del results["mutants"][mid]
    todo = [m for m in mutants if not (args.resume and m.id in results["mutants"]
                                       and results["mutants"][m.id]["status"] != "error")]
    print(f"{len(mutants)} mutants in {len(modules)} modules, {len(todo)} to run, {args.jobs} workers")

    started = time.monotonic()
    phases = {}
    if todo:
        try:
            import importlib.util
            if importlib.util.find_spec("hypothesis") is not None:
                PYTEST_EXTRA.append("--hypothesis-seed=0")   # the same examples for every mutant
        except ImportError:
            pass
        base = Path(tempfile.mkdtemp(prefix="mutate-"))
        (base / "_mutate_plugin.py").write_text(PLUGIN, encoding="utf-8")
        files = repo_files()
        workers = []
        try:
            workers = [Worker(base, n, files) for n in range(max(1, args.jobs))]
            measured = sorted(set(modules) | {m for m in MODULES if (ROOT / m).is_file()})
            t = time.monotonic()
            cmap = coverage_map(workers[0], measured, files,
                                results_path.parent / "coverage.json", args.fresh_coverage)
            phases["baseline"] = time.monotonic() - t
            t = time.monotonic()
            for w in workers:
                sanity(w, modules, cmap)
            phases["sanity"] = time.monotonic() - t
            print("sanity: each copy passes unmodified, imports its own package, and fails when broken")
            t = time.monotonic()
            run_all(todo, workers, cmap, results, results_path)
            phases["mutants"] = time.monotonic() - t
        finally:
            for w in workers:
                w.kill()
            shutil.rmtree(base, ignore_errors=True)
    wall = time.monotonic() - started
    if todo:
        results["runs"].append({"modules": modules, "mutants": len(todo), "jobs": args.jobs,
                                "seconds": round(wall, 1),
                                "phases": {k: round(v, 1) for k, v in phases.items()},
                                "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    for m in mutants:
        rec = results["mutants"].get(m.id)
        if rec is not None:
            rec["verdict"] = verdict(dict(rec, id=m.id), equivalents)
            if m.id in equivalents:
                rec["reason"] = equivalents[m.id]
    save_results(results_path, results)
    status = report(mutants, results, equivalents, modules, every_id)
    if todo:
        print(f"time: {wall:.0f} s in all; coverage baseline {phases.get('baseline', 0):.0f} s, "
              f"sanity checks {phases.get('sanity', 0):.0f} s, {len(todo)} mutants "
              f"{phases.get('mutants', 0):.0f} s with {args.jobs} workers "
              f"({phases.get('mutants', 0) / len(todo):.1f} s per mutant)")
    print(f"results: {results_path}")
    return status


def run_all(todo, workers, cmap, results, results_path):
    free = queue.Queue()
    for w in workers:
        free.put(w)
    lock = threading.Lock()
    stopping = threading.Event()
    done = [0]

    def one(mutant):
        if stopping.is_set():
            return
        w = free.get()
        try:
            rec = run_mutant(w, mutant, cmap)
        finally:
            free.put(w)
        if stopping.is_set():
            return   # its tests were killed by the interruption, not by the mutant
        with lock:
            results["mutants"][mutant.id] = rec
            save_results(results_path, results)
            done[0] += 1
            print(f"[{done[0]}/{len(todo)}] {rec['status']:<11} {mutant.id}  "
                  f"{mutant.module}:{mutant.line}  {rec.get('seconds', 0):.1f} s", flush=True)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(workers))
    futures = [pool.submit(one, m) for m in todo]
    try:
        for f in concurrent.futures.as_completed(futures):
            f.result()
    except KeyboardInterrupt:
        stopping.set()
        for f in futures:
            f.cancel()
        for w in workers:
            w.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        print("interrupted; --resume continues from the results file")
        raise
    pool.shutdown(wait=True)


if __name__ == "__main__":
    sys.exit(main())
