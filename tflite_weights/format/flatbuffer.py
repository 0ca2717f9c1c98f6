"""Bounds-checked reads of a flatbuffer held in one buffer (an mmap, bytes, ...).

This module owns the bytes: it is the only place that turns a position into a
value, and every position, length and offset is checked against the size of the
data before anything is read.  It knows nothing of TFLite; the schema module
says which slot holds what.

Flatbuffer layout, as far as a reader needs it (see docs/format.md):

* the root is a ``uoffset`` (uint32) at byte 0 to the root table;
* a table starts with an ``soffset`` (int32): ``vtable = table - soffset``;
* a vtable is ``uint16 vtable_size, uint16 table_size, uint16 field_offset[n]``;
  field *i* is absent when ``i >= n`` or its offset is 0;
* a field holding a table, vector or string stores a ``uoffset`` relative to
  the field's own position; a vector (or string) starts with a uint32 count.

Reads are driven by the schema, never by following offsets in a loop, so a
file whose offsets point backwards or at themselves cannot make a read hang;
every count is checked against the bytes that remain, so a hostile length
cannot make it allocate.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ClosedModelError, InvalidModelError

__all__ = ["FlatBuffer", "Table", "TableVector", "Bulk", "empty_array", "vtable_fits",
           "table_fits"]

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_U16x2 = struct.Struct("<HH")
_I16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")

#: struct for each scalar kind of the schema: (unpacker, size)
SCALARS = {
    "bool": (_U8, 1),
    "i8": (_I8, 1),
    "u8": (_U8, 1),
    "i16": (_I16, 2),
    "u16": (_U16, 2),
    "i32": (_I32, 4),
    "u32": (_U32, 4),
    "i64": (_I64, 8),
    "u64": (_U64, 8),
    "f32": (_F32, 4),
    "f64": (_F64, 8),
}

#: numpy dtype of a vector of each scalar kind (little-endian, as stored)
VECTOR_DTYPES = {
    "bool": np.dtype("u1"),
    "i8": np.dtype("i1"),
    "u8": np.dtype("u1"),
    "i16": np.dtype("<i2"),
    "u16": np.dtype("<u2"),
    "i32": np.dtype("<i4"),
    "u32": np.dtype("<u4"),
    "i64": np.dtype("<i8"),
    "u64": np.dtype("<u8"),
    "f32": np.dtype("<f4"),
    "f64": np.dtype("<f8"),
}

#: struct format character of each scalar kind (standard sizes, as used with "<")
_STRUCT_CHARS = {"bool": "B", "i8": "b", "u8": "B", "i16": "h", "u16": "H", "i32": "i",
                 "u32": "I", "i64": "q", "u64": "Q", "f32": "f", "f64": "d"}

_VTABLE_STRUCTS: dict[int, struct.Struct] = {}


def _vtable_struct(n: int) -> struct.Struct:
    s = _VTABLE_STRUCTS.get(n)
    if s is None:
        s = _VTABLE_STRUCTS[n] = struct.Struct("<%dH" % n)
    return s


_EMPTY: dict[np.dtype, np.ndarray] = {}


def empty_array(dtype) -> np.ndarray:
    """A shared, read-only, zero-length array of ``dtype``."""
    dtype = np.dtype(dtype)
    a = _EMPTY.get(dtype)
    if a is None:
        a = np.empty(0, dtype)
        a.flags.writeable = False
        _EMPTY[dtype] = a
    return a


def vtable_fits(vt, size):
    """Rule 1 of a table: its vtable's two header fields lie inside the data.  Works on
    ints and, element-wise, on numpy arrays (the bulk reads use the same rule)."""
    return (vt >= 0) & (vt <= size - 4)


def table_fits(pos, vt, vsize, tsize, size):
    """Rule 2 of a table: the vtable declares an even size of at least 4 bytes within
    the data, and the table's own size (at least 4) fits in the data.  Works on ints
    and on numpy arrays."""
    return ((vsize >= 4) & (vsize % 2 == 0) & (vt + vsize <= size)
            & (tsize >= 4) & (pos + tsize <= size))


class FlatBuffer:
    """A window ``[base, base + size)`` of a buffer, read as one flatbuffer.

    ``data`` must be a read-only buffer object (mmap opened for reading, bytes,
    or a read-only memoryview): numpy arrays handed out are views over it.
    Positions passed to and returned by the methods are relative to ``base``.
    ``label`` names the flatbuffer in error messages ("model", "metadata
    'CONVERSION_METADATA'", ...).
    """

    __slots__ = ("data", "base", "size", "label", "u8", "closed", "_counted", "_ints")

    def __init__(self, data, base: int = 0, size: int | None = None, label: str = "model"):
        self.data = data
        self.base = base
        self.size = (len(data) - base) if size is None else size
        self.label = label
        self.closed = False
        self._counted: dict = {}  # (start, n) -> unreadable_tables(start, n)
        # long integer vectors read as tuples, by (start, count, kind): a vector shared
        # by many tables (one shape for thousands of tensors) is decoded once
        self._ints: dict = {}
        # Every array handed out is a view of this one: it holds a buffer export of
        # ``data``, so an mmap cannot be unmapped while any view is alive.
        self.u8 = np.frombuffer(data, np.uint8, self.size, base)

    def close(self) -> None:
        """Forget the data: every later read raises ClosedModelError."""
        self.closed = True
        self._ints = {}
        self.size = 0
        self.u8 = None
        self.data = None

    # -- errors -------------------------------------------------------------
    def error(self, where: str, what: str) -> InvalidModelError:
        if self.closed:
            return ClosedModelError(f"{self.label}: the model is closed")
        return InvalidModelError(f"{self.label}: {where}: {what}")

    def _need(self, pos: int, n: int, where: str, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise self.error(
                where,
                f"{what} needs {n} bytes at byte {pos}, beyond the end of the data "
                f"({self.size} bytes)",
            )

    # -- primitives -------------------------------------------------------------
    def u32(self, pos: int, where: str) -> int:
        if pos < 0 or pos + 4 > self.size:
            self._need(pos, 4, where, "an offset")
        return _U32.unpack_from(self.data, self.base + pos)[0]

    def scalar(self, pos: int, kind: str, where: str):
        st, n = SCALARS[kind]
        if pos < 0 or pos + n > self.size:
            self._need(pos, n, where, f"a {kind} value")
        return st.unpack_from(self.data, self.base + pos)[0]

    def array(self, pos: int, dtype, count: int, where: str) -> np.ndarray:
        """A read-only numpy view of ``count`` elements of ``dtype`` at ``pos``."""
        dtype = np.dtype(dtype)
        if count == 0:
            return empty_array(dtype)
        nbytes = count * dtype.itemsize
        if pos < 0 or pos + nbytes > self.size:
            self._need(pos, nbytes, where, f"{count} x {dtype.itemsize}-byte elements")
        return self.u8[pos:pos + nbytes].view(dtype)

    def bytes_at(self, pos: int, n: int, where: str) -> bytes:
        self._need(pos, n, where, "a byte string")
        b = self.base + pos
        return bytes(self.data[b:b + n])

    # -- structure -------------------------------------------------------------
    def root(self, identifier: bytes | None = None) -> "Table":
        """The root table; checks the optional 4-byte file identifier first."""
        if self.size < 8:
            raise self.error(
                "header", f"{self.size} bytes is too short for a flatbuffer (at least 8 needed)"
            )
        if identifier is not None:
            got = self.bytes_at(4, 4, "file identifier")
            if got != identifier:
                raise self.error(
                    "header",
                    f"file identifier is {got!r} at bytes 4-7, expected {identifier!r}",
                )
        return self.table(self.u32(0, "root offset"), "root table")

    def table(self, pos: int, where: str) -> "Table":
        size = self.size
        if pos < 0 or pos + 4 > size:
            raise self.error(
                where, f"table at byte {pos} lies outside the data ({size} bytes)"
            )
        data = self.data
        base = self.base
        vt = pos - _I32.unpack_from(data, base + pos)[0]
        if not vtable_fits(vt, size):
            raise self.error(
                where, f"table at byte {pos} has its vtable at byte {vt}, outside the data "
                f"({size} bytes)"
            )
        vsize, tsize = _U16x2.unpack_from(data, base + vt)
        if not table_fits(pos, vt, vsize, tsize, size):
            if vsize < 4 or vsize & 1 or vt + vsize > size:
                raise self.error(
                    where, f"vtable at byte {vt} declares {vsize} bytes, which is not an even "
                    f"size of at least 4 within the data ({size} bytes)"
                )
            raise self.error(
                where, f"table at byte {pos} declares {tsize} bytes, which do not fit in the "
                f"data ({size} bytes)"
            )
        n = (vsize - 4) >> 1
        offsets = _vtable_struct(n).unpack_from(data, base + vt + 4) if n else ()
        return Table(self, pos, vt, tsize, offsets, where)

    def unreadable_tables(self, start: int, n: int) -> "tuple[int, int]":
        """How many of the ``n`` table offsets at ``start`` do not lead to a table
        that :meth:`table` would accept, and the index of the first (-1: none).
        Vectorised: one pass of numpy over the offsets, done once per vector (callers
        that do not keep what they built from a vector ask again on every use)."""
        key = (start, n)
        got = self._counted.get(key)
        if got is None:
            ok = np.ones(n, bool)
            Bulk(self).tables(start + 4 * np.arange(n, dtype=np.int64), ok, ())
            bad = np.flatnonzero(~ok)
            got = self._counted[key] = (int(bad.size), (int(bad[0]) if bad.size else -1))
        return got


#: integer vectors this long are kept once decoded (see ``FlatBuffer._ints``)
_SHARED_VECTOR = 16

#: damaged entries a vector of tables may hold and still be handed out (each then
#: fails alone when used); see :meth:`Table.tables`
DAMAGED_ENTRIES_TOLERATED = 8


class Table:
    """One table of a flatbuffer: its position and its vtable, already checked.

    Field readers take the field's slot number (its index in the schema
    declaration; a union takes two slots, type then value).  Every read is
    checked against the data's size and raises :class:`InvalidModelError`
    naming ``where`` and the field.
    """

    __slots__ = ("fb", "pos", "vt", "tsize", "offsets", "where")

    def __init__(self, fb: FlatBuffer, pos: int, vt: int, tsize: int, offsets: tuple, where: str):
        self.fb = fb
        self.pos = pos
        self.vt = vt
        self.tsize = tsize
        self.offsets = offsets
        self.where = where

    def __repr__(self) -> str:
        return f"<Table {self.where} at byte {self.pos}>"

    def has(self, slot: int) -> bool:
        offsets = self.offsets
        return slot < len(offsets) and offsets[slot] != 0

    def field_pos(self, slot: int) -> int:
        """Position of the field's inline value, or 0 when the field is absent."""
        offsets = self.offsets
        if slot < len(offsets):
            o = offsets[slot]
            if o:
                return self.pos + o
        return 0

    def error(self, name: str, what: str) -> InvalidModelError:
        return self.fb.error(f"{self.where}.{name}", what)

    # -- scalars -------------------------------------------------------------
    def scalar(self, slot: int, kind: str, default, name: str = "field"):
        offsets = self.offsets
        if slot >= len(offsets) or not offsets[slot]:
            return default
        p = self.pos + offsets[slot]
        st, n = SCALARS[kind]
        fb = self.fb
        if p + n > fb.size:
            raise self.error(
                name, f"{kind} value at byte {p} lies beyond the end of the data ({fb.size} bytes)"
            )
        return st.unpack_from(fb.data, fb.base + p)[0]

    # -- references -------------------------------------------------------------
    def _target(self, slot: int, name: str) -> int:
        """Position that the offset stored in ``slot`` points at, or -1 if absent."""
        offsets = self.offsets
        if slot >= len(offsets) or not offsets[slot]:
            return -1
        p = self.pos + offsets[slot]
        fb = self.fb
        if p + 4 > fb.size:
            raise self.error(
                name, f"offset at byte {p} lies beyond the end of the data ({fb.size} bytes)"
            )
        return p + _U32.unpack_from(fb.data, fb.base + p)[0]

    def table(self, slot: int, name: str) -> "Table | None":
        t = self._target(slot, name)
        if t < 0:
            return None
        return self.fb.table(t, f"{self.where}.{name}")

    def vector(self, slot: int, elem_size: int, name: str) -> "tuple[int, int] | None":
        """``(start, count)`` of a vector, with ``count * elem_size`` bytes checked."""
        t = self._target(slot, name)
        if t < 0:
            return None
        fb = self.fb
        if t + 4 > fb.size:
            raise self.error(
                name, f"vector length at byte {t} lies beyond the end of the data ({fb.size} bytes)"
            )
        n = _U32.unpack_from(fb.data, fb.base + t)[0]
        start = t + 4
        if n * elem_size > fb.size - start:
            raise self.error(
                name,
                f"vector at byte {t} declares {n} elements of {elem_size} bytes "
                f"({n * elem_size} bytes), but only {fb.size - start} bytes follow it",
            )
        return start, n

    def array(self, slot: int, kind: str, name: str) -> np.ndarray:
        """A scalar vector as a read-only numpy view (empty when absent)."""
        dtype = VECTOR_DTYPES[kind]
        v = self.vector(slot, dtype.itemsize, name)
        if v is None or v[1] == 0:
            return empty_array(dtype)
        return self.fb.u8[v[0]:v[0] + v[1] * dtype.itemsize].view(dtype)

    def ints(self, slot: int, kind: str, name: str) -> "tuple[int, ...] | None":
        """A scalar vector as a tuple of Python ints (None when absent)."""
        dtype = VECTOR_DTYPES[kind]
        v = self.vector(slot, dtype.itemsize, name)
        if v is None:
            return None
        start, n = v
        if n == 0:
            return ()
        fb = self.fb
        if n < _SHARED_VECTOR:
            return struct.unpack_from("<%d%s" % (n, _STRUCT_CHARS[kind]), fb.data, fb.base + start)
        key = (start, n, kind)
        got = fb._ints.get(key)
        if got is None:
            got = fb._ints[key] = struct.unpack_from("<%d%s" % (n, _STRUCT_CHARS[kind]), fb.data,
                                                     fb.base + start)
        return got

    def string_bytes(self, slot: int, name: str) -> "bytes | None":
        v = self.vector(slot, 1, name)
        if v is None:
            return None
        b = self.fb.base + v[0]
        return bytes(self.fb.data[b:b + v[1]])

    def string(self, slot: int, name: str) -> "str | None":
        """A string field, decoded as UTF-8; undecodable bytes are kept as escapes."""
        raw = self.string_bytes(slot, name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace")

    def strings(self, slot: int, name: str) -> "list[str] | None":
        """A vector of strings, each decoded as :meth:`string` does (None when absent)."""
        v = self.vector(slot, 4, name)
        if v is None:
            return None
        fb = self.fb
        where = f"{self.where}.{name}"
        out = []
        seen: dict = {}  # a string shared by many entries is read once
        for i in range(v[1]):
            p = v[0] + 4 * i
            target = p + fb.u32(p, where)
            text = seen.get(target)
            if text is None:
                n = fb.u32(target, where)
                raw = fb.bytes_at(target + 4, n, where)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = raw.decode("utf-8", "backslashreplace")
                seen[target] = text
            out.append(text)
        return out

    def tables(self, slot: int, name: str) -> "TableVector | None":
        """A vector of tables.  Its entries are read when indexed, and one damaged
        entry fails alone; but a vector most of whose entries are not tables at all
        (more than half, and more than :data:`DAMAGED_ENTRIES_TOLERATED`) is refused
        as a whole: its length or position is damaged, and handing out thousands of
        entries that each fail would only make every walk over it slow."""
        v = self.vector(slot, 4, name)
        if v is None:
            return None
        start, n = v
        if n > DAMAGED_ENTRIES_TOLERATED:
            bad, first = self.fb.unreadable_tables(start, n)
            if bad > DAMAGED_ENTRIES_TOLERATED and 2 * bad > n:
                raise self.error(
                    name, f"vector at byte {start - 4} declares {n} tables, {bad} of which "
                    f"are not readable tables (the first is entry {first}): its length "
                    f"or position is damaged")
        return TableVector(self.fb, start, n, f"{self.where}.{name}")

    def union(self, type_slot: int, value_slot: int, name: str) -> "tuple[int, Table | None]":
        """``(type code, table)`` of a union field; ``(0, None)`` when absent."""
        code = self.scalar(type_slot, "u8", 0, name + "_type")
        if code == 0:
            return 0, None
        return code, self.table(value_slot, name)


class TableVector:
    """A vector of tables; elements are checked and built when indexed."""

    __slots__ = ("fb", "start", "count", "where")

    def __init__(self, fb: FlatBuffer, start: int, count: int, where: str):
        self.fb = fb
        self.start = start
        self.count = count
        self.where = where

    def __len__(self) -> int:
        return self.count

    def offset_pos(self, i: int) -> int:
        return self.start + 4 * i

    def __getitem__(self, i: int) -> Table:
        if not 0 <= i < self.count:
            raise IndexError(i)
        p = self.start + 4 * i
        fb = self.fb
        if p + 4 > fb.size:  # only after close: the vector was checked when read
            raise fb.error(f"{self.where}[{i}]", "offset beyond the end of the data")
        return fb.table(p + _U32.unpack_from(fb.data, fb.base + p)[0], f"{self.where}[{i}]")

    def __iter__(self):
        for i in range(self.count):
            yield self[i]


class Bulk:
    """Vectorised reads of many tables of the same type at once.

    Decoding thousands of small tables one Python call at a time costs more
    than the work itself; this reads a field of every table with a few numpy
    operations over a uint8 view of the data.  Every position is checked
    against the size first; entries that fail a check are dropped from
    ``ok`` (the caller then reads them one at a time, and so reports their
    defect with the precise per-table message when they are used).
    """

    __slots__ = ("fb", "u8", "size", "_views")

    def __init__(self, fb: FlatBuffer):
        self.fb = fb
        self.size = fb.size
        self.u8 = fb.u8
        self._views: dict[str, np.ndarray] = {}

    def view(self, dtype: str) -> np.ndarray:
        """The whole data as an array of ``dtype`` (elements at multiples of its size)."""
        v = self._views.get(dtype)
        if v is None:
            dt = np.dtype(dtype)
            v = self._views[dtype] = self.u8[:self.size - self.size % dt.itemsize].view(dt)
        return v

    def gather(self, p: np.ndarray, dtype: str) -> np.ndarray:
        """Values of ``dtype`` at byte positions ``p`` (already checked to fit)."""
        dt = np.dtype(dtype)
        k = dt.itemsize
        if k == 1:
            return self.u8[p].view(dt)
        if not (p & (k - 1)).any():  # all aligned: one typed gather
            return self.view(dtype)[p // k]
        return np.ascontiguousarray(self.u8[p[:, None] + np.arange(k)]).view(dt).reshape(-1)

    def _gather(self, pos: np.ndarray, ok: np.ndarray, nbytes: int, dtype: str) -> np.ndarray:
        """Little-endian values of ``nbytes`` at each ``pos`` (0 where not ``ok``)."""
        ok &= (pos >= 0) & (pos <= self.size - nbytes)
        return self.gather(np.where(ok, pos, 0), dtype)

    def u32(self, pos, ok):
        return self._gather(pos, ok, 4, "<u4").astype(np.int64)

    def i32(self, pos, ok):
        return self._gather(pos, ok, 4, "<i4").astype(np.int64)

    def scalar(self, pos: np.ndarray, ok: np.ndarray, kind: str, default=0) -> np.ndarray:
        """A scalar field at absolute field positions ``pos`` (0 = absent → default)."""
        present = pos != 0
        dt = VECTOR_DTYPES[kind]
        sub_ok = ok & present
        vals = self._gather(pos, sub_ok, dt.itemsize, dt.str)
        ok &= sub_ok | ~present
        return np.where(present, vals, default)

    def tables(self, upos: np.ndarray, ok: np.ndarray, slots
               ) -> "tuple[np.ndarray, np.ndarray]":
        """Tables pointed at by uoffsets at ``upos`` (0 = absent field).

        Returns ``(table_pos, field_pos)``: table positions (-1 when absent) and
        an (n, max(slots) + 1) array of absolute positions of the fields in
        ``slots`` (0 = field absent or not asked for).
        """
        present = upos != 0
        ok_p = ok & present
        tpos = upos + self.u32(upos, ok_p)
        tpos, fields = self.tables_at(tpos, ok_p, slots)
        ok &= ok_p | ~present
        return np.where(present & ok_p, tpos, -1), fields

    def tables_at(self, tpos: np.ndarray, ok: np.ndarray, slots
                  ) -> "tuple[np.ndarray, np.ndarray]":
        """Tables at positions ``tpos`` (checked by :func:`vtable_fits` and
        :func:`table_fits`, the rules :meth:`FlatBuffer.table` applies): ``(tpos,
        field positions)`` as for :meth:`tables`; entries that fail leave ``ok``."""
        ok &= (tpos >= 0) & (tpos <= self.size - 4)
        soff = self.i32(tpos, ok)
        vt = tpos - soff
        ok &= vtable_fits(vt, self.size)
        vt = np.where(ok, vt, 0)
        vsize = self.gather(vt, "<u2").astype(np.int64)
        tsize = self.gather(vt + 2, "<u2").astype(np.int64)
        ok &= table_fits(tpos, vt, vsize, tsize, self.size)
        nfields = np.where(ok, (vsize - 4) // 2, 0)
        slots = np.asarray(slots, dtype=np.int64)
        fields = np.zeros((tpos.size, int(slots.max()) + 1 if slots.size else 0), np.int64)
        if slots.size:
            has = nfields[:, None] > slots[None, :]  # (n, len(slots)); vtable entries fit
            fo = self.gather(np.where(has, vt[:, None] + 4 + 2 * slots[None, :], 0).reshape(-1),
                             "<u2").reshape(has.shape).astype(np.int64)
            fields[:, slots] = np.where(has & (fo != 0), tpos[:, None] + fo, 0)
        return tpos, fields

    def vectors(self, fpos: np.ndarray, ok: np.ndarray, elem_size: int
                ) -> "tuple[np.ndarray, np.ndarray]":
        """``(start, count)`` of vectors whose offsets sit at ``fpos`` (0 = absent:
        start -1, count 0); counts are checked against the bytes that follow."""
        present = fpos != 0
        ok_p = ok & present
        t = fpos + self.u32(fpos, ok_p)
        n = self.u32(t, ok_p)
        start = t + 4
        ok_p &= n * elem_size <= self.size - start
        ok &= ok_p | ~present
        return np.where(present & ok_p, start, -1), np.where(present & ok_p, n, 0)
