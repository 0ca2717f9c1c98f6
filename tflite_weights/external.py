"""External buffers: tensor values stored in files beside the model.

Schema 3d (LiteRT, 2025-10)::

    table ExternalBufferGroup { name:string; }          // a file
    table ExternalBuffer { id:uint; group:uint; offset:ulong; length:ulong; packing:string; }
    Tensor.external_buffer:uint                          // 0: use Tensor.buffer
    Model.external_buffer_groups:[ExternalBufferGroup]; Model.external_buffers:[ExternalBuffer];

A tensor with a non-zero ``external_buffer`` takes its bytes from the
ExternalBuffer whose ``id`` equals it (matched by id, not by position, as the
importer ``flatbuffer_import.cc`` and LiteRT's weight loader do): bytes
``[offset, offset + length)`` of the file named by group ``group``.  The
converter writes ids ``(1 << 31) | n`` and ``packing = "unpacked"``; the
schema leaves ``packing`` to the writer and LiteRT's loader reads the bytes
as they are whatever it says, so it is reported but not interpreted here.

Files are looked for in the model's ``external_data_dir`` (the folder of the
model file unless :func:`tflite_weights.open` was given one).  A group name is
a relative path below that folder: absolute names, names with a ``..``
component and names whose real path (after symbolic links) leaves the folder
are refused with :class:`ExternalDataError`, as are missing files, slices
beyond the end of the file, unknown or duplicated ids and group indices out of
range.  Each file is mapped read-only once, on first use; values are views
over the mapping, and :meth:`Model.close` releases the mappings (a mapping
still viewed by live arrays closes when the last of them goes).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

from . import _schema
from ._flatbuffer import FlatBuffer
from .errors import ExternalDataError

__all__ = ["ExternalBufferGroup", "ExternalBuffer", "external_buffer_groups",
           "external_buffers", "external_range", "resolve_group_path"]

_M_GROUPS, _M_EXT = _schema.slots("Model", "external_buffer_groups", "external_buffers")
_G_NAME = _schema.slots("ExternalBufferGroup", "name")[0]
_E_ID, _E_GROUP, _E_OFFSET, _E_LENGTH, _E_PACKING = _schema.slots(
    "ExternalBuffer", "id", "group", "offset", "length", "packing")


@dataclass(frozen=True)
class ExternalBufferGroup:
    """One entry of ``Model.external_buffer_groups``: a file, by ``name``."""

    index: int
    name: str


@dataclass(frozen=True)
class ExternalBuffer:
    """One entry of ``Model.external_buffers``: ``length`` bytes at ``offset`` of the
    file of group ``group``; tensors refer to it by ``id``."""

    index: int
    id: int
    group: int
    offset: int
    length: int
    packing: str


class _ExternalFile:
    """A read-only mapping of one external file (empty files get ``b""``)."""

    __slots__ = ("path", "data", "size", "_mm")

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        self.data = self._mm if self._mm is not None else b""

    def close(self) -> None:
        mm, self._mm = self._mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # arrays still view it; it closes with the last of them
                pass


def _cached(model, key, build):
    value = model.__dict__.get(key)
    if value is None:
        model._check_open()
        value = build()
        model.__dict__[key] = value
    return value


def external_buffer_groups(model) -> "tuple[ExternalBufferGroup, ...]":
    def build():
        vec = model._root.tables(_M_GROUPS, "external_buffer_groups")
        return tuple(ExternalBufferGroup(i, vec[i].string(_G_NAME, "name") or "")
                     for i in range(0 if vec is None else len(vec)))
    return _cached(model, "_ext_groups", build)


def external_buffers(model) -> "tuple[ExternalBuffer, ...]":
    def build():
        vec = model._root.tables(_M_EXT, "external_buffers")
        out = []
        for i in range(0 if vec is None else len(vec)):
            t = vec[i]
            out.append(ExternalBuffer(
                i, t.scalar(_E_ID, "u32", 0, "id"), t.scalar(_E_GROUP, "u32", 0, "group"),
                t.scalar(_E_OFFSET, "u64", 0, "offset"), t.scalar(_E_LENGTH, "u64", 0, "length"),
                t.string(_E_PACKING, "packing") or ""))
        return tuple(out)
    return _cached(model, "_ext_buffers", build)


def resolve_group_path(directory: str, name: str, where: str = "external buffer group") -> str:
    """The real path of group file ``name`` inside ``directory``; refuses names that
    are empty, absolute, contain a ``..`` component or a NUL, or that resolve (through
    symbolic links) outside ``directory``."""
    if not name:
        raise ExternalDataError(f"{where} has an empty file name")
    if "\0" in name:
        raise ExternalDataError(f"{where}: file name {name!r} contains a NUL character")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or \
            (len(name) > 1 and name[1] == ":"):
        raise ExternalDataError(
            f"{where}: file name {name!r} is absolute; only paths relative to the model's "
            f"folder are followed")
    if ".." in parts:
        raise ExternalDataError(
            f"{where}: file name {name!r} has a '..' component; only paths inside the "
            f"model's folder are followed")
    root = os.path.realpath(directory)
    path = os.path.realpath(os.path.join(root, *[p for p in parts if p not in ("", ".")]))
    if os.path.commonpath([root, path]) != root or path == root:
        raise ExternalDataError(
            f"{where}: file name {name!r} resolves to {path}, outside {root}")
    return path


def _file(model, path: str, label: str) -> _ExternalFile:
    files = model.__dict__.setdefault("_external_files", {})
    f = files.get(path)
    if f is None:
        with model._lock:
            f = files.get(path)
            if f is None:
                if not os.path.isfile(path):
                    raise ExternalDataError(f"{label}: file {path} does not exist")
                try:
                    f = _ExternalFile(path)
                except OSError as e:
                    raise ExternalDataError(f"{label}: file {path} cannot be read: {e}") from e
                files[path] = f
    return f


def external_range(model, ext_id: int, tensor) -> "tuple[FlatBuffer, int, int]":
    """``(window, start, length)`` of the bytes of external buffer ``ext_id`` for
    ``tensor`` (the window maps the group's file)."""
    what = f"{tensor._where} ({tensor.name!r})"
    hits = [b for b in external_buffers(model) if b.id == ext_id]
    if not hits:
        raise ExternalDataError(
            f"{what} refers to external buffer id {ext_id}, which Model.external_buffers "
            f"does not list ({len(external_buffers(model))} entries)")
    if len(hits) > 1:
        raise ExternalDataError(
            f"{what}: external buffer id {ext_id} is listed {len(hits)} times (entries "
            f"{', '.join(str(b.index) for b in hits)}); ids must be unique")
    eb = hits[0]
    groups = external_buffer_groups(model)
    label = f"{what}: external buffer id {ext_id} (group {eb.group})"
    if eb.group >= len(groups):
        raise ExternalDataError(f"{label}: the model has only {len(groups)} external buffer "
                                f"groups")
    name = groups[eb.group].name
    directory = model.external_data_dir
    if directory is None:
        raise ExternalDataError(
            f"{label} lives in file {name!r}, but the model was opened from bytes; pass "
            f"external_data_dir= to tflite_weights.open() to say where that file is")
    path = resolve_group_path(directory, name, f"external buffer group {eb.group} ({name!r})")
    f = _file(model, path, label)
    if eb.offset > f.size or eb.length > f.size - eb.offset:
        raise ExternalDataError(
            f"{label}: bytes {eb.offset}..{eb.offset + eb.length} lie beyond the end of "
            f"{path} ({f.size} bytes)")
    return FlatBuffer(f.data, label=os.path.basename(path)), eb.offset, eb.length
