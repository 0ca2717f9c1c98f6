"""External buffers: tensor data in files next to the model."""

from __future__ import annotations

from .errors import UnsupportedError


def external_range(model, ext_id, tensor):
    raise UnsupportedError(f"{tensor._where} ({tensor.name!r}) stores its values in external "
                           f"buffer {ext_id}, which this reader does not resolve yet")
