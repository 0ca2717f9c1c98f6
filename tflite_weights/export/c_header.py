"""C arrays for firmware: one self-contained header per model (or a .h/.c pair).

For every exported tensor the output holds a ``const`` array of the stored
element type, its dims, element count and byte size as macros, and its
quantization (scales, zero points, quantized dimension).  Optionally
(``requant=True``) each integer CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED gets the per-channel fixed-point multiplier and shift that
TFLite Micro and CMSIS-NN compute at prepare time
(:mod:`tflite_weights.fixedpoint`).

Element types:

=====================  =========================================================
tensor type            C array
=====================  =========================================================
INT8 INT16 INT32 INT64 ``int8_t`` ... ``int64_t`` (decimal)
UINT8 UINT16 ...       ``uint8_t`` ... ``uint64_t`` (hexadecimal)
FLOAT32 / FLOAT64      ``float`` (9 significant digits) / ``double`` (hex float)
FLOAT16 BFLOAT16       ``uint16_t`` bit patterns
FLOAT8_*               ``uint8_t`` bit patterns
BOOL                   ``uint8_t`` (0 or 1)
COMPLEX64/128          ``float``/``double`` pairs (re, im), 2 x COUNT values
INT4 UINT4 INT2        packed ``uint8_t`` bytes as stored: flat over the whole
                       row-major tensor, low bits first (element i is in byte
                       ``i*bits/8`` at bit ``(i % (8/bits))*bits``); with
                       ``unpack=True`` one ``int8_t``/``uint8_t`` per element
STRING                 ``uint8_t`` bytes of all strings, and ``_offsets``
                       (``uint32_t``, COUNT + 1): string i is
                       ``[offsets[i], offsets[i+1])``
=====================  =========================================================

Every float literal round-trips to the stored bits (NaN payloads aside).
Output is deterministic: the same model and options give the same bytes.

Numbers are formatted by whole numpy arrays, never one Python call per
element: 8-bit values by one uint32 lookup each (the value's four
characters) into reused line buffers whose commas and newlines are written
once, 16-bit values through a table of all 65,536 tokens, wider integers and
floats through vectorised digit arithmetic; chunks go straight from numpy
buffers to the file.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..format.types import FIXED, PACKED, TYPES
from ..errors import TFLiteWeightsError, UnsupportedError
from ..numerics.fixedpoint import requantization
from . import start_digest

__all__ = ["export_c", "c_identifier", "CExportError"]


class CExportError(TFLiteWeightsError):
    """An option of the C export is invalid (a bad prefix, section name or alignment)."""


# ---------------------------------------------------------------------------------------
# vectorised number formatting: every function returns an (n, width) uint8 array of
# right-aligned tokens, each ending in a comma and a separator
# ---------------------------------------------------------------------------------------

_SP, _COMMA, _MINUS, _ZERO, _NL = 32, 44, 45, 48, 10
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_POW10 = np.array([10 ** k for k in range(1, 20)], dtype=np.uint64)  # 10 .. 1e19
_INT64_MIN_TEXT = b"(-9223372036854775807-1)"

# Every token ends in a comma and one separator byte: a space, or a newline at
# the end of a line.  Tokens of one array have one width and are right-aligned,
# so a chunk of tokens is written as it is, without assembling lines.


def _dec_width(lo: int, hi: int) -> int:
    """Token width (with ", ") of decimal integers in [lo, hi]."""
    w = max(len(str(int(lo))), len(str(int(hi))))
    if lo == -(1 << 63):
        w = max(w, len(_INT64_MIN_TEXT))
    return w + 2


def _blank(n: int, width: int) -> np.ndarray:
    out = np.empty((n, width), np.uint8)
    out[:, :-2] = _SP
    out[:, -2] = _COMMA
    out[:, -1] = _SP
    return out


_D4 = np.array([b"%04d" % i for i in range(10000)]).view("<u4").reshape(10000)
_U32_10K = np.uint32(10000)
_U32_10 = np.uint32(10)


def _put_digits(out: np.ndarray, end: int, m: np.ndarray, count: int) -> None:
    """Write ``count`` zero-padded decimal digits of ``m`` (uint32, < 10**count) into
    columns ``[end - count, end)`` of ``out`` (a C-contiguous (n, width) uint8
    array), four digits at a time through a table of 10000 four-character words."""
    n = out.shape[0]
    while count >= 4:
        q = m // _U32_10K
        words = np.ndarray((n,), "<u4", buffer=out, offset=end - 4, strides=(out.strides[0],))
        words[...] = _D4.take(m - q * _U32_10K)
        m, end, count = q, end - 4, count - 4
    while count > 0:
        q = m // _U32_10
        out[:, end - 1] = (m - q * _U32_10).astype(np.uint8) + _ZERO
        m, end, count = q, end - 1, count - 1


def _put_magnitude(out: np.ndarray, end: int, mag: np.ndarray, count: int) -> None:
    """Like :func:`_put_digits` for uint64 magnitudes of up to 20 digits."""
    if count <= 9 or int(mag.max()) < 1 << 32:
        _put_digits(out, end, mag.astype(np.uint32), count)
        return
    billion = np.uint64(10 ** 9)
    rest = mag // billion
    _put_digits(out, end, (mag - rest * billion).astype(np.uint32), 9)
    _put_magnitude(out, end - 9, rest, count - 9)


def _dec_tokens(v: np.ndarray, width: int) -> np.ndarray:
    """Decimal tokens of integers (any integer dtype up to 64 bits)."""
    v = np.asarray(v).reshape(-1)
    n = v.size
    out = _blank(n, width)
    if n == 0:
        return out
    if v.dtype.kind == "u":
        neg = None
        mag = v.astype(np.uint64)
    else:
        s = v.astype(np.int64)
        neg = s < 0
        u = s.view(np.uint64)
        mag = np.where(neg, ~u + np.uint64(1), u)
        if not neg.any():
            neg = None
    nd = 1 + np.searchsorted(_POW10, mag, side="right")
    d = width - 2
    top = int(nd.max())
    _put_magnitude(out, d, mag, top)
    if int(nd.min()) < top:
        blank = np.arange(d - top, d)[None, :] < (d - nd)[:, None]
        np.copyto(out[:, d - top:d], _SP, where=blank)
    if neg is not None:
        rows = np.nonzero(neg)[0]
        out[rows, d - nd[rows] - 1] = _MINUS
    if v.dtype == np.int64:
        bad = np.nonzero(v == np.iinfo(np.int64).min)[0]
        if bad.size:
            text = np.frombuffer(_INT64_MIN_TEXT, np.uint8)
            out[bad, :d] = _SP
            out[bad, d - text.size:d] = text
    return out


def _hex_tokens(v: np.ndarray, nibbles: int) -> np.ndarray:
    """``0x``-prefixed, zero-padded hexadecimal tokens of unsigned integers."""
    u = np.asarray(v).reshape(-1).astype(np.uint64)
    out = _blank(u.size, nibbles + 4)
    out[:, 0] = _ZERO
    out[:, 1] = ord("x")
    for k in range(nibbles):
        out[:, 1 + nibbles - k] = _HEX[((u >> np.uint64(4 * k)) & np.uint64(15)).astype(np.intp)]
    return out


def _nonfinite(out: np.ndarray, x: np.ndarray, rows_mask: np.ndarray) -> None:
    rows = np.nonzero(rows_mask)[0]
    width = out.shape[1]
    for text, sel in ((b"NAN", np.isnan(x[rows])),
                      (b"INFINITY", np.isposinf(x[rows])),
                      (b"(-INFINITY)", np.isneginf(x[rows]))):
        r = rows[sel]
        if r.size:
            out[r, :-2] = _SP
            out[r, width - 2 - len(text):width - 2] = np.frombuffer(text, np.uint8)


_F32_WIDTH = 18  # "-1.23456789e-05f, "
_P10 = np.array([float("1e%d" % k) for k in range(-80, 81)])  # correctly rounded


def _pow10(k: np.ndarray) -> np.ndarray:
    return _P10.take(k + 80)


_EXP2 = np.frombuffer(b"".join(b"%02d" % i for i in range(100)), "<u2")  # "00".."99"


def _f32_tokens(x: np.ndarray) -> np.ndarray:
    """``d.dddddddde+XXf`` tokens: 9 significant digits, which round-trip every float32.

    The decimal exponent comes from the binary one (``floor(e2 * log10 2)``, which
    is the exponent or one less); both candidates' nine digits are computed in
    float64 and the one in range is kept.  Subnormals, whose binary exponent
    field is 0, take ``log10``.
    """
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    out = _blank(n, _F32_WIDTH)
    bits = x.view(np.uint32) if x.dtype.byteorder in "=|" or np.little_endian \
        else x.astype("=f4").view(np.uint32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        a = np.abs(x.astype(np.float64))
        finite = np.isfinite(a)
        nz = finite & (a > 0)
        all_nz = bool(nz.all())
        an = a if all_nz else a[nz]
        e2 = ((bits if all_nz else bits[nz]) >> np.uint32(23)) & np.uint32(0xFF)
        en = ((e2.astype(np.int64) - 127) * 78913) >> 18   # floor(e2 * log10(2))
        sub = e2 == 0
        if sub.any():
            en[sub] = np.floor(np.log10(an[sub])).astype(np.int64)
        mn = np.rint(an * _pow10(8 - en))
        up = mn >= 1e9
        if up.any():  # the exponent is one more
            en = en + up
            mn = np.where(up, np.rint(an * _pow10(8 - en)), mn)
        low = mn < 1e8
        if low.any():  # only when rounding of the estimate went the other way
            en = en - low
            mn = np.where(low, np.rint(an * _pow10(8 - en)), mn)
        # the check: the text must parse back to the same float32
        back = (mn * _pow10(en - 8)).astype(np.float32)
        bad = np.nonzero(back != an.astype(np.float32))[0]
        for i in bad.tolist():  # exact printf fallback; not expected to run
            digits, exp = (b"%.8e" % float(an[i])).split(b"e")
            mn[i] = float(digits.replace(b".", b""))
            en[i] = int(exp)
    if all_nz:
        e, m = en, mn.astype(np.uint32)
    else:
        e = np.zeros(n, np.int64)
        m = np.zeros(n, np.uint32)
        e[nz] = en
        m[nz] = mn.astype(np.uint32)
    out[:, 0] = (bits >> np.uint32(31)).astype(np.uint8) * np.uint8(_MINUS - _SP) + _SP
    _put_digits(out, 11, m, 9)
    out[:, 1] = out[:, 2]          # d.dddddddd: move the first digit before the point
    out[:, 2] = ord(".")
    out[:, 11] = ord("e")
    neg = e < 0
    out[:, 12] = neg.astype(np.uint8) * np.uint8(_MINUS - ord("+")) + ord("+")
    exp2 = np.ndarray((n,), "<u2", buffer=out, offset=13, strides=(out.strides[0],))
    exp2[...] = _EXP2.take(np.where(neg, -e, e))
    out[:, 15] = ord("f")
    if not finite.all():
        _nonfinite(out, x, ~finite)
    return out


_F64_WIDTH = 26  # "-0x1.921fb54442d18p+0001, "


def _f64_tokens(x: np.ndarray) -> np.ndarray:
    """C99 hexadecimal float tokens: exact for every double."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    bits = x.astype("<f8").view("<u8").astype(np.uint64)
    expo = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    frac = bits & np.uint64((1 << 52) - 1)
    out = _blank(n, _F64_WIDTH)
    out[:, 0] = np.where(np.signbit(x), _MINUS, _SP)
    out[:, 1] = _ZERO
    out[:, 2] = ord("x")
    normal = expo > 0
    out[:, 3] = np.where(normal, ord("1"), _ZERO)
    out[:, 4] = ord(".")
    for k in range(13):
        out[:, 17 - k] = _HEX[((frac >> np.uint64(4 * k)) & np.uint64(15)).astype(np.intp)]
    out[:, 18] = ord("p")
    e = np.where(normal, expo - 1023, np.where(frac > 0, -1022, 0))
    out[:, 19] = np.where(e < 0, _MINUS, ord("+"))
    ae = np.abs(e)
    for col in (23, 22, 21, 20):
        ae, r = np.divmod(ae, 10)
        out[:, col] = r.astype(np.uint8) + _ZERO
    finite = np.isfinite(x)
    if not finite.all():
        _nonfinite(out, x, ~finite)
    return out


@functools.lru_cache(maxsize=None)
def _byte_table(kind: str) -> np.ndarray:
    """(256, 6) tokens of every byte value: int8 decimal ("-128, ") or hex ("0x8a, ");
    :class:`_ByteLines` uses their first four characters."""
    b = np.arange(256, dtype=np.uint8)
    if kind == "i8":
        return _dec_tokens(b.view(np.int8), 6)
    return _hex_tokens(b, 2)


@functools.lru_cache(maxsize=None)
def _word_table(kind: str) -> np.ndarray:
    """(65536,) tokens of every 16-bit value, 8 bytes each so that a lookup moves one
    uint64: int16 decimal ("-32768, ") or uint16 hex ("0x8000, ")."""
    w = np.arange(65536, dtype=np.uint16)
    tok = _dec_tokens(w.view(np.int16), 8) if kind == "i16" else _hex_tokens(w, 4)
    return np.ascontiguousarray(tok).view("<u8").reshape(65536)


_BYTES_PER_LINE = 16
_BYTE_LINE = 2 + 5 * _BYTES_PER_LINE + 1  # "  " + 16 x "-128," + "\n"


@functools.lru_cache(maxsize=None)
def _byte_fields(kind: str) -> np.ndarray:
    """(256,) uint32: the four characters of every byte value ("-128", "0x8a")."""
    return np.ascontiguousarray(_byte_table(kind)[:, :4]).view("<u4").reshape(256)


@functools.lru_cache(maxsize=None)
def _byte_pair_fields(kind: str) -> np.ndarray:
    """(65536,) uint64: the characters of two bytes at once, indexed by the pair read
    as a little-endian uint16 (first byte in the low half)."""
    f = _byte_fields(kind).astype(np.uint64)
    i = np.arange(65536)
    return (f[i & 0xFF] | (f[i >> 8] << np.uint64(32))).astype("<u8")


class _ByteLines:
    """Whole lines of 8-bit values, written into reused buffers whose indentation,
    commas and newlines are filled once: per chunk only the four characters of
    each value are stored, two values per lookup (a uint64 from a table of every
    pair of bytes)."""

    def __init__(self, kind: str, rows: int):
        self.fields = _byte_fields(kind)
        self.pairs = _byte_pair_fields(kind)
        self.rows = rows
        self.free: list = []

    def buffer(self) -> np.ndarray:
        if self.free:
            return self.free.pop()
        buf = np.empty((self.rows, _BYTE_LINE), np.uint8)
        buf[:, :2] = _SP
        buf[:, 6:-1:5] = _COMMA
        buf[:, -1] = _NL
        return buf

    def release(self, data) -> None:
        base = data.base if isinstance(data, np.ndarray) else None
        if base is not None and base.shape == (self.rows, _BYTE_LINE):
            self.free.append(base)

    def format(self, chunk: np.ndarray, buf: np.ndarray) -> np.ndarray:
        rows = chunk.size // _BYTES_PER_LINE
        half = _BYTES_PER_LINE // 2
        idx = chunk.view(np.uint8).view("<u2").astype(np.intp)
        values = self.pairs.take(idx, mode="clip").view("<u4").reshape(rows, half, 2)
        fields = np.ndarray((rows, half, 2), "<u4", buffer=buf, offset=2,
                            strides=(_BYTE_LINE, 10, 5))
        fields[...] = values
        return buf[:rows].reshape(-1)

    def tail(self, chunk: np.ndarray) -> bytes:
        """The last, partial line."""
        v = self.fields.take(chunk.view(np.uint8).astype(np.intp)).view(np.uint8)
        v = v.reshape(-1, 4)
        return b"  " + np.concatenate([v, np.full((v.shape[0], 1), _COMMA, np.uint8)],
                                      axis=1).tobytes() + b"\n"


def _words_tokens(kind: str):
    table = _word_table(kind)

    def tokens(chunk: np.ndarray) -> np.ndarray:
        idx = chunk.view("<u2").astype(np.intp)
        return table.take(idx, mode="clip").view(np.uint8).reshape(idx.size, 8)
    return tokens


@dataclass(frozen=True)
class _Fmt:
    width: int
    per_line: int
    tokens: object  # chunk -> (n, width) uint8


def _formatter(kind: str, values: np.ndarray) -> _Fmt:
    """Tokens of every kind but 8-bit values (see :class:`_ByteLines`)."""
    if kind in ("i16", "u16"):
        return _Fmt(8, 12, _words_tokens(kind))
    if kind == "f32":
        return _Fmt(_F32_WIDTH, 5, _f32_tokens)
    if kind == "f64":
        return _Fmt(_F64_WIDTH, 3, _f64_tokens)
    if kind in ("u32", "u64"):
        nib = 8 if kind == "u32" else 16
        return _Fmt(nib + 4, 8 if kind == "u32" else 4, lambda c: _hex_tokens(c, nib))
    # decimal integers: the width follows the values' range
    if values.size:
        width = _dec_width(int(values.min()), int(values.max()))
    else:
        width = 3
    width += 1  # a leading space, so that lines start indented
    return _Fmt(width, max(1, min(16, 96 // width)), lambda c: _dec_tokens(c, width))


_CHUNK = 1 << 16  # 8-bit values formatted at a time
_CHUNK_WIDE = 1 << 14  # other values (their temporaries then stay in the CPU cache)


def _format_chunk(fmt: _Fmt, chunk: np.ndarray, last: bool) -> np.ndarray:
    """Tokens of ``chunk`` (which starts a line) with a newline after every
    ``per_line``-th token and, when ``last``, after the final one."""
    tok = fmt.tokens(chunk)
    tok[fmt.per_line - 1::fmt.per_line, -1] = _NL
    if last:
        tok[-1, -1] = _NL
    return tok.reshape(-1)


class _Sink:
    """An ordered output whose pieces may be formatted in worker threads.

    ``text()`` queues bytes, ``job()`` queues a function whose result (bytes or a
    uint8 array) is written in its turn.  numpy releases the GIL while it
    formats, so two workers format upcoming chunks while this thread writes;
    at most ``depth`` pieces wait, which bounds the memory used.
    """

    def __init__(self, out, pool, depth: int = 3):
        import collections
        self.out = out
        self.pool = pool
        # without workers nothing is gained by waiting: write at once, so that one
        # buffer, still in the CPU cache, is reused chunk after chunk
        self.depth = depth if pool is not None else 0
        self.byte_lines: dict = {}
        self.pending = collections.deque()
        try:
            self.seekable = out.seekable()
            self.start = out.tell() if self.seekable else 0
        except (AttributeError, OSError):
            self.seekable = False
        self.marks: list[int] = []  # positions of digest placeholders
        self.queued = 0  # bytes of the prelude (the only place with placeholders)
        self.prelude = True

    def end_prelude(self) -> None:
        self.prelude = False

    def text(self, data: bytes) -> None:
        if self.prelude:
            at = data.find(_DIGEST_PLACEHOLDER)
            while at >= 0:
                self.marks.append(self.start + self.queued + at)
                at = data.find(_DIGEST_PLACEHOLDER, at + 1)
            self.queued += len(data)
        self.pending.append((None, data, None, 0, None))
        self._drain(self.depth)

    def patch(self, placeholder: bytes, value: bytes) -> None:
        if not self.seekable or not self.marks:
            return
        end = self.out.tell()
        for pos in self.marks:
            self.out.seek(pos)
            self.out.write(value)
        self.out.seek(end)

    def job(self, fn, *args, done=None, amount: int = 0, release=None) -> None:
        """Queue ``fn(*args)``; after its result is written, ``done(amount)`` reports
        progress and ``release(result)`` may take its buffer back for reuse."""
        self.prelude = False
        if self.pool is None:
            self.pending.append((None, fn(*args), done, amount, release))
        else:
            self.pending.append((self.pool.submit(fn, *args), None, done, amount, release))
        self._drain(self.depth)

    def _drain(self, keep: int) -> None:
        while len(self.pending) > keep:
            fut, data, done, amount, release = self.pending.popleft()
            if fut is not None:
                data = fut.result()
            self.out.write(data)
            if release is not None:
                release(data)
            if done is not None:
                done(amount)

    def close(self) -> None:
        self._drain(0)


def _write_values(sink: _Sink, values: np.ndarray, kind: str, progress=None) -> None:
    """Queue ``values`` (1-D) as lines of tokens, in chunks of whole lines."""
    values = values.reshape(-1)
    n = values.size
    itemsize = values.dtype.itemsize
    if kind in ("i8", "u8"):
        step = _CHUNK - _CHUNK % _BYTES_PER_LINE
        lines = sink.byte_lines.get(kind)
        if lines is None:  # one per output and kind, so buffers serve every array
            lines = sink.byte_lines[kind] = _ByteLines(kind, step // _BYTES_PER_LINE)
        full = n - n % _BYTES_PER_LINE
        for start in range(0, full, step):
            stop = min(full, start + step)
            sink.job(lines.format, values[start:stop], lines.buffer(), done=progress,
                     amount=stop - start, release=lines.release)
        if full < n:
            sink.job(lines.tail, values[full:], done=progress, amount=n - full)
        return
    fmt = _formatter(kind, values)
    per = fmt.per_line
    step = max(1, _CHUNK_WIDE // per) * per
    for start in range(0, n, step):
        stop = min(n, start + step)
        sink.job(_format_chunk, fmt, values[start:stop], stop == n,
                 done=progress, amount=(stop - start) * itemsize)


def _literal(kind: str, value) -> str:
    """One number as C text (the token without padding and separator)."""
    if kind not in ("f32", "f64"):
        v = int(value)
        return "(-9223372036854775807-1)" if v == -(1 << 63) else str(v)
    arr = np.asarray([value])
    tok = _f32_tokens(arr.astype(np.float32)) if kind == "f32" else _f64_tokens(arr)
    return tok.tobytes().decode("ascii").strip().rstrip(",")


# ---------------------------------------------------------------------------------------
# identifiers
# ---------------------------------------------------------------------------------------

_C_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Bool _Complex _Imaginary bool true false NULL
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t
size_t ptrdiff_t wchar_t NAN INFINITY HUGE_VAL HUGE_VALF main
""".split())

_NON_IDENT = re.compile(r"[^A-Za-z0-9]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def c_identifier(name: str, fallback: str = "tensor") -> str:
    """A lower-case C identifier from a tensor name: runs of other characters become
    ``_``; leading and trailing ``_`` are dropped; a leading digit gets ``t_``."""
    s = _NON_IDENT.sub("_", name).strip("_").lower()
    if not s:
        s = fallback
    if s[0].isdigit():
        s = "t_" + s
    return s


# names derived from a tensor's identifier (arrays, then macros in lower case)
_ARRAY_SUFFIXES = ("", "_dims", "_scale", "_zero_point", "_offsets", "_dequantized")
_MACRO_SUFFIXES = ("_rank", "_count", "_bytes", "_bits", "_quant_dim", "_quant_count",
                   "_zero_point_value", "_scale_value")


class _Names:
    """Unique identifiers: a clash with any name already given (or with a C keyword)
    adds ``_2``, ``_3``, ... in export order, so the result is deterministic."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.used: set[str] = set()

    def reserve(self, name: str) -> None:
        self.used.add(name.lower())

    def take(self, base: str, suffixes=_ARRAY_SUFFIXES + _MACRO_SUFFIXES) -> str:
        k = 1
        while True:
            cand = base if k == 1 else f"{base}_{k}"
            full = self.prefix + cand
            names = [(full + s).lower() for s in suffixes]
            if full not in _C_RESERVED and not any(n in self.used for n in names):
                self.used.update(names)
                return full
            k += 1


# ---------------------------------------------------------------------------------------
# the export
# ---------------------------------------------------------------------------------------

# C element type -> (formatter kind, numpy view of the stored values as that type); a
# tensor's C type comes from its row of the type table (format.types)
_C_TYPES = {
    "float": ("f32", "<f4"),
    "double": ("f64", "<f8"),
    "int8_t": ("i8", "i1"),
    "uint8_t": ("u8", "u1"),
    "int16_t": ("i16", "<i2"),
    "uint16_t": ("u16", "<u2"),
    "int32_t": ("dec", "<i4"),
    "int64_t": ("dec", "<i8"),
    "uint32_t": ("u32", "<u4"),
    "uint64_t": ("u64", "<u8"),
}
_REQUANT_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": None}


def _comment_text(s: str) -> str:
    """Text that is safe inside a C block comment (and free of trigraphs)."""
    s = s.encode("ascii", "backslashreplace").decode("ascii")
    s = "".join(c if 32 <= ord(c) < 127 else f"\\x{ord(c):02x}" for c in s)
    return s.replace("*/", "*\\/").replace("??", "?\\?")


@dataclass
class _Array:
    ctype: str
    name: str
    count: int
    values: np.ndarray
    kind: str
    data: bool = False  # aligned and placed in the section


@dataclass
class _Item:
    tensor: object
    ident: str
    lines: list = field(default_factory=list)   # comment lines
    macros: list = field(default_factory=list)  # (NAME, value text)
    arrays: list = field(default_factory=list)  # _Array


class _Writer:
    def __init__(self, header: _Sink, source: "_Sink | None", *, align: int, progress):
        self.h = header
        self.c = source
        self.split = source is not None
        self.align = align
        self.progress = progress

    def text(self, s: str, *, to_source: bool = False) -> None:
        (self.c if to_source else self.h).text(s.encode("ascii"))

    def array(self, a: _Array) -> None:
        attrs = f" TFLW_ALIGNED({self.align}) TFLW_SECTION" if a.data else ""
        decl = f"const {a.ctype} {a.name}[{a.count}]"
        if self.split:
            self.text(f"extern {decl}{attrs};\n")
            out = self.c
            out.text(f"{decl}{attrs} = {{\n".encode("ascii"))
        else:
            out = self.h
            out.text(f"static {decl} TFLW_UNUSED{attrs} = {{\n".encode("ascii"))
        _write_values(out, a.values, a.kind, self.progress if a.data else None)
        out.text(b"};\n")


def _check_options(prefix: str, align: int, section: "str | None",
                   header_name: "str | None" = None) -> None:
    if header_name is not None and (any(c in header_name for c in '"\\')
                                    or not all(32 <= ord(c) < 127 for c in header_name)):
        raise CExportError(f"header name {header_name!r} cannot be written in an #include "
                           f"(use printable ASCII without quotes or backslashes)")
    if prefix and not _IDENT.match(prefix):
        raise CExportError(f"prefix {prefix!r} is not the start of a C identifier "
                           f"(letters, digits and _, not starting with a digit)")
    if not (isinstance(align, int) and align >= 1 and align & (align - 1) == 0
            and align <= 1 << 16):
        raise CExportError(f"alignment {align!r} must be a power of two from 1 to 65536")
    if section is not None and (not section or any(c in section for c in '"\\')
                                or not all(32 < ord(c) < 127 for c in section)):
        raise CExportError(f"section name {section!r} must be printable ASCII without "
                           f"spaces, quotes or backslashes")


def default_prefix(model) -> str:
    import os
    if model.path:
        stem = os.path.splitext(os.path.basename(model.path))[0]
        return c_identifier(stem, "model") + "_"
    return "model_"


def export_c(model, header, source=None, *, tensors=None, prefix: "str | None" = None,
             align: int = 16, section: "str | None" = None, unpack: bool = False,
             requant: bool = False, dequantize: bool = False,
             single_rounding: bool = False, header_name: "str | None" = None,
             progress=None) -> dict:
    """Write C arrays for ``tensors`` (default: every constant) of ``model``.

    ``header`` is a binary file object for the header.  With ``source`` (a
    second binary file object) the arrays are *defined* there and only
    declared ``extern`` in the header (``header_name`` is the name the .c file
    includes); without it the header is self-contained, with ``static``
    arrays.  ``prefix`` starts every identifier (default: the model file's
    name, e.g. ``person_detect_``); ``align`` and ``section`` set the
    data arrays' alignment and linker section (``TFLW_ALIGNED``,
    ``TFLW_SECTION``, overridable with ``-D``).  ``unpack`` writes INT4/UINT4/
    INT2 one element per byte; ``dequantize`` adds float arrays of the real
    values; ``requant`` adds per-channel multipliers and shifts of integer
    CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED ops whose weights are
    exported.  ``progress(done_bytes, total_bytes)`` is called as data is
    written.  Returns a summary (tensor and operator counts, data bytes).
    """
    if prefix is None:
        prefix = default_prefix(model)
    _check_options(prefix, align, section, header_name)
    from . import select_tensors
    if tensors is None:
        tensors = select_tensors(model)
    digest = start_digest(model)
    split = source is not None
    names = _Names(prefix)

    names.reserve(prefix + "model_sha256")   # the macros every header defines
    names.reserve(prefix + "tensor_count")
    requant_ops = _requant_ops(model, tensors) if requant else []
    for sg, op, *_ in requant_ops:
        names.reserve(_op_ident(prefix, sg, op.index) + "_multiplier")
        names.reserve(_op_ident(prefix, sg, op.index) + "_shift")
        names.reserve(_op_ident(prefix, sg, op.index) + "_channels")

    items = []
    total = 0
    for t in tensors:
        base = c_identifier(t.name, f"tensor_{t.index}")
        if t.subgraph:
            base = f"sg{t.subgraph}_{base}"
        item = _plan(t, names.take(base), unpack=unpack, dequantize=dequantize)
        total += sum(a.values.nbytes for a in item.arrays if a.data)
        items.append(item)
    needs_math = any(a.kind in ("f32", "f64") and a.values.size
                     and not np.isfinite(a.values).all()
                     for it in items for a in it.arrays)
    needs_math = needs_math or any(
        not np.isfinite(np.asarray(v, dtype=np.float64)).all()
        for it in items for _, v, k in it.macros if k in ("f32", "f64"))

    done = [0]

    def step(n):
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) if _use_threads(total) else _NoPool() as pool:
        hs = _Sink(header, pool)
        cs = _Sink(source, pool) if split else None
        w = _Writer(hs, cs, align=align, progress=step)
        _write_all(w, model, items, requant_ops, digest, prefix, section, needs_math,
                   header_name, single_rounding)
        hs.close()
        if cs is not None:
            cs.close()
    src = digest.result()
    for sink in (hs, cs):
        if sink is not None:
            sink.patch(_DIGEST_PLACEHOLDER, src.encode("ascii"))
    return {"tensors": len(items), "operators": len(requant_ops), "data_bytes": total,
            "sha256": src}


_PARALLEL_BYTES = 8 << 20  # data from which two threads format while one writes


def _use_threads(total: int) -> bool:
    """Format in worker threads for large exports when a core is free: on a machine
    already busy, handing chunks between threads costs more than it brings.  The
    output is the same either way."""
    import os
    cpus = os.cpu_count() or 1
    if total < _PARALLEL_BYTES or cpus < 2:
        return False
    try:
        return os.getloadavg()[0] <= cpus - 1
    except (AttributeError, OSError):  # no load average on this platform
        return True
_DIGEST_PLACEHOLDER = b"0" * 64


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _write_all(w, model, items, requant_ops, digest, prefix, section, needs_math,
               header_name, single_rounding) -> None:
    split = w.split
    # a seekable output gets the digest patched in at the end, so that hashing the
    # model and writing the arrays overlap; a stream has to wait for it
    if w.h.seekable and (w.c is None or w.c.seekable):
        src = _DIGEST_PLACEHOLDER.decode("ascii")
    else:
        src = digest.result()
    name = _comment_text(_source_name(model))
    guard_base = header_name or (prefix.rstrip("_") or "tflw_model") + ".h"
    guard = "TFLW_" + c_identifier(guard_base, "model_h").upper() + "_"
    top = (f"/* Generated by tflite-weights {__version__} from {name}\n"
           f" * sha256 {src}\n"
           f" * Do not edit: regenerate it from the model.\n */\n")
    w.text(top)
    w.text(f"#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n")
    if needs_math:
        w.text("#include <math.h>\n")
    w.text(_preamble(section))
    P = prefix.upper()
    w.text(f"#define {P}MODEL_SHA256 \"{src}\"\n#define {P}TENSOR_COUNT {len(items)}\n")
    if split:
        w.text(top, to_source=True)
        inc = header_name or "model.h"
        w.text(f'#include "{_comment_text(inc)}"\n', to_source=True)
    w.h.end_prelude()
    if w.c is not None:
        w.c.end_prelude()
    for it in items:
        _emit(w, it)
    for entry in requant_ops:
        _emit_requant(w, prefix, *entry, single_rounding=single_rounding)
    w.text(f"\n#endif  /* {guard} */\n")


def _source_name(model) -> str:
    import os
    return os.path.basename(model.path) if model.path else "<bytes>"


def _preamble(section) -> str:
    sec = f'__attribute__((section("{section}")))' if section else ""
    gnu_sec = f"#ifndef TFLW_SECTION\n#define TFLW_SECTION {sec}\n#endif\n" if sec else ""
    return ("\n#if defined(__GNUC__) || defined(__clang__)\n"
            "#ifndef TFLW_ALIGNED\n#define TFLW_ALIGNED(n) __attribute__((aligned(n)))\n#endif\n"
            "#ifndef TFLW_UNUSED\n#define TFLW_UNUSED __attribute__((unused))\n#endif\n"
            f"{gnu_sec}"
            "#endif\n"
            "#ifndef TFLW_ALIGNED\n#define TFLW_ALIGNED(n)\n#endif\n"
            "#ifndef TFLW_UNUSED\n#define TFLW_UNUSED\n#endif\n"
            "#ifndef TFLW_SECTION\n#define TFLW_SECTION\n#endif\n\n")


def _plan(t, ident: str, *, unpack: bool, dequantize: bool) -> _Item:
    """What to write for one tensor (reads and checks its values)."""
    info = TYPES.get(t.type_code)
    item = _Item(t, ident)
    shape = t.shape
    item.lines.append(f"tensor {t.subgraph}:{t.index} \"{_comment_text(t.name)}\": "
                      f"{t.type} {list(shape)}, {t.size} elements")
    up = ident.upper()
    item.macros.append((f"{up}_RANK", len(shape), "int"))
    item.macros.append((f"{up}_COUNT", t.size, "int"))
    if shape:
        item.arrays.append(_Array("int32_t", f"{ident}_dims", len(shape),
                                  np.asarray(shape, np.int64), "dec"))
    if t.has_data and info is not None and info.has_values:
        _plan_data(item, t, info, ident, unpack)
    else:
        item.macros.append((f"{up}_BYTES", 0, "int"))
        item.lines.append("no stored values" if not t.has_data else
                          f"{t.type}: no values to export")
    q = t.quantization
    if q is not None:
        item.lines.append(f"quantization: {q.summary()}")
        if q.scale.size:
            n = q.scale.size
            item.macros.append((f"{up}_QUANT_DIM", int(q.quantized_dimension), "int"))
            item.macros.append((f"{up}_QUANT_COUNT", n, "int"))
            if n == 1:
                item.macros.append((f"{up}_SCALE_VALUE", float(q.scale[0]), "f32"))
                if q.zero_point.size:
                    item.macros.append((f"{up}_ZERO_POINT_VALUE", int(q.zero_point[0]), "int"))
            item.arrays.append(_Array("float", f"{ident}_scale", n, np.asarray(q.scale), "f32"))
            if q.zero_point.size:
                zp = np.asarray(q.zero_point, np.int64)
                wide = zp.size and (zp.min() < -(1 << 31) or zp.max() >= 1 << 31)
                item.arrays.append(_Array("int64_t" if wide else "int32_t",
                                          f"{ident}_zero_point", zp.size, zp, "dec"))
        if dequantize and t.has_data:
            try:
                deq = np.asarray(t.dequantize(), np.float32).reshape(-1)
            except TFLiteWeightsError:
                deq = None
            if deq is not None and deq.size:
                item.arrays.append(_Array("float", f"{ident}_dequantized", deq.size, deq,
                                          "f32"))
    return item


def _plan_data(item: _Item, t, info, ident: str, unpack: bool) -> None:
    up = ident.upper()
    name = info.name
    if t.is_sparse:
        values = np.ascontiguousarray(t.numpy()).reshape(-1)
        item.lines.append("densified from its sparse storage")
        if info.layout == FIXED:
            ctype = info.ctype
            kind, view = _C_TYPES[ctype]
            values = values.view(view) if values.dtype.itemsize == np.dtype(view).itemsize \
                else values
        elif info.layout == PACKED:
            ctype, kind = ("int8_t", "i8") if info.signed else ("uint8_t", "u8")
        else:
            raise UnsupportedError(f"tensor {t.index} of subgraph {t.subgraph} ({t.name!r}): "
                                   f"a sparse {name} tensor cannot be exported")
        _add_data(item, ctype, ident, values, kind)
        item.macros.append((f"{up}_BYTES", values.nbytes, "int"))
        return
    if info.layout == FIXED:
        ctype = info.ctype
        kind, view = _C_TYPES[ctype]
        values = t.numpy().reshape(-1).view(view)
        if info.note:
            item.lines.append(info.note)
        _add_data(item, ctype, ident, values, kind)
        item.macros.append((f"{up}_BYTES", t.size * info.itemsize, "int"))
        return
    if info.layout == PACKED:
        item.macros.append((f"{up}_BITS", info.bits, "int"))
        if unpack:
            values = t.numpy().reshape(-1)
            item.lines.append(f"{name} unpacked: one {'int8_t' if info.signed else 'uint8_t'} "
                              f"per element")
            _add_data(item, "int8_t" if info.signed else "uint8_t", ident, values,
                      "i8" if info.signed else "u8")
            item.macros.append((f"{up}_BYTES", values.nbytes, "int"))
        else:
            t.numpy()  # checks that the bytes cover the shape
            need = info.stored_bytes(t.size)
            values = t.raw()[:need]
            item.lines.append(f"{name} packed {8 // info.bits} per byte, flat over the row-major "
                              f"tensor, low bits first")
            _add_data(item, "uint8_t", ident, values, "u8")
            item.macros.append((f"{up}_BYTES", need, "int"))
        return
    # STRING
    strings = t.numpy().reshape(-1)
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=strings.size)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    blob = np.frombuffer(b"".join(strings.tolist()), np.uint8)
    item.lines.append("strings: bytes of all strings; string i is "
                      "[offsets[i], offsets[i + 1])")
    _add_data(item, "uint8_t", ident, blob, "u8")
    item.arrays.append(_Array("uint32_t", f"{ident}_offsets", offsets.size, offsets, "dec"))
    item.macros.append((f"{up}_BYTES", blob.size, "int"))


def _add_data(item: _Item, ctype: str, ident: str, values: np.ndarray, kind: str) -> None:
    if values.size == 0:
        item.lines.append("empty: no array is written")
        return
    item.arrays.append(_Array(ctype, ident, values.size, values, kind, data=True))


def _emit(w: _Writer, it: _Item) -> None:
    body = "\n * ".join(it.lines)
    w.text(f"\n/* {body}\n */\n")
    for name, value, kind in it.macros:
        w.text(f"#define {name} {_literal(kind, value)}\n")
    for a in it.arrays:
        w.array(a)


# -- requantization ---------------------------------------------------------------------------


def _op_ident(prefix: str, sg: int, index: int) -> str:
    return f"{prefix}{'sg%d_' % sg if sg else ''}op{index}"


def _requant_ops(model, tensors) -> list:
    """``(subgraph, op, input, weights, output)`` of each integer conv/FC whose weights
    are among ``tensors``."""
    chosen = {(t.subgraph, t.index) for t in tensors}
    out = []
    for sg in model.subgraphs:
        try:
            ops = sg.operators
        except (ImportError, AttributeError) as e:  # pragma: no cover - reader without ops
            raise UnsupportedError(f"requantization needs the operator list, which this "
                                   f"reader cannot read ({e})") from None
        for op in ops:
            if op.opcode not in _REQUANT_OPS:
                continue
            ins, outs = op.inputs, op.outputs
            if len(ins) < 2 or not outs or -1 in (ins[0], ins[1], outs[0]):
                continue
            x, w, y = (sg.tensors[i] for i in (ins[0], ins[1], outs[0]))
            info = TYPES.get(w.type_code)
            # the integer kernels' requantization is for 8-bit signed weights
            if not (info and info.signed and info.bits == 8) or (sg.index, w.index) not in chosen:
                continue
            out.append((sg.index, op, x, w, y))
    return out


def _emit_requant(w: _Writer, prefix, sg, op, x, wt, y, *, single_rounding: bool) -> None:
    ident = _op_ident(prefix, sg, op.index)
    up = ident.upper()
    head = (f"\n/* operator {sg}:{op.index} {op.opcode}: input \"{_comment_text(x.name)}\", "
            f"weights \"{_comment_text(wt.name)}\", output \"{_comment_text(y.name)}\"\n")
    qx, qw, qy = x.quantization, wt.quantization, y.quantization
    problem = None
    if qx is None or qx.scale.size != 1 or qy is None or qy.scale.size != 1:
        problem = "the input and output need one (per-tensor) scale each"
    elif qw is None or qw.scale.size == 0:
        problem = "the weights have no quantization scale"
    if problem is None:
        axis = _REQUANT_OPS[op.opcode]
        n = qw.scale.size
        if n == 1 and axis is not None and wt.ndim > axis:
            n = wt.shape[axis]  # TFLite Micro broadcasts a per-tensor scale over channels
        try:
            mult, shift = requantization(qx.scale[0], qw.scale, qy.scale[0], n,
                                         single_rounding=single_rounding)
        except ValueError as e:
            problem = str(e)
    if problem is not None:
        w.text(head + f" * no requantization: {problem}\n */\n")
        return
    w.text(head + f" * per output channel: multiplier and shift of input_scale * "
           f"weight_scale[c] / output_scale,\n * as TFLite's QuantizeMultiplier"
           f"{' (single rounding)' if single_rounding else ''}\n */\n")
    w.text(f"#define {up}_CHANNELS {mult.size}\n")
    w.array(_Array("int32_t", f"{ident}_multiplier", mult.size, mult.astype(np.int64), "dec"))
    w.array(_Array("int32_t", f"{ident}_shift", shift.size, shift.astype(np.int64), "dec"))
