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

from .errors import InvalidModelError

__all__ = ["Signature", "read_signatures"]


class Signature:
    """One SignatureDef: ``key``, ``subgraph`` (its index), and ``inputs`` /
    ``outputs`` as ordered read-only mappings name -> Tensor, in file order."""

    __slots__ = ("_model", "_state", "index", "key", "subgraph", "_inputs", "_outputs")

    def __init__(self, model, state, index: int):
        rec = state.signature(index)
        self._model = model
        self._state = state
        self.index = index
        self.key = rec.key
        self.subgraph = rec.subgraph
        self._inputs = None
        self._outputs = None

    @property
    def _where(self) -> str:
        return f"signature_defs[{self.index}] ({self.key!r})"

    def _error(self, what: str) -> InvalidModelError:
        return self._state.error(self._where, what)

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
        return self._state.signature(self.index).deprecated_tag

    def _indices(self, side: str) -> "dict[str, int]":
        out: dict[str, int] = {}
        for name, idx in self._state.signature_maps(self.index, side):
            out.setdefault(name, idx)  # the first of a repeated name wins
        return out

    @property
    def input_indices(self) -> "dict[str, int]":
        """Input name -> tensor index in the signature's subgraph (as stored)."""
        return self._indices("inputs")

    @property
    def output_indices(self) -> "dict[str, int]":
        return self._indices("outputs")

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


def read_signatures(model, state) -> "Mapping[str, Signature]":
    """Signature key -> :class:`Signature`, in file order (the first of a repeated
    key wins).  Raises :class:`InvalidModelError` for a SignatureDef without a key."""
    n = state.signature_count()
    state.spend(n, "signature_defs")
    out: dict[str, Signature] = {}
    for i in range(n):
        rec = state.signature(i)
        if rec.key is None:
            raise InvalidModelError(f"{state.label}: signature_defs[{i}] has no "
                                    f"signature_key, which the runtime requires")
        if rec.key not in out:
            out[rec.key] = Signature(model, state, i)
    return MappingProxyType(out)
