"""The zip archive that TFLite Support appends to a model (associated files).

"Zip API is used to concatenate associated files after tflite model file"
(tflite-support ``metadata.py``): labels and vocabularies follow the
flatbuffer as a zip archive, whose end record ends the file.  Its offsets count
from the start of the file when it was appended in place (zipfile's mode "a"),
or from the archive's first byte when it was concatenated.

A member is read only up to ``max_size`` bytes (:data:`MAX_MEMBER_SIZE` by
default, and never more than 1024 times its compressed size): a small file
cannot make a read allocate gigabytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Iterator, Mapping

from ..errors import ClosedModelError, InvalidModelError
from .flatbuffer import FlatBuffer

__all__ = ["AssociatedFiles", "read_archive", "MAX_MEMBER_SIZE", "MAX_RATIO"]

#: the largest member read by default (``read(name, max_size=...)`` raises it)
MAX_MEMBER_SIZE = 256 << 20
#: general purpose flags of members that cannot be read: encrypted (bit 0), compressed
#: patch data (bit 5), strong encryption (bit 6)
_UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40
#: the largest expansion of a compressed member (deflate's own limit is about 1032)
MAX_RATIO = 1024


_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF


class _Window(io.RawIOBase):
    """A read-only, seekable file over ``data[start:end]`` (no copy until read)."""

    def __init__(self, data, start: int, end: int):
        self._data = data
        self._start = start
        self._end = end
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        size = self._end - self._start
        base = {0: 0, 1: self._pos, 2: size}[whence]
        pos = base + offset
        if pos < 0:
            raise OSError(f"seek to {pos}, before the start of the archive")
        self._pos = pos
        return pos

    def readinto(self, b) -> int:
        size = self._end - self._start
        n = max(0, min(len(b), size - self._pos))
        if n:
            a = self._start + self._pos
            b[:n] = self._data[a:a + n]
            self._pos += n
        return n


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
               struct.error, zlib.error, NotImplementedError, RuntimeError)


def _find_archive(fb: FlatBuffer) -> "tuple[int, int] | None":
    """``(start, end_of_central_directory)`` of a zip archive that ends the file.

    The end-of-central-directory record sits in the last 22 + 65535 bytes and
    must end exactly at the end of the file (with its comment).  ``start`` is the
    position the archive's offsets count from: 0 when the archive was appended in
    place (zipfile's mode "a"), the archive's first byte when it was concatenated.
    """
    size = fb.size
    lo = max(0, size - _EOCD_SIZE - _MAX_COMMENT)
    tail = fb.bytes_at(lo, size - lo, "end of file")
    at = len(tail)
    while True:
        at = tail.rfind(_EOCD, 0, at)
        if at < 0:
            return None
        if at + _EOCD_SIZE <= len(tail):
            (_, _, _, _, _, cd_size, cd_offset, comment) = struct.unpack_from(
                "<4sHHHHIIH", tail, at)
            if at + _EOCD_SIZE + comment == len(tail):
                break
    eocd = lo + at
    where = f"associated files: zip end record at byte {eocd}"
    cd_start = eocd - cd_size
    if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF:  # zip64
        loc = eocd - _ZIP64_LOCATOR_SIZE
        raw = fb.bytes_at(loc, _ZIP64_LOCATOR_SIZE, where) if loc >= 0 else b""
        if raw[:4] != _ZIP64_LOCATOR:
            raise InvalidModelError(f"{fb.label}: {where}: a zip64 archive without "
                                    f"its zip64 locator")
        rec_offset = struct.unpack_from("<Q", raw, 8)[0]
        rec = loc - 56
        head = fb.bytes_at(rec, 56, where) if rec >= 0 else b""
        if head[:4] != _ZIP64_EOCD:
            raise InvalidModelError(f"{fb.label}: {where}: zip64 end record missing")
        cd_size, cd_offset = struct.unpack_from("<QQ", head, 40)
        return rec - rec_offset, eocd
    start = cd_start - cd_offset
    if start < 0 or cd_start < 0:
        raise InvalidModelError(
            f"{fb.label}: {where}: central directory of {cd_size} bytes at archive "
            f"offset {cd_offset} does not fit before it")
    return start, eocd


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    compressed_size: int


class AssociatedFiles(Mapping):
    """The zip archive appended to a model: file name -> uncompressed size.

    Empty when the file ends without one.  ``read(name)`` returns a file's bytes.
    ``offset`` is where the archive's offsets count from (0 when it was appended
    in place), ``archive_start`` its first byte.
    """

    def __init__(self, fb: FlatBuffer, listing: "_Listing"):
        self._fb = fb
        self._listing = listing
        self.offset = listing.offset
        self.archive_start = listing.archive_start

    @property
    def present(self) -> bool:
        return self.offset is not None

    def __getitem__(self, name: str) -> int:
        return self._listing.members[name].size

    def __iter__(self) -> Iterator[str]:
        return iter(self._listing.members)

    def __len__(self) -> int:
        return len(self._listing.members)

    def compressed_size(self, name: str) -> int:
        return self._listing.members[name].compressed_size

    def read(self, name: str, *, max_size: int = MAX_MEMBER_SIZE) -> bytes:
        """The bytes of the file ``name`` (KeyError when the archive has none).

        Raises :class:`InvalidModelError` when the member is damaged (its CRC or
        size does not match its directory entry) or would expand past ``max_size``
        bytes or :data:`MAX_RATIO` times its compressed size (a small file must not
        make a read allocate gigabytes; pass a larger ``max_size`` to read more).
        """
        info = self._listing.infos.get(name)
        if info is None:
            known = ", ".join(map(repr, self._listing.members)) or "none"
            raise KeyError(f"no associated file named {name!r} (files: {known})")
        fb = self._fb
        if fb.closed:
            raise ClosedModelError(f"{fb.label}: the model is closed")
        limit = min(max_size, max(MAX_RATIO * info.compress_size, 1 << 16))
        if info.file_size > limit:
            raise self._error(f"{name!r} declares {info.file_size} bytes, more than the "
                              f"{limit} bytes a read may expand to (max_size={max_size}, at "
                              f"most {MAX_RATIO} x its {info.compress_size} compressed bytes)")
        raw = self._compressed(info)
        try:
            data = _inflate(info.compress_type, raw, limit)
        except (zlib.error, OSError, EOFError, ValueError, LookupError) as e:
            raise self._error(f"{name!r} cannot be decompressed: {e}") from None
        if len(data) > limit:
            raise self._error(f"{name!r} expands past {limit} bytes (it declares "
                              f"{info.file_size}; max_size={max_size})")
        if len(data) != info.file_size:
            raise self._error(f"{name!r} declares {info.file_size} bytes but holds {len(data)}")
        if zlib.crc32(data) != info.CRC:
            raise self._error(f"{name!r} fails its CRC check")
        return data

    def _compressed(self, info) -> bytes:
        """The member's stored bytes, after its local header."""
        fb = self._fb
        at = self.offset + info.header_offset
        where = f"associated file {info.filename!r}"
        if at < 0 or at + 30 > fb.size:
            raise self._error(f"{where}: its local header at byte {at} lies outside the file")
        head = fb.bytes_at(at, 30, where)
        if head[:4] != b"PK\x03\x04":
            raise self._error(f"{where}: no local header at byte {at}")
        flags = struct.unpack_from("<H", head, 6)[0]
        if (flags | info.flag_bits) & _UNREADABLE_FLAGS:
            raise self._error(f"{where} is encrypted or stored as patch data (general "
                              f"purpose flags {flags | info.flag_bits:#06x})")
        n, m = struct.unpack_from("<HH", head, 26)
        if at + 30 + n > fb.size:
            raise self._error(f"{where}: its local header's name runs past the end of the file")
        local = fb.bytes_at(at + 30, n, where).decode("utf-8" if flags & 0x800 else "cp437")
        if local != info.orig_filename:
            raise self._error(f"{where}: the local header names {local!r}")
        start = at + 30 + n + m
        if start + info.compress_size > fb.size:
            raise self._error(f"{where}: {info.compress_size} compressed bytes at byte {start} "
                              f"run past the end of the file ({fb.size} bytes)")
        return fb.bytes_at(start, info.compress_size, where)

    def _error(self, what) -> InvalidModelError:
        return _zip_error(self._fb, self.offset, what)

    def to_list(self) -> "list[dict]":
        return [{"name": m.name, "size": m.size, "compressed_size": m.compressed_size}
                for m in self._listing.members.values()]

    def __repr__(self) -> str:
        if not self.present:
            return "<AssociatedFiles: none>"
        return f"<AssociatedFiles {list(self)} (offsets from byte {self.offset})>"


def _inflate(method: int, raw: bytes, limit: int) -> bytes:
    """Decompress one member, producing at most ``limit + 1`` bytes."""
    if method == zipfile.ZIP_STORED:
        return raw[:limit + 1]
    if method == zipfile.ZIP_DEFLATED:
        return zlib.decompressobj(-15).decompress(raw, limit + 1)
    if method == zipfile.ZIP_BZIP2:
        import bz2
        return bz2.BZ2Decompressor().decompress(raw, limit + 1)
    if method == zipfile.ZIP_LZMA:
        import lzma
        # zipfile's LZMA members: 2 version bytes, 2 bytes of property size, the
        # properties, then raw LZMA1 data
        if len(raw) < 4:
            raise ValueError("truncated LZMA header")
        psize = struct.unpack_from("<H", raw, 2)[0]
        props = raw[4:4 + psize]
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt]).decompress(
            raw[4 + psize:], limit + 1)
    raise LookupError(f"compression method {method} is not supported")


def _zip_error(fb: FlatBuffer, offset, e) -> InvalidModelError:
    return InvalidModelError(
        f"{fb.label}: associated files: the zip archive at the end of the file "
        f"(offsets from byte {offset}) is damaged: {e}")


class _Listing:
    """The archive's directory."""

    def __init__(self, fb: FlatBuffer):
        self.members: "dict[str, _Member]" = {}
        self.infos: dict = {}
        self.offset = self.archive_start = None
        span = _find_archive(fb)
        if span is None:
            return
        self.offset = span[0]
        try:
            with zipfile.ZipFile(_Window(fb.data, self.offset, fb.size), "r") as zf:
                infos = zf.infolist()
        except ClosedModelError:
            raise
        except _ZIP_ERRORS as e:
            raise _zip_error(fb, self.offset, e) from None
        for info in infos:
            if info.filename not in self.infos:
                self.infos[info.filename] = info
                self.members[info.filename] = _Member(info.filename, info.file_size,
                                                      info.compress_size)
        self.archive_start = self.offset + min(
            (i.header_offset for i in infos), default=span[1] - self.offset)


def read_archive(fb: FlatBuffer) -> AssociatedFiles:
    """The files of a zip archive that ends ``fb`` (TFLite Support packs labels and
    vocabularies this way): an empty mapping when there is none.  Raises
    :class:`InvalidModelError` when the archive's directory is damaged."""
    return AssociatedFiles(fb, _Listing(fb))
