"""SignatureDefs: named entry points with named inputs and outputs.

``SignatureDef{inputs:[TensorMap{name, tensor_index}], outputs, signature_key,
subgraph_index}``.  ``tensor_index`` indexes the tensors of subgraph
``subgraph_index``.  The order of a signature's outputs need not follow
``SubGraph.outputs``: names, not positions, are what a signature promises.
The runtime requires ``signature_key`` (``InterpreterBuilder::ParseSignatureDefs``).

Keys are read when the signatures are listed; each signature's tensor maps are
read, and their indices checked, when its ``inputs`` or ``outputs`` are asked for.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from . import _schema
from ._flatbuffer import Table
from .errors import InvalidModelError

__all__ = ["Signature", "read_signatures"]

_M_SIGNATURES = _schema.slots("Model", "signature_defs")[0]
_SD_INPUTS, _SD_OUTPUTS, _SD_KEY, _SD_TAG, _SD_SUBGRAPH = _schema.slots(
    "SignatureDef", "inputs", "outputs", "signature_key", "deprecated_tag", "subgraph_index")
_TM_NAME, _TM_INDEX = _schema.slots("TensorMap", "name", "tensor_index")


class Signature:
    """One SignatureDef: ``key``, ``subgraph`` (its index), and ``inputs`` /
    ``outputs`` as ordered read-only mappings name -> Tensor, in file order."""

    __slots__ = ("_model", "_table", "index", "key", "subgraph", "_inputs", "_outputs")

    def __init__(self, model, index: int, table: Table, key: str):
        self._model = model
        self._table = table
        self.index = index
        self.key = key
        self.subgraph = table.scalar(_SD_SUBGRAPH, "u32", 0, "subgraph_index")
        self._inputs = None
        self._outputs = None

    @property
    def _where(self) -> str:
        return f"signature_defs[{self.index}] ({self.key!r})"

    def _error(self, what: str) -> InvalidModelError:
        return InvalidModelError(f"{self._model._fbuf.label}: {self._where}: {what}")

    @property
    def graph(self):
        """The :class:`~tflite_weights.model.Subgraph` the signature runs."""
        sgs = self._model.subgraphs
        if not 0 <= self.subgraph < len(sgs):
            raise self._error(f"subgraph_index is {self.subgraph}, but the model has "
                              f"{len(sgs)} subgraphs")
        return sgs[self.subgraph]

    @property
    def deprecated_tag(self) -> "str | None":
        return self._table.string(_SD_TAG, "deprecated_tag")

    def _indices(self, slot: int, field: str) -> "dict[str, int]":
        vec = self._table.tables(slot, field)
        out: dict[str, int] = {}
        for t in vec or ():
            name = t.string(_TM_NAME, "name") or ""
            idx = t.scalar(_TM_INDEX, "u32", 0, "tensor_index")
            out.setdefault(name, idx)  # the first of a repeated name wins
        return out

    @property
    def input_indices(self) -> "dict[str, int]":
        """Input name -> tensor index in the signature's subgraph (as stored)."""
        return self._indices(_SD_INPUTS, "inputs")

    @property
    def output_indices(self) -> "dict[str, int]":
        return self._indices(_SD_OUTPUTS, "outputs")

    def _resolve(self, indices: "dict[str, int]", field: str) -> "Mapping[str, object]":
        tensors = self.graph.tensors
        out = {}
        for name, idx in indices.items():
            if idx >= len(tensors):
                raise self._error(
                    f"{field} {name!r} names tensor {idx}, but subgraph {self.subgraph} "
                    f"has {len(tensors)} tensors")
            out[name] = tensors[idx]
        return MappingProxyType(out)

    @property
    def inputs(self) -> "Mapping[str, object]":
        if self._inputs is None:
            self._inputs = self._resolve(self.input_indices, "input")
        return self._inputs

    @property
    def outputs(self) -> "Mapping[str, object]":
        if self._outputs is None:
            self._outputs = self._resolve(self.output_indices, "output")
        return self._outputs

    def to_dict(self) -> dict:
        """JSON-ready: key, subgraph, and name -> tensor index for inputs and outputs."""
        return {"key": self.key, "subgraph": self.subgraph,
                "inputs": self.input_indices, "outputs": self.output_indices}

    def __repr__(self) -> str:
        try:
            return (f"<Signature {self.key!r} subgraph {self.subgraph}: "
                    f"inputs {list(self.input_indices)} outputs {list(self.output_indices)}>")
        except Exception as e:  # a damaged signature still prints
            return f"<Signature {self.key!r} (unreadable: {e})>"


def read_signatures(model) -> "Mapping[str, Signature]":
    """Signature key -> :class:`Signature`, in file order (the first of a repeated
    key wins).  Raises :class:`InvalidModelError` for a SignatureDef without a key."""
    vec = model._root.tables(_M_SIGNATURES, "signature_defs")
    out: dict[str, Signature] = {}
    for i in range(0 if vec is None else len(vec)):
        t = vec[i]
        key = t.string(_SD_KEY, "signature_key")
        if key is None:
            raise InvalidModelError(
                f"{model._fbuf.label}: signature_defs[{i}] has no signature_key, which the "
                f"runtime requires")
        if key not in out:
            out[key] = Signature(model, i, t, key)
    return MappingProxyType(out)
