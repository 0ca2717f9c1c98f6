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
range.  Each file is mapped read-only once, on first use (by the model's
state); values are views over the mapping, and :meth:`Model.close` releases the
mappings (a mapping still viewed by live arrays closes when the last of them goes).

This module holds the rule for group file names; the records are in
:mod:`.records` (``ExternalBuffer``, ``ExternalBufferGroup``).
"""

from __future__ import annotations

import os

from ..errors import ExternalDataError

__all__ = ["resolve_group_path"]


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
