"""Where a model's bytes come from: a read-only mapping of a file, a private copy of
it, or the caller's bytes.

:func:`open_source` returns a :class:`Source`: ``data`` (a read-only buffer the
flatbuffer reads go through), ``size``, ``path`` and :meth:`Source.close`, which
releases the mapping when no array views it any more (the mapping closes with
the last view otherwise).

A mapping is the fast default, and its hazard is the classic one of mapped files
(LMDB and ``numpy.memmap`` document it): if another process truncates the file
while it is mapped, reading the lost pages kills the process with SIGBUS, which
Python cannot catch.  ``mmap=False`` reads the file once into memory instead: the
reader then never touches the file again, at the cost of the file's size in memory.
"""

from __future__ import annotations

import mmap as _mmap
import os
import stat
import sys

from ..errors import InvalidModelError

__all__ = ["Source", "open_source", "read_all", "MMAP_OPTIONS"]

#: Python 3.13+ can map without keeping a duplicate of the file descriptor: the
#: file is then closed when open() returns, even while arrays keep the mapping
#: alive after close().  Before 3.13 the mapping holds a descriptor until then.
MMAP_OPTIONS = {"trackfd": False} if sys.version_info >= (3, 13) else {}


class Source:
    """The bytes of one model: ``data`` (read-only), ``size``, ``path`` (None for
    bytes).  ``mapping`` is the mmap to release on :meth:`close` (None for bytes the
    caller owns: they are only dropped, since arrays handed out may view them)."""

    __slots__ = ("data", "size", "path", "mapping")

    def __init__(self, data, path: "str | None", mapping=None):
        self.data = data
        self.size = len(data)
        self.path = path
        self.mapping = mapping

    def close(self) -> None:
        self.data = None
        mapping, self.mapping = self.mapping, None
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:  # arrays still view the mapping; it closes with them
                pass


def _kind(mode: int) -> "str | None":
    """What a file that is not a regular file is, for the message refusing it."""
    for test, name in ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def read_all(f, size_hint: int = 0) -> bytes:
    """Everything a file object holds until its end (a pipe, standard input)."""
    chunks = []
    while True:
        chunk = f.read(max(size_hint, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def open_source(source, *, mmap: bool = True) -> Source:
    """A path (``str`` or path-like) is mapped read-only, or with ``mmap=False`` read
    into a private copy; bytes-like data (``bytes``, ``bytearray``, ``memoryview``,
    ``mmap``) is used in place and must stay unchanged while the model is in use.

    A path must name a regular file: a pipe, a device, a socket or a directory is
    refused (:class:`InvalidModelError`) before it is opened, so that a FIFO without
    a writer cannot make ``open()`` wait forever.  Raises ``OSError`` when a path
    cannot be read, :class:`InvalidModelError` for an empty file, ``TypeError`` for
    anything else.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        kind = _kind(os.stat(path).st_mode)
        if kind is not None:
            raise InvalidModelError(
                f"{path} is {kind}, not a regular file: pass a model file (the command "
                f"line reads a model from standard input with '-')")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not mmap:
                data = read_all(f, size)  # a private copy: the file may change under us
                if not data:
                    raise InvalidModelError(f"{path}: the file is empty (0 bytes)")
                return Source(memoryview(data).toreadonly(), path)
            if size == 0:
                raise InvalidModelError(f"{path}: the file is empty (0 bytes)")
            mm = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ, **MMAP_OPTIONS)
        return Source(mm, path, mm)
    try:
        view = memoryview(source)
    except TypeError:
        raise TypeError(
            f"open() takes a path or bytes-like data, not {type(source).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return Source(view.toreadonly(), None)
