"""Where a model's bytes come from: a read-only mapping of a file, or the caller's bytes.

:func:`open_source` returns a :class:`Source`: ``data`` (a read-only buffer the
flatbuffer reads go through), ``size``, ``path`` and :meth:`Source.close`, which
releases the mapping when no array views it any more (the mapping closes with
the last view otherwise).
"""

from __future__ import annotations

import mmap
import os
import sys

from ..errors import InvalidModelError

__all__ = ["Source", "open_source", "MMAP_OPTIONS"]

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


def open_source(source) -> Source:
    """A path (``str`` or path-like) is mapped read-only; bytes-like data (``bytes``,
    ``bytearray``, ``memoryview``, ``mmap``) is used in place and must stay unchanged
    while the model is in use.  Raises ``OSError`` when a path cannot be read,
    :class:`InvalidModelError` for an empty file, ``TypeError`` for anything else."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise InvalidModelError(f"{path}: the file is empty (0 bytes)")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ, **MMAP_OPTIONS)
        return Source(mm, path, mm)
    try:
        view = memoryview(source)
    except TypeError:
        raise TypeError(
            f"open() takes a path or bytes-like data, not {type(source).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return Source(view.toreadonly(), None)
