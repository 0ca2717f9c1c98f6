"""Operators: what each subgraph computes, and which inputs are weights.

An :class:`Operator` is a view over one ``Operator`` table of a subgraph.  It
is created without reading anything; its opcode, tensors and options are
decoded when first asked for, so a damaged operator raises
:class:`~tflite_weights.errors.InvalidModelError` only when its bad part is
used, never at ``open()``.

The opcode is the schema's ``BuiltinOperator`` name of
``max(builtin_code, deprecated_builtin_code)`` (LiteRT
``tflite/converter/schema/schema_utils.cc::GetBuiltinCode``): files from
before ``builtin_code`` existed leave it 0, and codes above 127 store the
placeholder 127 in the deprecated byte.

Weights by role: :data:`WEIGHT_ROLES` says, per opcode, which input position
is the kernel's filter, weights or bias (the kernels' own input index
constants, e.g. ``tflite/kernels/lstm_shared.h``).  :func:`iter_weights`
yields every such input that holds a constant, following a ``DEQUANTIZE`` or
``DENSIFY`` back to the constant it expands (float16 and sparse weights).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .errors import InvalidModelError, QuantizationError, UnsupportedError
from .format import records, schema
from .format.records import table_to_dict  # noqa: F401  (the generic decoder, re-exported)
from .format.types import TYPES
from .numerics import shuffled

__all__ = [
    "Operator",
    "OperatorCode",
    "WEIGHT_ROLES",
    "LSTM_BASIC_ROLES",
    "producers_of",
    "consumers_of",
    "weight_roles",
    "stored_constant",
    "iter_weights",
    "table_to_dict",
    "shuffled_fc_operators",
    "is_shuffled_fc_weights",
    "unshuffle_fc_weights",
    "dequantize_fc_weights",
]


class OperatorCode:
    """One entry of ``Model.operator_codes``: ``code`` is the builtin operator
    (``max(builtin_code, deprecated_builtin_code)``), ``name`` its BuiltinOperator
    name (``"<code>"`` for a code newer than this reader's schema)."""

    __slots__ = ("index", "code", "name", "custom_code", "version", "builtin_code",
                 "deprecated_builtin_code")

    def __init__(self, rec: records.OperatorCodeRecord):
        self.index = rec.index
        self.code = rec.code
        self.name = rec.name
        self.custom_code = rec.custom_code
        self.version = rec.version
        self.builtin_code = rec.builtin_code
        self.deprecated_builtin_code = rec.deprecated_builtin_code

    def __repr__(self) -> str:
        custom = f" {self.custom_code!r}" if self.custom_code is not None else ""
        return f"<OperatorCode {self.index}: {self.name}{custom} v{self.version}>"


# -- operators ---------------------------------------------------------------------------


class Operator:
    """One operator of a subgraph, in execution order.

    ``opcode`` is the BuiltinOperator name (``"CONV_2D"``, ``"CUSTOM"``, or
    ``"<code>"`` for a code newer than this reader's schema); ``inputs`` and
    ``outputs`` are tensor indices of the same subgraph, ``-1`` marking an
    omitted optional input.  ``input_tensors`` gives the Tensor objects
    (None for ``-1``).  ``options`` is the builtin options table as a dict.
    Nothing is decoded until asked for: a damaged operator raises
    :class:`InvalidModelError` only when its bad part is used.
    """

    __slots__ = ("_sg", "index", "_state", "__weakref__")

    def __init__(self, subgraph, index: int, state):
        self._sg = subgraph
        self.index = index
        self._state = state

    # -- decoding -------------------------------------------------------------------
    @property
    def _record(self) -> records.OperatorRecord:
        return self._state.operator(self._sg.index, self.index)

    @property
    def _where(self) -> str:
        return f"subgraphs[{self._sg.index}].operators[{self.index}]"

    def _error(self, what: str) -> InvalidModelError:
        return self._state.error(self._where, what)

    @property
    def subgraph(self) -> int:
        """Index of the subgraph this operator belongs to."""
        return self._sg.index

    @property
    def model(self):
        return self._sg.model

    # -- opcode ----------------------------------------------------------------------
    @property
    def opcode_index(self) -> int:
        return self._record.opcode_index

    @property
    def operator_code(self) -> OperatorCode:
        """The ``Model.operator_codes`` entry (raises when ``opcode_index`` is out of
        range)."""
        return OperatorCode(self._state.operator_code(self.opcode_index, self._where))

    @property
    def opcode(self) -> str:
        return self._state.operator_code(self.opcode_index, self._where).name

    @property
    def opcode_code(self) -> int:
        return self._state.operator_code(self.opcode_index, self._where).code

    @property
    def custom_code(self) -> "str | None":
        return self._state.operator_code(self.opcode_index, self._where).custom_code

    @property
    def version(self) -> int:
        return self._state.operator_code(self.opcode_index, self._where).version

    # -- tensors ------------------------------------------------------------------------
    @property
    def inputs(self) -> "tuple[int, ...]":
        return self._record.inputs

    @property
    def outputs(self) -> "tuple[int, ...]":
        return self._record.outputs

    @property
    def intermediates(self) -> "tuple[int, ...]":
        return self._record.intermediates

    @property
    def mutating_variable_inputs(self) -> "tuple[bool, ...]":
        return self._record.mutating_variable_inputs

    def _tensor_at(self, i: int, field: str, pos: int):
        ts = self._sg.tensors
        if i == -1:
            return None
        if 0 <= i < len(ts):
            return ts[i]
        raise self._error(f"{field}[{pos}] is tensor {i}, but subgraph {self._sg.index} "
                          f"has {len(ts)} tensors")

    @property
    def input_tensors(self) -> "tuple":
        """Input tensors in order; None where an optional input is omitted (-1)."""
        return tuple(self._tensor_at(i, "inputs", p) for p, i in enumerate(self.inputs))

    @property
    def output_tensors(self) -> "tuple":
        return tuple(self._tensor_at(i, "outputs", p) for p, i in enumerate(self.outputs))

    @property
    def intermediate_tensors(self) -> "tuple":
        return tuple(self._tensor_at(i, "intermediates", p)
                     for p, i in enumerate(self.intermediates))

    def input(self, position: int):
        """The tensor at input ``position``; None when absent or omitted (-1)."""
        ins = self.inputs
        if not 0 <= position < len(ins):
            return None
        return self._tensor_at(ins[position], "inputs", position)

    # -- options ------------------------------------------------------------------------
    @property
    def options_type(self) -> "str | None":
        """The options table's name (``"Conv2DOptions"``), from ``builtin_options``
        or ``builtin_options_2``; None when the operator has none."""
        return records.options_member(self._record)

    @property
    def options(self) -> dict:
        """The builtin options as a dict of every field of the options table (schema
        defaults where the file leaves a field out).  Empty when there are none, or
        when the options table is newer than this reader's schema."""
        return dict(self._state.options(self._sg.index, self.index))

    # -- custom options ----------------------------------------------------------------
    @property
    def custom_options_format(self) -> str:
        return self._record.custom_options_format

    @property
    def large_custom_options_offset(self) -> int:
        return self._record.large_custom_options[0]

    @property
    def large_custom_options_size(self) -> int:
        return self._record.large_custom_options[1]

    @property
    def custom_options(self) -> "bytes | None":
        """The custom options bytes: the ``custom_options`` vector, or else the
        ``large_custom_options_offset/size`` range of the file (used when the offset
        is greater than 1, as in the runtime); None when there are none."""
        rec = self._record
        if rec.custom_options is not None:
            return rec.custom_options
        offset, size = rec.large_custom_options
        if offset > 1:
            st = self._state
            if offset + size > st.size:
                raise self._error(
                    f"large_custom_options_offset {offset} + size {size} = {offset + size} "
                    f"lies beyond the end of the file ({st.size} bytes)")
            return st.bytes_view(offset, size, f"{self._where}.large_custom_options").tobytes()
        return None

    @property
    def debug_metadata_index(self) -> int:
        return self._record.debug_metadata_index

    # -- roles ------------------------------------------------------------------------
    @property
    def roles(self) -> "dict[str, object]":
        """Role name -> input tensor (as wired, not followed through DEQUANTIZE) for
        the inputs :data:`WEIGHT_ROLES` names; omitted inputs are left out."""
        out = {}
        for pos, role in weight_roles(self).items():
            t = self.input(pos)
            if t is not None:
                out[role] = t
        return out

    def weights(self) -> "dict[str, object]":
        """Role name -> the stored constant behind each role input (through
        DEQUANTIZE/DENSIFY); inputs that are not constants are left out."""
        return {role: t for role, t in _weights_of(self)}

    # -- presentation -------------------------------------------------------------------
    def __repr__(self) -> str:
        try:
            name = self.opcode
            if self.custom_code is not None:
                name += f" {self.custom_code!r}"
            return (f"<Operator {self.subgraph}:{self.index} {name} v{self.version} "
                    f"inputs={list(self.inputs)} outputs={list(self.outputs)}>")
        except Exception as e:  # a damaged operator still prints
            return f"<Operator {self.subgraph}:{self.index} (unreadable: {e})>"


# -- graph index: producers and consumers ---------------------------------------------


def _graph(subgraph) -> "tuple[dict, dict]":
    """``(producers, consumers)``: tensor index -> operator indices, built once per
    subgraph from its operators (kept by the model's state)."""
    def build():
        producers: dict[int, list[int]] = {}
        consumers: dict[int, list[int]] = {}
        n = len(subgraph.tensors)
        for op in subgraph.operators:
            # an index that names no tensor cannot be a tensor's producer or consumer;
            # it raises where the operator's tensors are asked for
            for i in set(op.inputs):
                if 0 <= i < n:
                    consumers.setdefault(i, []).append(op.index)
            for i in set(op.outputs):
                if 0 <= i < n:
                    producers.setdefault(i, []).append(op.index)
        return producers, consumers
    return subgraph.operators[0]._state.cached(("graph", subgraph.index), build) \
        if subgraph.operators else ({}, {})


def producers_of(subgraph, index: int) -> "tuple[Operator, ...]":
    """Operators of ``subgraph`` that list tensor ``index`` among their outputs."""
    ops = subgraph.operators
    return tuple(ops[i] for i in _graph(subgraph)[0].get(index, ()))


def consumers_of(subgraph, index: int) -> "tuple[Operator, ...]":
    """Operators of ``subgraph`` that list tensor ``index`` among their inputs."""
    ops = subgraph.operators
    return tuple(ops[i] for i in _graph(subgraph)[1].get(index, ()))


# -- weights by role ----------------------------------------------------------------------

def _lstm_roles(prefix: str = "") -> "dict[int, str]":
    # tflite/kernels/lstm_shared.h, namespace lstm::full (0 = input, 18/19 = state)
    names = (
        "input_to_input_weights", "input_to_forget_weights", "input_to_cell_weights",
        "input_to_output_weights", "recurrent_to_input_weights",
        "recurrent_to_forget_weights", "recurrent_to_cell_weights",
        "recurrent_to_output_weights", "cell_to_input_weights", "cell_to_forget_weights",
        "cell_to_output_weights", "input_gate_bias", "forget_gate_bias", "cell_gate_bias",
        "output_gate_bias", "projection_weights", "projection_bias")
    roles = {i + 1: prefix + n for i, n in enumerate(names)}
    for i, n in enumerate(("input_layer_norm_coefficients", "forget_layer_norm_coefficients",
                           "cell_layer_norm_coefficients", "output_layer_norm_coefficients")):
        roles[20 + i] = prefix + n
    return roles


def _bidirectional_lstm_roles() -> "dict[int, str]":
    # tflite/kernels/bidirectional_sequence_lstm.cc: forward cell 1-17, backward cell
    # 18-34, states 35-38, aux input 39, aux weights 40-47
    fw = {i: r for i, r in _lstm_roles("fw_").items() if i <= 17}
    bw = {i + 17: r.replace("fw_", "bw_", 1) for i, r in fw.items()}
    aux = {}
    for d, base in (("fw", 40), ("bw", 44)):
        for j, g in enumerate(("input", "forget", "cell", "output")):
            aux[base + j] = f"{d}_aux_input_to_{g}_weights"
    return {**fw, **bw, **aux}


_RNN_ROLES = {1: "weights", 2: "recurrent_weights", 3: "bias"}

#: opcode -> {input position: role}: which inputs of an operator are its weights.
#: Positions are the kernels' input index constants (LiteRT ``tflite/kernels``:
#: conv.cc, depthwise_conv.cc, conv3d.cc, conv3d_transpose.cc, transpose_conv.cc,
#: fully_connected.cc, batch_matmul.cc, embedding_lookup.cc, gather.cc, svdf.cc,
#: lstm_shared.h, bidirectional_sequence_lstm.cc, basic_rnn.cc,
#: bidirectional_sequence_rnn.cc, prelu in activations.cc).
WEIGHT_ROLES: "dict[str, dict[int, str]]" = {
    "CONV_2D": {1: "filter", 2: "bias"},
    "DEPTHWISE_CONV_2D": {1: "filter", 2: "bias"},
    "CONV_3D": {1: "filter", 2: "bias"},
    "CONV_3D_TRANSPOSE": {1: "filter", 3: "bias"},   # 0 output_shape, 2 input
    "TRANSPOSE_CONV": {1: "weights", 3: "bias"},     # 0 output_shape, 2 input
    "FULLY_CONNECTED": {1: "weights", 2: "bias"},
    "BATCH_MATMUL": {1: "weights"},                  # the right-hand side, when constant
    "EMBEDDING_LOOKUP": {1: "table"},                # 0 = ids
    "GATHER": {0: "params"},                         # 1 = indices
    "SVDF": {1: "weights_feature", 2: "weights_time", 3: "bias"},
    "LSTM": _lstm_roles(),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm_roles(),
    "BIDIRECTIONAL_SEQUENCE_LSTM": _bidirectional_lstm_roles(),
    "RNN": dict(_RNN_ROLES),
    "UNIDIRECTIONAL_SEQUENCE_RNN": dict(_RNN_ROLES),
    "BIDIRECTIONAL_SEQUENCE_RNN": {
        1: "fw_weights", 2: "fw_recurrent_weights", 3: "fw_bias",
        5: "bw_weights", 6: "bw_recurrent_weights", 7: "bw_bias",
        10: "fw_aux_weights", 11: "bw_aux_weights"},
    "PRELU": {1: "alpha"},
}

#: LSTM with ``LSTMOptions.kernel_type == BASIC`` (lstm.cc, namespace basic:
#: 0 input, 1 previous activation, 2 weights, 3 biases, 4 previous state)
LSTM_BASIC_ROLES: "dict[int, str]" = {2: "weights", 3: "bias"}

# operators whose output is their input 0's values, expanded
_EXPANDERS = frozenset({"DEQUANTIZE", "DENSIFY"})
_MAX_HOPS = 4


def weight_roles(op: Operator) -> "dict[int, str]":
    """``{input position: role}`` for this operator (empty for other opcodes)."""
    name = op.opcode
    if name == "LSTM" and op.options_type == "LSTMOptions" and \
            op.options.get("kernel_type") == "BASIC":
        return LSTM_BASIC_ROLES
    return WEIGHT_ROLES.get(name, {})


def _is_constant(tensor) -> bool:
    if tensor.external_buffer:
        return True
    b = tensor.buffer
    return b != 0 and tensor.model.buffer(b).has_data


def stored_constant(tensor):
    """The constant holding ``tensor``'s values: the tensor itself when it has
    stored data, else the constant a DEQUANTIZE or DENSIFY producer expands into
    it (followed up to a few steps, e.g. DENSIFY -> DEQUANTIZE); None otherwise."""
    for _ in range(_MAX_HOPS):
        if _is_constant(tensor):
            return tensor
        producers = tensor.producers
        if len(producers) != 1 or producers[0].opcode not in _EXPANDERS:
            return None
        tensor = producers[0].input(0)
        if tensor is None:
            return None
    return tensor if _is_constant(tensor) else None


def _weights_of(op: Operator):
    for pos, role in weight_roles(op).items():
        t = op.input(pos)
        if t is None:
            continue
        c = stored_constant(t)
        if c is not None:
            yield role, c


def iter_weights(model) -> "Iterator[tuple[Operator, str, object]]":
    """Yield ``(operator, role, tensor)`` for every role input of every operator of
    every subgraph that holds a constant; ``tensor`` is the stored constant (the
    float16/int8/sparse tensor behind a DEQUANTIZE or DENSIFY)."""
    for sg in model.subgraphs:
        for op in sg.operators:
            for role, t in _weights_of(op):
                yield op, role, t


# -- shuffled fully-connected weights -------------------------------------------------

def shuffled_fc_operators(tensor) -> tuple:
    """The FULLY_CONNECTED operators that read ``tensor`` as their shuffled weights
    (input 1 with ``weights_format == SHUFFLED4x16INT8``)."""
    out = []
    for op in tensor.consumers:
        if op.opcode != "FULLY_CONNECTED":
            continue
        ins = op.inputs
        if len(ins) < 2 or ins[1] != tensor.index:
            continue
        if op.options_type == "FullyConnectedOptions" and \
                op.options.get("weights_format") == shuffled.SHUFFLED_FORMAT:
            out.append(op)
    return tuple(out)


def is_shuffled_fc_weights(tensor) -> bool:
    """True when a FULLY_CONNECTED operator reads ``tensor`` as SHUFFLED4x16INT8 weights."""
    return bool(shuffled_fc_operators(tensor))


def unshuffle_fc_weights(tensor, *, force: bool = False) -> np.ndarray:
    """The ``[output, input]`` weight matrix of a shuffled FULLY_CONNECTED weight tensor,
    in the tensor's dtype (uint8), sign bit restored (see :mod:`.numerics.shuffled`).

    Raises :class:`UnsupportedError` when no operator reads the tensor as shuffled
    weights (pass ``force=True`` to unshuffle anyway), and :class:`InvalidModelError`
    when its shape does not tile into 4x16 blocks or its buffer is too short.
    Operators reading the same tensor both shuffled and plainly are refused.
    """
    where = f"tensor {tensor.index} of subgraph {tensor.subgraph} ({tensor.name!r})"
    if not force:
        ops = shuffled_fc_operators(tensor)
        if not ops:
            raise UnsupportedError(
                f"{where} is not read as {shuffled.SHUFFLED_FORMAT} weights by any "
                f"FULLY_CONNECTED operator (pass force=True to unshuffle it anyway)")
        plain = [op for op in tensor.consumers if op not in ops and op.opcode ==
                 "FULLY_CONNECTED" and len(op.inputs) > 1 and op.inputs[1] == tensor.index]
        if plain:
            raise InvalidModelError(
                f"{where} is read both as shuffled and as plain FULLY_CONNECTED weights")
    info = TYPES.get(tensor.type_code)
    if info is None:
        raise UnsupportedError(f"{where} is {tensor.type}; shuffled weights are 8-bit "
                               f"(the kernel takes UINT8)")
    return shuffled.unshuffle_matrix(tensor.raw(), info, tensor.shape, where)


def dequantize_fc_weights(tensor, *, force: bool = False) -> np.ndarray:
    """Unshuffled weights as float32, ``scale * (w - zero_point)`` with the tensor's
    own (per-tensor or per-row) quantization."""
    from .numerics.quantization import dequantize_affine
    w = unshuffle_fc_weights(tensor, force=force)
    q = tensor.quantization
    what = f"tensor {tensor.index} of subgraph {tensor.subgraph} ({tensor.name!r})"
    if q is None or q.scale.size == 0:
        raise QuantizationError(f"{what} has no quantization")
    out = dequantize_affine(w, q.scale, q.zero_point, q.quantized_dimension, what)
    out.flags.writeable = False
    return out
