"""Damage models where it hurts, read everything, and say what went wrong.

Shared by tests/test_fuzz.py (bounded, deterministic) and scripts/fuzz.py (long
runs and the comparison with the interpreter's verifier).

* :func:`find_sites` walks a sound flatbuffer with the schema (the model and
  the flatbuffers nested in its metadata) and lists every position that really
  holds an offset, a vtable entry, a length or a scalar, so mutations plant
  values where the reader must check them, not only in weight bytes.
* :func:`mutate` applies one kind of damage, drawing its choices from a
  :class:`Chooser` (a seeded ``random.Random`` or hypothesis' ``data.draw``,
  which then shrinks a failure to its smallest form).
* :func:`exercise` touches everything the public API offers, generically:
  every public property and argument-free method of every object the package
  hands out, recursively, plus the calls that need arguments.
* :func:`run_case` opens damaged bytes, exercises them under a clock and
  ``tracemalloc``, and returns a :class:`CaseResult` that says whether the
  case broke a rule: an exception outside ``TFLiteWeightsError``, more than
  ``time_limit`` seconds, or a peak allocation above :func:`memory_bound`.
* :class:`InterpreterPool` loads files in the LiteRT interpreter in a child
  process (a crash there does not take the caller with it) and classifies
  each refusal: invalid flatbuffer, invalid model, operators, accepted.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import random
import re
import select
import struct
import subprocess
import sys
import time
import tracemalloc
import traceback
import warnings
from collections.abc import Mapping

import numpy as np

import tflite_weights as tw
from tflite_weights.format import schema as _schema
from tflite_weights import operators, variables, verify
from tflite_weights.errors import TFLiteWeightsError

# -- where the offsets are --------------------------------------------------------------

_SCALAR_SIZE = {"bool": 1, "i8": 1, "u8": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4,
                "i64": 8, "u64": 8, "f32": 4, "f64": 8}


@dataclasses.dataclass(frozen=True)
class Site:
    """One position of a flatbuffer with a meaning.

    ``kind``: ``root`` (the root uoffset), ``uoffset`` (a field or vector element
    pointing at a table, vector or string), ``soffset`` (a table's offset to its
    vtable), ``vtable_size``, ``table_size``, ``vtable_entry``, ``length`` (of a
    vector or string), ``union_type``, or ``scalar``.  ``elem`` is the scalar kind
    for scalars and vtable entries' field kind otherwise.  ``target`` is where an
    offset points (``-1`` for the others); ``owner`` the table the site belongs to
    and ``ancestors`` the tables above it, for planting loops.
    """

    pos: int
    width: int
    kind: str
    name: str
    elem: str = ""
    target: int = -1
    owner: int = -1
    ancestors: tuple = ()


class _Walker:
    MAX_VECTOR_ELEMENTS = 64  # elements of one scalar vector listed as sites
    MAX_TABLES = 20000

    def __init__(self, data: bytes, base: int, size: int, tables: dict, unions: dict):
        self.d = data
        self.base = base
        self.size = size
        self.tables = tables
        self.unions = unions
        self.sites: list[Site] = []
        self.seen_tables: set[int] = set()
        self.seen_vtables: set[int] = set()

    def u16(self, p):
        return struct.unpack_from("<H", self.d, self.base + p)[0]

    def u32(self, p):
        return struct.unpack_from("<I", self.d, self.base + p)[0]

    def i32(self, p):
        return struct.unpack_from("<i", self.d, self.base + p)[0]

    def fits(self, p, n):
        return 0 <= p and p + n <= self.size

    def add(self, pos, width, kind, name, **kw):
        self.sites.append(Site(self.base + pos, width, kind, name, **kw))

    def root(self, table: str) -> None:
        if not self.fits(0, 8):
            return
        t = self.u32(0)
        self.add(0, 4, "root", f"{table}.root", target=self.base + t)
        self.table(t, table, table, ())

    def table(self, pos: int, tname: str, name: str, ancestors: tuple) -> None:
        if pos in self.seen_tables or len(self.seen_tables) > self.MAX_TABLES:
            return
        if not self.fits(pos, 4):
            return
        self.seen_tables.add(pos)
        vt = pos - self.i32(pos)
        if not self.fits(vt, 4):
            return
        vsize = self.u16(vt)
        if vsize < 4 or not self.fits(vt, vsize):
            return
        owner = self.base + pos
        anc = ancestors + (owner,)
        self.add(pos, 4, "soffset", f"{name}<soffset>", target=self.base + vt, owner=owner,
                 ancestors=ancestors)
        n = (vsize - 4) // 2
        tdef = self.tables.get(tname)
        fields = {f.slot: f for f in tdef.fields} if tdef else {}
        union_types = {}
        if vt not in self.seen_vtables:
            self.seen_vtables.add(vt)
            self.add(vt, 2, "vtable_size", f"{name}<vtable size>", owner=owner,
                     ancestors=ancestors)
            self.add(vt + 2, 2, "table_size", f"{name}<table size>", owner=owner,
                     ancestors=ancestors)
            for i in range(n):
                f = fields.get(i) or fields.get(i + 1)
                label = f.name if f else f"slot{i}"
                self.add(vt + 4 + 2 * i, 2, "vtable_entry", f"{name}<vtable>.{label}",
                         elem=f.kind if f else "", owner=owner, ancestors=ancestors)
        if tdef is None:
            return
        for f in tdef.fields:
            slots = [f.slot - 1, f.slot] if f.kind == "union" else [f.slot]
            if any(s >= n for s in slots):
                continue
            fo = self.u16(vt + 4 + 2 * f.slot)
            if not fo:
                continue
            fpos = pos + fo
            fname = f"{name}.{f.name}"
            if f.kind == "scalar":
                w = _SCALAR_SIZE[f.elem]
                if self.fits(fpos, w):
                    self.add(fpos, w, "scalar", fname, elem=f.elem, owner=owner,
                             ancestors=ancestors)
                continue
            if f.kind == "union":
                to = self.u16(vt + 4 + 2 * (f.slot - 1))
                code = self.d[self.base + pos + to] if to and self.fits(pos + to, 1) else 0
                if to:
                    self.add(pos + to, 1, "union_type", fname + "_type", elem=f.elem,
                             owner=owner, ancestors=ancestors)
                union_types[f.slot] = code
            if not self.fits(fpos, 4):
                continue
            target = fpos + self.u32(fpos)
            self.add(fpos, 4, "uoffset", fname, elem=f.kind, target=self.base + target,
                     owner=owner, ancestors=ancestors)
            if f.kind == "table":
                self.table(target, f.elem, fname, anc)
            elif f.kind == "union":
                members = self.unions.get(f.elem, ())
                code = union_types.get(f.slot, 0)
                if 1 <= code <= len(members):
                    self.table(target, members[code - 1], fname, anc)
            elif f.kind == "string":
                self.vector(target, 1, fname, "string", anc, owner)
            elif f.kind == "vector":
                self.vector(target, _SCALAR_SIZE[f.elem], fname, f.elem, anc, owner)
            elif f.kind in ("vector_table", "vector_string"):
                n_el = self.vector(target, 4, fname, f.kind, anc, owner)
                for i in range(n_el):
                    ep = target + 4 + 4 * i
                    et = ep + self.u32(ep)
                    ename = f"{fname}[{i}]"
                    self.add(ep, 4, "uoffset", ename, elem=f.kind[7:],
                             target=self.base + et, owner=owner, ancestors=ancestors)
                    if f.kind == "vector_table":
                        self.table(et, f.elem, ename, anc)
                    else:
                        self.vector(et, 1, ename, "string", anc, owner)

    def vector(self, pos, elem_size, name, elem, anc, owner) -> int:
        if not self.fits(pos, 4):
            return 0
        n = self.u32(pos)
        if not self.fits(pos + 4, n * elem_size):
            return 0
        self.add(pos, 4, "length", f"{name}<length>", elem=elem, owner=owner, ancestors=anc)
        if elem in _SCALAR_SIZE and elem not in ("u8", "i8"):
            for i in range(min(n, self.MAX_VECTOR_ELEMENTS)):
                self.add(pos + 4 + i * elem_size, elem_size, "scalar", f"{name}[{i}]",
                         elem=elem, owner=owner, ancestors=anc)
        return n


def _nested_schemas():
    """name of a metadata entry -> (tables, root table) of its flatbuffer."""
    from tflite_weights.format import nested
    return {"CONVERSION_METADATA": (_schema.TABLES, "ConversionMetadata"),
            "TFLITE_METADATA": (nested._SUPPORT_TABLES, "ModelMetadata"),
            "COMPRESSION_METADATA": (nested._LUT_TABLES, "Metadata")}


def find_sites(data: bytes) -> "list[Site]":
    """Every offset, vtable field, length and scalar of a sound model, found by walking
    it with the schema; the flatbuffers inside its metadata entries too."""
    w = _Walker(data, 0, len(data), _schema.TABLES, _schema.UNIONS)
    w.root("Model")
    sites = w.sites
    try:
        with tw.open(data) as m:
            entries = []
            md = m._state.root.tables(_schema.slots("Model", "metadata")[0], "metadata")
            for i in range(0 if md is None else len(md)):
                t = md[i]
                name = t.string(0, "name")
                b = m.buffer(t.scalar(1, "u32", 0, "buffer"))
                if b.location is not None:
                    entries.append((name, b.file_offset, b.size))
    except TFLiteWeightsError:
        return sites
    nested = _nested_schemas()
    for name, start, size in entries:
        if name in nested and size >= 8:
            tables, root = nested[name]
            nw = _Walker(data, start, size, tables, _schema.UNIONS)
            nw.root(root)
            sites += [dataclasses.replace(s, name=f"metadata[{name}].{s.name}")
                      for s in nw.sites]
    return sites


# -- choosing ---------------------------------------------------------------------------


class Chooser:
    """Choices from a seeded ``random.Random``."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, pairs):
        total = sum(w for _, w in pairs)
        x = self.int(0, total - 1)
        for v, w in pairs:
            if x < w:
                return v
            x -= w
        raise AssertionError


class HypothesisChooser(Chooser):
    """Choices drawn from hypothesis' ``data``: a failure shrinks to small choices."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data = data
        self.st = st

    def int(self, lo, hi):
        return self.data.draw(self.st.integers(lo, hi))


# -- damage -----------------------------------------------------------------------------

KINDS = ("flip", "bitflip", "truncate", "plant", "plant", "plant", "plant", "loop",
         "self_vtable", "duplicate", "insert", "delete", "splice", "multi",
         "share_table", "share_vector", "grow_vector")
#: the structural damage that makes a small file claim much: many references to one
#: table, one vector shared by many tables, a vector as long as the file allows
STRUCTURAL = ("share_table", "share_vector", "grow_vector")
_INDEX = re.compile(r"\[\d+\]")


def _groups(sites: "list[Site]", elems: tuple) -> "list[list[Site]]":
    """Offsets of one kind of field, grouped by their path with indices left out
    (every tensor's ``shape``; every element of one vector of tables)."""
    groups: dict = {}
    for s in sites:
        if s.kind == "uoffset" and s.elem in elems:
            groups.setdefault(_INDEX.sub("[*]", s.name), []).append(s)
    return [g for g in groups.values() if len(g) > 1]


def _share(d: bytearray, group: "list[Site]", c: "Chooser") -> "tuple[int, int]":
    """Point every offset of ``group`` at the target of one of them (those after it
    cannot: offsets point forward).  Returns (target, how many were repointed)."""
    goal = c.choice(group).target
    n = 0
    for s in group:
        if goal > s.pos:
            _plant(d, s, goal - s.pos)
            n += 1
    return goal, n


def _u(value: int, width: int) -> int:
    return value & ((1 << (8 * width)) - 1)


def _values_for(site: Site, size: int, c: Chooser, sites) -> "list[int]":
    """Values worth planting at ``site`` (as unsigned integers of its width)."""
    p, w = site.pos, site.width
    big = [0, 1, 2, 3, 4, 7, 8, 0xFF, 0xFFFF, 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000,
           0xFFFFFFFF, 0xFFFFFFFC, 0x40000000, 0x40000001, 0x20000000, size, size - 1,
           size + 1, size - p, size - p - 4, size - p + 4, 1 << 31, (1 << 32) - size]
    if site.kind in ("root", "uoffset"):
        other = c.choice(sites).pos if sites else 0
        return big + [
            0,                                   # points at itself
            site.owner - p if site.owner >= 0 else 0,  # back at its own table: a loop
            (c.choice(site.ancestors) - p) if site.ancestors else -p,
            other - p,                           # any other structure, wrong type
            site.target - p + c.choice([-4, -2, -1, 1, 2, 4]),  # misaligned
            -p, -4, -1,
        ]
    if site.kind == "soffset":
        vts = [s.pos for s in sites if s.kind == "vtable_size"]
        return big + [
            0,                                   # vtable = the table itself
            p - c.choice(vts) if vts else 4,     # another table's vtable
            p, p - size, -4, -2, -1, 1, 2, p + 2, -(size - p),
            0x7FFFFFFF, -0x80000000,
        ]
    if site.kind == "vtable_size":
        return [0, 1, 2, 3, 4, 5, 6, 0xFFFF, 0xFFFE, size & 0xFFFF, 0x8000]
    if site.kind == "table_size":
        return [0, 1, 2, 3, 4, 0xFFFF, 0xFFFE, 0x8000]
    if site.kind == "vtable_entry":
        return [0, 1, 2, 3, 4, 5, 6, 8, 0xFFFF, 0xFFFC, 0x8000, 0x7FFF, c.int(0, 64)]
    if site.kind == "length":
        return big + [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x3FFFFFFF, 0x40000000, 0x20000000,
                      0x1FFFFFFF, (size - p) // 4, (size - p) // 4 + 1, (size - p) // 8 + 1,
                      size - p - 4, size - p - 3]
    if site.kind == "union_type":
        return [0, 1, 2, 3, 4, 5, 22, 100, 127, 128, 200, 254, 255]
    # scalars: limits of the kind, and values meaningful to the model (sizes, indices)
    vals = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 64, 127, 128, 255, 256, 0xFFFF, 0x7FFF,
            0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 30, 1 << 20,
            size, size - 1, size + 1, size - 4, size // 2, -1, -2, -(1 << 31)]
    if w == 8:
        vals += [1 << 32, 1 << 62, 1 << 63, (1 << 64) - 1, (1 << 64) - 2, (1 << 64) - size,
                 (1 << 63) - 1, size - 16, size - 8]
    if site.elem in ("f32", "f64"):
        f = c.choice([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-45, 3.4e38,
                      -1.0] + ([1e300] if w == 8 else []))
        vals.append(int.from_bytes(struct.pack("<f" if w == 4 else "<d", f), "little"))
    return vals


_ELEM_SIZE = {"string": 1, "vector_string": 4, "vector_table": 4}


def worst_values(site: Site, size: int, sites: "list[Site]") -> "list[int]":
    """The values that break readers most often at ``site``, for systematic sweeps:
    for an offset, itself (0), past the end, its own table and every kind of other
    structure; for a length, exactly to the end of the file and half of that; for a
    vtable entry, each of the first eight field positions; for a scalar, the limits."""
    p = site.pos
    if site.kind in ("root", "uoffset"):
        out = [0, 0xFFFFFFFF, 0x7FFFFFFF, size - p, size - p - 4, -4]
        if site.owner >= 0:
            out.append(site.owner - p)
        seen = set()
        for s in sites:  # one target of every kind of structure, wrong type included
            key = (s.kind, s.elem)
            if s.kind in ("soffset", "length") and key not in seen and s.pos > p:
                seen.add(key)
                out.append(s.pos - p)
        return out
    if site.kind == "soffset":
        return [0, -2, 2, -4, 4, 0x7FFFFFFF, -0x80000000, p - size, p]
    if site.kind in ("vtable_size", "table_size"):
        return [0, 2, 3, 4, 0xFFFF]
    if site.kind == "vtable_entry":
        return [0, 1, 2, 3, 0xFFFF] + list(range(4, 36, 4))
    if site.kind == "length":
        k = _SCALAR_SIZE.get(site.elem) or _ELEM_SIZE.get(site.elem, 4)
        fit = (size - p - 4) // k
        return [0xFFFFFFFF, 0x7FFFFFFF, 0x40000000, fit, fit + 1, fit // 2, 0x10000]
    if site.kind == "union_type":
        return [0, 1, 2, 3, 7, 100, 255]
    return [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, size, size + 1,
            (1 << 64) - 1, (1 << 63), (1 << 64) - size, 1 << 31]


def _plant(d: bytearray, site: Site, value: int) -> None:
    v = _u(value, site.width)
    d[site.pos:site.pos + site.width] = v.to_bytes(site.width, "little")


def mutate(data: bytes, sites: "list[Site]", c: Chooser, kind: "str | None" = None,
           donors: "list[bytes]" = ()) -> "tuple[bytes, str]":
    """One damaged copy of ``data`` and a line describing the damage."""
    kind = kind or c.choice(KINDS)
    d = bytearray(data)
    n = len(d)
    if kind == "multi":
        notes = []
        out = data
        for _ in range(c.int(2, 3)):
            k = c.choice([k for k in KINDS if k not in ("multi", "insert", "delete",
                                                         "truncate")])
            out, note = mutate(out, sites, c, k, donors)
            notes.append(note)
        return out, " + ".join(notes)
    if kind == "flip":
        notes = []
        for _ in range(c.int(1, 4)):
            p, v = c.int(0, n - 1), c.int(0, 255)
            d[p] = v
            notes.append(f"{p}={v}")
        return bytes(d), "flip " + ",".join(notes)
    if kind == "bitflip":
        p, b = c.int(0, n - 1), c.int(0, 7)
        d[p] ^= 1 << b
        return bytes(d), f"bitflip byte {p} bit {b}"
    if kind == "truncate":
        if sites and c.int(0, 1):
            s = c.choice(sites)
            cut = max(0, min(n - 1, s.pos + c.int(-1, s.width)))
        else:
            cut = c.int(0, n - 1)
        return bytes(d[:cut]), f"truncate to {cut} of {n}"
    if kind in ("plant", "loop", "self_vtable") and sites:
        if kind == "loop":
            cands = [s for s in sites if s.kind == "uoffset" and s.elem in ("table",
                                                                             "union")]
            s = c.choice(cands or sites)
            goal = c.choice(s.ancestors + (s.owner,)) if s.ancestors or s.owner >= 0 \
                else s.pos
            value = goal - s.pos
            note = f"loop {s.name}@{s.pos} -> table at {goal}"
        elif kind == "self_vtable":
            cands = [s for s in sites if s.kind == "soffset"]
            s = c.choice(cands or sites)
            value = c.choice([0, -2, 2, 4, -4]) if s.kind == "soffset" else 0
            note = f"vtable of {s.name}@{s.pos} at table+{-value}"
        else:
            kinds = sorted({s.kind for s in sites})
            want = c.choice(kinds)
            s = c.choice([s for s in sites if s.kind == want])
            value = c.choice(_values_for(s, n, c, sites))
            note = f"plant {_u(value, s.width):#x} at {s.kind} {s.name}@{s.pos}"
        _plant(d, s, value)
        return bytes(d), note
    if kind in ("share_table", "share_vector") and sites:
        elems = ("table",) if kind == "share_table" else \
            ("vector", "string", "vector_string", "vector_table")
        # the elements of one vector of tables all name one table, or one field of many
        # tables (every tensor's shape or name, every subgraph's tensors) names one vector
        groups = [g for g in _groups(sites, elems)
                  if (kind == "share_table") == _INDEX.search(g[0].name.rsplit(".", 1)[-1])
                  is not None]
        if groups:
            group = c.choice(groups)
            goal, count = _share(d, group, c)
            return bytes(d), f"{kind}: {count} x {_INDEX.sub('[*]', group[0].name)} -> {goal}"
    if kind == "grow_vector" and sites:
        lengths = [s for s in sites if s.kind == "length"]
        if lengths:
            s = c.choice(lengths)
            size = {"string": 1, "vector_table": 4, "vector_string": 4}.get(
                s.elem, _SCALAR_SIZE.get(s.elem, 4))
            most = (n - (s.pos + 4)) // size
            _plant(d, s, most)
            return bytes(d), f"grow_vector {s.name}@{s.pos} to {most} elements"
    if kind in STRUCTURAL or kind == "duplicate" or \
            (kind in ("plant", "loop", "self_vtable") and not sites):
        length = c.int(1, max(1, min(n // 2, c.choice([4, 8, 16, 64, 256, 4096]))))
        a, b = c.int(0, n - length), c.int(0, n - length)
        if c.int(0, 1):
            a, b = a & ~3, b & ~3
        d[b:b + length] = data[a:a + length]
        return bytes(d), f"copy {length} bytes from {a} to {b}"
    if kind == "insert":
        p = c.int(0, n)
        length = c.choice([1, 2, 4, 8, 16, 100])
        chunk = bytes(c.int(0, 255) for _ in range(min(length, 8))) * (length // 8 + 1)
        d[p:p] = chunk[:length]
        return bytes(d), f"insert {length} bytes at {p}"
    if kind == "delete":
        p = c.int(0, n - 1)
        length = min(n - p, c.choice([1, 2, 4, 8, 16, 100]))
        del d[p:p + length]
        return bytes(d), f"delete {length} bytes at {p}"
    if kind == "splice":
        src = c.choice(list(donors)) if donors else data
        length = c.int(1, max(1, min(n, len(src), c.choice([8, 64, 512, 4096]))))
        a, b = c.int(0, len(src) - length), c.int(0, n - length)
        d[b:b + length] = src[a:a + length]
        return bytes(d), f"splice {length} bytes from a donor's {a} to {b}"
    raise ValueError(kind)


# -- touching everything ----------------------------------------------------------------


class NonPackageError(AssertionError):
    """An exception outside the package's family, with the call that raised it."""

    def __init__(self, path: str, error: BaseException):
        super().__init__(f"{path}: {type(error).__name__}: {error}")
        self.path = path
        self.error = error


def _checksum(a: np.ndarray) -> int:
    """Read every byte of an array (so a bad view shows), cheaply."""
    if a.dtype == object:
        return sum(len(x) if isinstance(x, (bytes, str)) else 1 for x in a.reshape(-1))
    if a.size == 0:
        return 0
    flat = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return int(np.bitwise_xor.reduce(flat)) + flat.size


# methods never called generically (life cycle); the rest of the public surface is
_SKIP = {"close"}
_PLANS: dict = {}


def _plan(cls) -> list:
    """The public surface of a class: ``(name, "call")`` for methods callable without
    arguments, ``(name, "attr")`` for properties, slots and class attributes."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = []
        for name in dir(cls):
            if name.startswith("_") or name in _SKIP:
                continue
            static = inspect.getattr_static(cls, name, None)
            if isinstance(static, (staticmethod, classmethod, type)):
                continue
            if inspect.isfunction(static):
                try:
                    params = list(inspect.signature(static).parameters.values())[1:]
                except (TypeError, ValueError):
                    continue
                if not any(q.default is q.empty and q.kind in (
                        q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)
                        for q in params):
                    plan.append((name, "call"))
            elif not callable(static) or isinstance(static, property):
                plan.append((name, "attr"))
        _PLANS[cls] = plan
    return list(plan)


class _Exerciser:
    def __init__(self, deadline: float):
        self.errors: list[str] = []  # the first messages (exceptions would keep frames)
        self.n_errors = 0
        self.seen: set[int] = set()
        self.keep: list = []  # keep visited objects alive: their ids stay unique
        self.output_bytes = 0  # bytes of the arrays handed out that are not views of the file
        self.data_u8 = None  # the model's bytes, to tell views from new arrays
        self.deadline = deadline
        self.calls = 0
        self.outcomes: "dict | None" = None  # path -> summary of the result, when asked

    def call(self, path: str, fn, *args, **kw):
        """Run ``fn``: a package error is recorded; anything else is wrapped."""
        self.calls += 1
        try:
            value = fn(*args, **kw)
            if self.outcomes is not None:
                self.outcomes[path] = ("value", _summary(value))
            return True, value
        except TFLiteWeightsError as e:
            self.n_errors += 1
            if len(self.errors) < 20:
                self.errors.append(f"{path}: {e}")
            if self.outcomes is not None:
                self.outcomes[path] = ("error", type(e).__name__, str(e))
            return False, None
        except NonPackageError:
            raise
        except RecursionError as e:  # keep the traceback short
            raise NonPackageError(path, e) from None
        except Exception as e:  # noqa: BLE001 - the point of the exercise
            raise NonPackageError(path, e) from e

    def visit(self, obj, path: str, depth: int = 0) -> None:
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return
        if id(obj) in self.seen or depth > 12:
            return
        self.seen.add(id(obj))
        self.keep.append(obj)
        if isinstance(obj, np.ndarray):
            self.call(path + ".<checksum>", _checksum, obj)
            if self.data_u8 is None or not np.may_share_memory(obj, self.data_u8):
                self.output_bytes += obj.nbytes
            return
        if isinstance(obj, np.generic):
            return
        if isinstance(obj, Mapping) or type(obj).__module__.startswith("tflite_weights"):
            self.obj(obj, path, depth)
        if isinstance(obj, Mapping):
            ok, items = self.call(path + ".items()", lambda: list(obj.items()))
            for k, v in items or ():
                self.visit(v, f"{path}[{k!r}]", depth + 1)
            return
        if isinstance(obj, (list, tuple, set, frozenset)) or inspect.isgenerator(obj):
            ok, items = self.call(path + "<iterate>", list, obj)
            for i, v in enumerate(items or ()):
                self.visit(v, f"{path}[{i}]", depth + 1)

    def obj(self, obj, path: str, depth: int) -> None:
        self.call(path + "<repr>", repr, obj)
        for name, how in _plan(type(obj)) + [(n, "attr") for n in getattr(obj, "__dict__", ())
                                              if not n.startswith("_")]:
            if time.perf_counter() > self.deadline:
                return
            p = f"{path}.{name}"
            if how == "call":
                ok, value = self.call(p + "()", getattr(obj, name))
                if ok and inspect.isgenerator(value):
                    ok, value = self.call(p + "()<iterate>", list, value)
            else:
                ok, value = self.call(p, getattr, obj, name)
            if ok and (not callable(value) or isinstance(value, Mapping)):
                self.visit(value, p, depth + 1)
        self.specific(obj, path, depth)

    def specific(self, obj, path, depth) -> None:
        """The calls that take arguments."""
        if isinstance(obj, tw.Model):
            m = obj
            self.call(path + ".__len__", len, m)
            ok, keys = self.call(path + ".keys()", m.keys)
            for k in list(dict.fromkeys(keys or ()))[:64]:
                self.call(f"{path}[{k!r}]", m.__getitem__, k)
                self.call(f"{path}.__contains__({k!r})", m.__contains__, k)
            self.call(path + ".get(missing)", m.get, "\0no such tensor")
            self.call(path + ".__contains__(1)", m.__contains__, 1)
            ok, n = self.call(path + ".buffer_count", lambda: m.buffer_count)
            for i in (-1, 0, n or 0, (n or 1) - 1, 1 << 40):
                self.call(f"{path}.buffer({i})", m.buffer, i)
            ok, sgs = self.call(path + ".subgraphs", lambda: m.subgraphs)
            for s in range(len(sgs or ()) + 1):
                self.call(f"{path}.tensor(0, subgraph={s})", m.tensor, 0, subgraph=s)
            self.modules(m, path, depth)
        elif isinstance(obj, tw.Subgraph):
            ok, n = self.call(path + ".__len__", len, obj)
            for i in (0, (n or 1) - 1, n or 0, -1):
                self.call(f"{path}.tensor({i})", obj.tensor, i)
            self.call(path + ".tensor(missing)", obj.tensor, "\0no such tensor")
        elif isinstance(obj, tw.Tensor):
            self.call(path + ".unshuffle(force=True)", obj.unshuffle, force=True)
            for fn in (operators.dequantize_fc_weights, operators.is_shuffled_fc_weights):
                kw = {"force": True} if fn is operators.dequantize_fc_weights else {}
                ok, v = self.call(f"operators.{fn.__name__}({path})", fn, obj, **kw)
                if ok:
                    self.visit(v, f"operators.{fn.__name__}({path})", depth + 1)
        elif isinstance(obj, operators.Operator):
            ok, ins = self.call(path + ".inputs", lambda: obj.inputs)
            for i in range(len(ins or ()) + 1):
                self.call(f"{path}.input({i})", obj.input, i)

    def modules(self, m, path, depth) -> None:
        """What takes arguments on the model, and the functions of the package that
        take a model."""
        ok, v = self.call("json.dumps(model.describe())", lambda: json.dumps(m.describe(),
                                                                           default=str))
        ok, v = self.call("variables.init_subgraphs(model)", variables.init_subgraphs, m)
        ok, files = self.call("model.associated_files", lambda: m.associated_files)
        if ok:
            ok, names = self.call("model.associated_files.keys()", lambda: list(files))
            for name in names or ():
                self.call(f"model.associated_files[{name!r}]", files.__getitem__, name)
                self.call(f"model.associated_files.read({name!r})", files.read, name)
                self.call(f"model.associated_files.compressed_size({name!r})",
                          files.compressed_size, name)


def _summary(v):
    """A comparable digest of a value handed out by the package."""
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, _checksum(v))
    if isinstance(v, float):
        return repr(v)
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return v
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, len(v))
    if isinstance(v, Mapping):
        return ("mapping", len(v))
    return type(v).__name__


def outcomes(model) -> "dict[str, tuple]":
    """Every public member of ``model`` and of everything it hands out, called as
    :func:`exercise` does, with a digest of its result: ``("value", digest)`` or
    ``("error", type name, message)``.  Used to compare a model before and after
    ``close()``."""
    ex = _Exerciser(float("inf"))
    ex.outcomes = {}
    ex.visit(model, "model")
    return ex.outcomes


def exercise(model, data=None, *, deadline: float = float("inf"), stats: "dict | None" = None
             ) -> "tuple[int, list[str]]":
    """Touch everything the public API offers on ``model``; return how many package
    errors were met and the first messages.  Raises :class:`NonPackageError` for any
    other exception.  ``data`` (the model's bytes) also goes through ``verify.verify``.
    ``stats``, when given, receives ``output_bytes``: the bytes of the arrays handed
    out that are not views of the file (what the memory bound allows beyond it)."""
    ex = _Exerciser(deadline)
    try:
        ex.data_u8 = np.frombuffer(model.data, np.uint8)
    except TFLiteWeightsError:
        pass
    if data is not None:
        ok, defects = ex.call("verify.verify(data)", verify.verify, data)
        if ok:
            for d in defects:
                str(d)
        ex.call("verify.verify(model)", verify.verify, model)
    ex.visit(model, "model")
    if stats is not None:
        stats["output_bytes"] = ex.output_bytes
    ex.data_u8 = None
    return ex.n_errors, ex.errors


# -- one case ---------------------------------------------------------------------------


#: The cost rule (docs/robustness.md, "The cost bound"): an operation on a file may
#: allocate at most MEMORY_FLOOR + MEMORY_RATIO x the file's size, plus the arrays it
#: hands out (values, dequantized values, densified sparse tensors: what was asked
#: for).  The floor covers fixed costs (imports, caches); 16 bytes per byte of file
#: covers the Python objects a file's tables become (a tensor object and its entries
#: in the columns per 4-byte offset); temporaries are computed in chunks, so they
#: do not scale with the arrays.  The exercise keeps everything it is handed alive,
#: so its peak is measured against the sum.
MEMORY_RATIO = 16
MEMORY_FLOOR = 64 << 20


def memory_bound(size: int, output_bytes: int = 0) -> int:
    return MEMORY_FLOOR + MEMORY_RATIO * size + output_bytes


@dataclasses.dataclass
class CaseResult:
    note: str
    size: int
    seconds: float = 0.0
    thorough_seconds: float = 0.0
    peak: int = 0
    truncated: bool = False
    messages: list = dataclasses.field(default_factory=list)
    opened: bool = False
    package_errors: int = 0
    failure: "str | None" = None  # None: the case passed
    peak_bound: int = 0  # the memory bound the peak was held to
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


def read_all(model, data: "bytes | None" = None) -> int:
    """What an application does with a model, as it would do it: list every tensor
    of every subgraph with its quantization and read its values (skipping a tensor
    at its first error), decode operators, signatures, weights and metadata, and
    verify the bytes.  Returns the number of package errors met; any other
    exception propagates.  The clock of :func:`run_case` runs on this pass."""
    errors = 0

    def quiet(fn, *args):
        nonlocal errors
        try:
            return fn(*args)
        except TFLiteWeightsError:
            errors += 1
            return None

    if data is not None:
        quiet(verify.verify, data)
    quiet(lambda: (model.description, model.metadata, model.version))
    quiet(model.describe)
    quiet(lambda: {k: (s.inputs, s.outputs) for k, s in model.signatures.items()})
    quiet(lambda: [t.name for _, _, t in model.weights()])
    for sg in quiet(lambda: model.subgraphs) or ():
        for t in quiet(lambda: sg.tensors) or ():
            try:
                t.name, t.shape, t.type, t.buffer, t.shape_signature, t.is_variable
                q = t.quantization
                if q is not None:
                    q.scale, q.zero_point, q.quantized_dimension
                if t.has_data:
                    t.raw()
                    _checksum(t.numpy())
                    if q is not None or t.type in ("FLOAT16", "BFLOAT16"):
                        _checksum(t.dequantize())
            except TFLiteWeightsError:
                errors += 1
        for op in quiet(lambda: sg.operators) or ():
            try:
                op.opcode, op.inputs, op.outputs, op.options, op.input_tensors
            except TFLiteWeightsError:
                errors += 1
    return errors


def _attempt(data: bytes, path: "str | None", r: CaseResult, thorough: bool,
             deadline: float) -> int:
    """Open and read once (with :func:`read_all`, or with :func:`exercise` when
    ``thorough``); set ``r.failure`` on a broken rule.  Returns the bytes of the arrays
    handed out (see :func:`exercise`).  Warnings are errors here: under
    ``-W error`` a numpy warning would reach the caller as an exception."""
    output = 0
    try:
        with warnings.catch_warnings():
            # a warning (numpy's overflow, ...) would be an exception under -W error
            warnings.simplefilter("error")
            output = _attempt_inner(data, path, r, thorough, deadline)
    except NonPackageError as e:
        r.failure = f"{type(e.error).__name__} in {e.path}"
        r.detail = "".join(traceback.format_exception(e.error))[-4000:]
    except Exception as e:  # noqa: BLE001 - from open(), verify() or read_all()
        r.failure = f"{type(e).__name__} in {'open(), verify()' if not r.opened else 'read_all'}"
        r.detail = traceback.format_exc()[-4000:]
    return output


def _attempt_inner(data, path, r, thorough, deadline) -> int:
    model = None
    output = 0
    try:
        try:
            model = tw.open(path if path is not None else data)
            r.opened = True
        except TFLiteWeightsError:
            r.package_errors = 1
            verify.verify(data)
        if model is not None:
            if thorough:
                stats: dict = {}
                n, r.messages = exercise(model, data, deadline=deadline, stats=stats)
                output = stats.get("output_bytes", 0)
            else:
                n = read_all(model, data)
            r.package_errors = max(r.package_errors, n)
    finally:
        if model is not None:
            try:
                model.close()
            except Exception:  # noqa: BLE001
                if r.failure is None:
                    r.failure = "exception in close()"
                    r.detail = traceback.format_exc()[-4000:]
    return output


def run_case(data: bytes, note: str = "", *, time_limit: float = 2.0,
             measure_memory: bool = True, thorough: bool = True,
             path: "str | None" = None) -> CaseResult:
    """Open ``data`` (or the file at ``path`` holding it) and report whether a rule
    broke.  Two passes: :func:`read_all` on the clock (``time_limit`` seconds), then
    :func:`exercise`, which calls every public member, under ``tracemalloc`` when
    ``measure_memory`` (tracing slows Python code several times over, so that pass
    is not timed; it stops at 10 x ``time_limit`` and sets ``truncated``)."""
    r = CaseResult(note, len(data))
    t0 = time.process_time()  # CPU time: other processes on the machine do not count
    output = _attempt(data, path, r, False, float("inf"))
    r.seconds = time.process_time() - t0
    if r.failure is None and r.seconds > time_limit:
        r.failure = f"took {r.seconds:.2f} s (limit {time_limit} s)"
    if r.failure is not None or not (thorough or measure_memory):
        return r
    started = tracemalloc.is_tracing()
    if measure_memory and not started:
        tracemalloc.start(1)
    try:
        if measure_memory:
            tracemalloc.clear_traces()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        t1 = time.perf_counter()
        deadline = t1 + 10 * time_limit
        output = max(output, _attempt(data, path, r, thorough, deadline))
        r.thorough_seconds = time.perf_counter() - t1
        if measure_memory:
            r.peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if measure_memory and not started:
            tracemalloc.stop()
    r.truncated = r.thorough_seconds > 10 * time_limit  # the deadline cut it short
    bound = r.peak_bound = memory_bound(len(data), output)
    if r.failure is None and r.peak > bound:
        r.failure = (f"peak allocation {r.peak / 2**20:.1f} MiB for a {len(data)}-byte "
                     f"file (bound {bound / 2**20:.1f} MiB)")
    return r


# -- the interpreter, out of process ---------------------------------------------------

_WORKER = r"""
import json, sys, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from ai_edge_litert.interpreter import Interpreter, OpResolverType
print("ready", flush=True)
for line in sys.stdin:
    path = line.rstrip("\n")
    out = {"path": path}
    try:
        it = Interpreter(model_path=path, experimental_op_resolver_type=
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        out["stage"] = "allocate"
        try:
            it.allocate_tensors()
            out["status"] = "accepted"
        except Exception as e:
            out["status"] = "refused"
            out["message"] = str(e)
    except Exception as e:
        out["stage"] = "build"
        out["status"] = "refused"
        out["message"] = f"{type(e).__name__}: {e}"
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


def classify_interpreter(result: dict) -> str:
    """``accepted``; ``invalid_flatbuffer`` (the flatbuffers verifier or the
    identifier check refused the bytes); ``invalid_model`` (the interpreter builder
    refused a rule of the model); ``operators`` (an operator could not be resolved
    or prepared, or allocation failed); ``wrapper`` (the file was built, the Python
    wrapper failed on its contents); ``crash`` or ``timeout``."""
    status = result.get("status")
    if status in ("crash", "timeout", "accepted"):
        return status
    msg = result.get("message", "")
    if result.get("stage") == "allocate":
        return "operators"
    if ("not a valid Flatbuffer" in msg or "model identifier" in msg
            or "Could not open" in msg and "valid" in msg):
        return "invalid_flatbuffer"
    if "codec can't decode" in msg or msg.startswith(("UnicodeDecodeError", "TypeError")):
        return "wrapper"
    if any(k in msg for k in ("resolve", "Didn't find op", "Encountered unresolved",
                              "failed to prepare", "Op builtin_code out of range",
                              "custom op", "Registration failed")):
        return "operators"
    return "invalid_model"


class InterpreterPool:
    """One child process running the LiteRT interpreter over files, restarted when
    a file crashes it."""

    def __init__(self, timeout: float = 20.0):
        self.timeout = timeout
        self.proc = None

    def _start(self):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env)
        line = self._readline(60.0)
        if line != "ready\n":
            raise RuntimeError(f"interpreter worker did not start: {line!r}")

    def _readline(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        return self.proc.stdout.readline()

    def check(self, path: str) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        line = self._readline(self.timeout)
        if line:
            out = json.loads(line)
        else:
            status = "timeout" if line is None else "crash"
            if line is None:
                self.proc.kill()
            rc = self.proc.wait()
            out = {"path": path, "status": status, "message": f"worker exit {rc}"}
            self.proc = None
        out["class"] = classify_interpreter(out)
        return out

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def verify_refuses(data: bytes) -> "tuple[bool, str]":
    """Whether ``verify.verify`` finds an error defect, and the first one."""
    from tflite_weights import verify
    errors = verify.errors_of(verify.verify(data))
    return bool(errors), str(errors[0]) if errors else ""


# -- models to damage ---------------------------------------------------------------------


def synthetic_models() -> "dict[str, bytes]":
    """Small models built with the schema's generated code that between them use every
    part of the format the reader decodes."""
    from tests.support.builders import (ModelBuilder, S, conversion_metadata_bytes,
                          support_metadata_bytes)

    rng = np.random.default_rng(5)
    out = {}

    # operators, options, several subgraphs, signatures, metadata, many tensor types
    b = ModelBuilder()
    sg = b.subgraph("main")
    x = sg.tensor("x", "FLOAT32", [1, 4], shape_signature=[-1, 4])
    w = sg.tensor("w", "INT8", [3, 4], rng.integers(-9, 9, (3, 4)).astype(np.int8),
                  quant=dict(scale=[0.1, 0.2, 0.3], zero_point=[0, 0, 0]))
    bias = sg.tensor("bias", "INT32", [3], np.arange(3, dtype=np.int32),
                     quant=dict(scale=[0.01], zero_point=[0]))
    h = sg.tensor("h", "FLOAT32", [1, 3])
    fc = S.FullyConnectedOptionsT()
    fc.fusedActivationFunction = 1
    sg.op("FULLY_CONNECTED", [x, w, bias], [h], options=fc,
          options_type=S.BuiltinOptions.FullyConnectedOptions)
    f16 = sg.tensor("f16", "FLOAT16", [3], np.ones(3, np.float16))
    f32 = sg.tensor("f16_deq", "FLOAT32", [3])
    sg.op("DEQUANTIZE", [f16], [f32])
    y = sg.tensor("y", "FLOAT32", [1, 3])
    sg.op("ADD", [h, f32], [y], options=S.AddOptionsT(),
          options_type=S.BuiltinOptions.AddOptions)
    sg.tensor("i4", "INT4", [5], bytes([0x21, 0x43, 0x05]),
              quant=dict(scale=[0.5], zero_point=[1]))
    sg.tensor("i2", "INT2", [2, 4], bytes([0x1B, 0xE4]), quant=dict(scale=[0.5],
                                                                    zero_point=[0]))
    sg.tensor("s", "STRING", [2], _strings([b"ab", b"c"]))
    sg.tensor("off", "FLOAT32", [4], np.arange(4, dtype=np.float32), offset=True)
    sg.tensor("state", "FLOAT32", [1, 3], is_variable=True)
    sg.tensor("c64", "COMPLEX64", [1], np.ones(1, np.complex64))
    sg.op("CUSTOM", [y], [y], custom_code="Mine", custom_options=b"\x01\x02abc")
    sg.sg.inputs = [x]
    sg.sg.outputs = [y]
    body = b.subgraph("body")
    bx = body.tensor("bx", "FLOAT32", [1, 3])
    by = body.tensor("by", "FLOAT32", [1, 3])
    body.op("RELU", [bx], [by])
    body.sg.inputs, body.sg.outputs = [bx], [by]
    b.signature("serving_default", 0, {"x": x}, {"y": y})
    b.add_metadata("min_runtime_version", b"2.3.0".ljust(16, b"\0"))
    b.add_metadata("CONVERSION_METADATA", conversion_metadata_bytes())
    b.add_metadata("TFLITE_METADATA", support_metadata_bytes(
        name="m", description="d", version="1", author="a", license="l",
        files=[("labels.txt", "labels", 2)]))
    out["graph"] = b.finish(trailing=_zip({"labels.txt": b"cat\ndog\n" * 8,
                                           "vocab.txt": b"a b c"}))

    # sparse, blockwise, shuffled, LUT-compressed
    b = ModelBuilder()
    sg = b.subgraph("main")
    # [[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]] in CSR
    sg.tensor("sparse", "INT8", [4, 4], np.array([1, 2, 3, 4, 5, 6], np.int8),
              sparsity=dict(traversal_order=[0, 1], dim_metadata=[
                  ("DENSE", 4), ("CSR", [0, 3, 4, 5, 6], [0, 2, 3, 1, 2, 3], "u8")]),
              quant=dict(scale=[0.5], zero_point=[0]))
    sc = sg.tensor("scales", "FLOAT16", [2, 2], np.ones(4, np.float16))
    sg.tensor("bw", "INT4", [2, 64], rng.integers(0, 255, 64).astype(np.uint8),
              quant=dict(blockwise=dict(scales=sc, zero_points=-1, block_size=32)))
    xi = sg.tensor("xi", "INT16", [1, 16])
    ws = sg.tensor("ws", "UINT8", [4, 16], rng.integers(0, 255, 64).astype(np.uint8),
                   quant=dict(scale=[0.1], zero_point=[128]))
    o = sg.tensor("o", "INT16", [1, 4])
    fc = S.FullyConnectedOptionsT()
    fc.weightsFormat = 1
    sg.op("FULLY_CONNECTED", [xi, ws, -1], [o], options=fc,
          options_type=S.BuiltinOptions.FullyConnectedOptions)
    lut = sg.tensor("lut", "INT8", [6], bytes([0b00011011, 0b00010000]),
                    quant=dict(scale=[1.0], zero_point=[0]))
    vb = b.buffer(np.array([7, -7, 3, 0], np.int8))
    b.add_metadata("COMPRESSION_METADATA", _lut_metadata(0, lut, vb, 2))
    out["features"] = b.finish()
    return out


def _zip(files: dict) -> bytes:
    """A zip archive, as TFLite Support appends associated files to a model."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, (name, content) in enumerate(files.items()):
            z.writestr(name, content, zipfile.ZIP_DEFLATED if i % 2 == 0 else
                       zipfile.ZIP_STORED)
    return buf.getvalue()


def _strings(items):
    n = len(items)
    offsets, pos = [], 4 * (n + 2)
    for s in items:
        offsets.append(pos)
        pos += len(s)
    offsets.append(pos)
    return struct.pack(f"<{n + 2}i", n, *offsets) + b"".join(items)


def _lut_metadata(subgraph: int, tensor: int, value_buffer: int, bits: int) -> bytes:
    import flatbuffers
    b = flatbuffers.Builder(0)
    b.StartObject(3)
    b.PrependInt32Slot(0, tensor, 0)
    b.PrependUint32Slot(1, value_buffer, 0)
    b.PrependUint8Slot(2, bits, 0)
    lt = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(lt)
    vec = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vec, 0)
    sg = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(1, sgs, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def corpus_models(folder: "str | None", max_size: int = 1 << 20) -> "dict[str, bytes]":
    """The sound models of a corpus folder (those this reader and verify accept)."""
    out = {}
    if not folder or not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if not name.endswith((".tflite", ".bin")) or os.path.getsize(p) > max_size:
            continue
        with open(p, "rb") as f:
            data = f.read()
        try:
            tw.open(data).close()
        except TFLiteWeightsError:
            continue
        out[name] = data
    return out
