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

import weakref
from typing import Iterator

from . import _schema
from ._flatbuffer import Table
from .errors import InvalidModelError

__all__ = [
    "Operator",
    "OperatorCode",
    "WEIGHT_ROLES",
    "LSTM_BASIC_ROLES",
    "read_operators",
    "operator_codes",
    "producers_of",
    "consumers_of",
    "weight_roles",
    "stored_constant",
    "iter_weights",
    "table_to_dict",
]

_M_OPCODES = _schema.slots("Model", "operator_codes")[0]
_SG_OPERATORS = _schema.slots("SubGraph", "operators")[0]
_OC_DEPRECATED, _OC_CUSTOM, _OC_VERSION, _OC_BUILTIN = _schema.slots(
    "OperatorCode", "deprecated_builtin_code", "custom_code", "version", "builtin_code")
(_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS, _OP_CUSTOM, _OP_CUSTOM_FORMAT,
 _OP_MUTATING, _OP_INTERMEDIATES, _OP_LARGE_OFFSET, _OP_LARGE_SIZE, _OP_OPTIONS_2,
 _OP_DEBUG) = _schema.slots(
    "Operator", "opcode_index", "inputs", "outputs", "builtin_options", "custom_options",
    "custom_options_format", "mutating_variable_inputs", "intermediates",
    "large_custom_options_offset", "large_custom_options_size", "builtin_options_2",
    "debug_metadata_index")

_OPTIONS_UNIONS = (
    (_OP_OPTIONS, "builtin_options", _schema.UNIONS["BuiltinOptions"]),
    (_OP_OPTIONS_2, "builtin_options_2", _schema.UNIONS["BuiltinOptions2"]),
)


def _label(model) -> str:
    return model._fbuf.label


# -- operator codes -----------------------------------------------------------------


class OperatorCode:
    """One entry of ``Model.operator_codes``."""

    __slots__ = ("index", "code", "name", "custom_code", "version", "builtin_code",
                 "deprecated_builtin_code")

    def __init__(self, index: int, table: Table):
        self.index = index
        self.deprecated_builtin_code = table.scalar(_OC_DEPRECATED, "i8", 0,
                                                    "deprecated_builtin_code")
        self.builtin_code = table.scalar(_OC_BUILTIN, "i32", 0, "builtin_code")
        self.code = max(self.builtin_code, self.deprecated_builtin_code)
        self.name = _schema.enum_name("BuiltinOperator", self.code)
        self.custom_code = table.string(_OC_CUSTOM, "custom_code")
        self.version = table.scalar(_OC_VERSION, "i32", 1, "version")

    def __repr__(self) -> str:
        custom = f" {self.custom_code!r}" if self.custom_code is not None else ""
        return f"<OperatorCode {self.index}: {self.name}{custom} v{self.version}>"


class _Codes:
    """The model's operator codes, each decoded when first used.  Holds no
    reference to the model (it is the value of a weak-keyed cache)."""

    __slots__ = ("label", "vec", "cache")

    def __init__(self, model):
        model._check_open()
        self.label = _label(model)
        self.vec = model._root.tables(_M_OPCODES, "operator_codes") or ()
        self.cache: dict[int, OperatorCode] = {}

    def get(self, index: int, where: str) -> OperatorCode:
        oc = self.cache.get(index)
        if oc is None:
            n = len(self.vec)
            if not 0 <= index < n:
                raise InvalidModelError(
                    f"{self.label}: {where}.opcode_index is {index}, but the model "
                    f"has {n} operator codes")
            oc = self.cache[index] = OperatorCode(index, self.vec[index])
        return oc


_CODES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _codes(model) -> _Codes:
    c = _CODES.get(model)
    if c is None:
        c = _CODES[model] = _Codes(model)
    return c


def operator_codes(model) -> "tuple[OperatorCode, ...]":
    """Every entry of ``Model.operator_codes``, in file order."""
    c = _codes(model)
    return tuple(c.get(i, "operator_codes") for i in range(len(c.vec)))


# -- options, decoded generically from the schema tables ------------------------------


def _string_at(fb, pos: int, where: str) -> str:
    target = pos + fb.u32(pos, where)
    n = fb.u32(target, where)
    raw = fb.bytes_at(target + 4, n, where)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _enum_name(enums, enum: str, value: int) -> str:
    # the notation's parser leaves the closing bracket on a vector's enum: "[i32@E]"
    return enums[enum].get(value, f"<{value}>")


def _scalar(f, v, enums=_schema.ENUMS):
    if f.elem == "bool":
        return bool(v)
    if f.elem in ("f32", "f64"):
        return float(v)
    if f.enum is not None:
        return _enum_name(enums, f.enum, v)
    return v


def table_to_dict(table: Table, tdef, tables=None, enums=None) -> dict:
    """Every field of ``table`` (described by the schema's ``TableDef``) as a dict.

    Scalars take their schema default when absent; enums give their name
    (``"<n>"`` when unknown to the schema); vectors give lists and strings
    ``str`` (None when absent); nested tables give dicts; a union gives the
    member's name under ``<field>_type`` and its table under ``<field>``.
    """
    tables = _schema.TABLES if tables is None else tables
    enums = _schema.ENUMS if enums is None else enums
    out: dict = {}
    for f in tdef.fields:
        kind, name, slot = f.kind, f.name, f.slot
        if kind == "scalar":
            out[name] = _scalar(f, table.scalar(slot, f.elem, f.default, name), enums)
        elif kind == "vector":
            if not table.has(slot):
                out[name] = None
            elif f.elem in ("f32", "f64", "i64", "u64"):
                # numpy, not struct: struct's "<l"/"<L" (numpy's int64 codes) are 4 bytes
                out[name] = table.array(slot, f.elem, name).tolist()
            else:
                vals = table.ints(slot, f.elem, name)
                if f.elem == "bool":
                    out[name] = [bool(x) for x in vals]
                elif f.enum is not None:
                    out[name] = [_enum_name(enums, f.enum, x) for x in vals]
                else:
                    out[name] = list(vals)
        elif kind == "string":
            out[name] = table.string(slot, name)
        elif kind == "vector_string":
            v = table.vector(slot, 4, name)
            if v is None:
                out[name] = None
            else:
                where = f"{table.where}.{name}"
                out[name] = [_string_at(table.fb, v[0] + 4 * i, where) for i in range(v[1])]
        elif kind == "table":
            sub = table.table(slot, name)
            out[name] = None if sub is None else table_to_dict(sub, tables[f.elem], tables,
                                                               enums)
        elif kind == "vector_table":
            vec = table.tables(slot, name)
            out[name] = None if vec is None else [
                table_to_dict(t, tables[f.elem], tables, enums) for t in vec]
        elif kind == "union":
            code, sub = table.union(slot - 1, slot, name)
            members = _schema.UNIONS.get(f.elem, ())
            if code == 0:
                out[name + "_type"], out[name] = None, None
            elif code <= len(members):
                member = members[code - 1]
                out[name + "_type"] = member
                out[name] = None if sub is None else table_to_dict(sub, tables[member], tables,
                                                                   enums)
            else:
                out[name + "_type"], out[name] = f"<{code}>", None
    return out


def _defaults(tdef) -> dict:
    """The dict :func:`table_to_dict` gives for a table that sets no field."""
    out: dict = {}
    for f in tdef.fields:
        if f.kind == "scalar":
            out[f.name] = _scalar(f, f.default)
        elif f.kind == "union":
            out[f.name + "_type"], out[f.name] = None, None
        else:
            out[f.name] = None
    return out


# -- operators ---------------------------------------------------------------------------


class Operator:
    """One operator of a subgraph, in execution order.

    ``opcode`` is the BuiltinOperator name (``"CONV_2D"``, ``"CUSTOM"``, or
    ``"<code>"`` for a code newer than this reader's schema); ``inputs`` and
    ``outputs`` are tensor indices of the same subgraph, ``-1`` marking an
    omitted optional input.  ``input_tensors`` gives the Tensor objects
    (None for ``-1``).  ``options`` is the builtin options table as a dict.
    """

    __slots__ = ("_sg", "index", "_vec", "_t", "_inputs", "_outputs", "_options",
                 "__weakref__")

    def __init__(self, subgraph, index: int, vec):
        self._sg = subgraph
        self.index = index
        self._vec = vec
        self._t: Table | None = None
        self._inputs = None
        self._outputs = None
        self._options = None

    # -- decoding -------------------------------------------------------------------
    @property
    def _table(self) -> Table:
        t = self._t
        if t is None:
            self._sg.model._check_open()
            t = self._t = self._vec[self.index]
        return t

    @property
    def _where(self) -> str:
        return f"subgraphs[{self._sg.index}].operators[{self.index}]"

    def _error(self, what: str) -> InvalidModelError:
        return InvalidModelError(f"{_label(self._sg.model)}: {self._where}: {what}")

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
        return self._table.scalar(_OP_OPCODE, "u32", 0, "opcode_index")

    @property
    def operator_code(self) -> OperatorCode:
        """The ``Model.operator_codes`` entry (raises when ``opcode_index`` is out of
        range)."""
        return _codes(self._sg.model).get(self.opcode_index, self._where)

    @property
    def opcode(self) -> str:
        return self.operator_code.name

    @property
    def opcode_code(self) -> int:
        return self.operator_code.code

    @property
    def custom_code(self) -> "str | None":
        return self.operator_code.custom_code

    @property
    def version(self) -> int:
        return self.operator_code.version

    # -- tensors ------------------------------------------------------------------------
    @property
    def inputs(self) -> "tuple[int, ...]":
        v = self._inputs
        if v is None:
            v = self._inputs = self._table.ints(_OP_INPUTS, "i32", "inputs") or ()
        return v

    @property
    def outputs(self) -> "tuple[int, ...]":
        v = self._outputs
        if v is None:
            v = self._outputs = self._table.ints(_OP_OUTPUTS, "i32", "outputs") or ()
        return v

    @property
    def intermediates(self) -> "tuple[int, ...]":
        return self._table.ints(_OP_INTERMEDIATES, "i32", "intermediates") or ()

    @property
    def mutating_variable_inputs(self) -> "tuple[bool, ...]":
        v = self._table.ints(_OP_MUTATING, "bool", "mutating_variable_inputs") or ()
        return tuple(bool(x) for x in v)

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
    def _options_union(self):
        """``(member name, table or None)`` of builtin_options, else of builtin_options_2."""
        t = self._table
        for slot, name, members in _OPTIONS_UNIONS:
            code = t.scalar(slot - 1, "u8", 0, name + "_type")
            if code:
                member = members[code - 1] if code <= len(members) else f"<{code}>"
                return member, t.table(slot, name)
        return None, None

    @property
    def options_type(self) -> "str | None":
        """The options table's name (``"Conv2DOptions"``), from ``builtin_options``
        or ``builtin_options_2``; None when the operator has none."""
        return self._options_union()[0]

    @property
    def options(self) -> dict:
        """The builtin options as a dict of every field of the options table (schema
        defaults where the file leaves a field out).  Empty when there are none, or
        when the options table is newer than this reader's schema."""
        o = self._options
        if o is None:
            member, table = self._options_union()
            tdef = _schema.TABLES.get(member) if member else None
            if tdef is None:
                o = {}
            elif table is None:  # type set, table absent: the runtime uses defaults
                o = _defaults(tdef)
            else:
                o = table_to_dict(table, tdef)
            self._options = o
        return dict(o)

    # -- custom options ----------------------------------------------------------------
    @property
    def custom_options_format(self) -> str:
        return _schema.enum_name("CustomOptionsFormat", self._table.scalar(
            _OP_CUSTOM_FORMAT, "i8", 0, "custom_options_format"))

    @property
    def large_custom_options_offset(self) -> int:
        return self._table.scalar(_OP_LARGE_OFFSET, "u64", 0, "large_custom_options_offset")

    @property
    def large_custom_options_size(self) -> int:
        return self._table.scalar(_OP_LARGE_SIZE, "u64", 0, "large_custom_options_size")

    @property
    def custom_options(self) -> "bytes | None":
        """The custom options bytes: the ``custom_options`` vector, or else the
        ``large_custom_options_offset/size`` range of the file (used when the offset
        is greater than 1, as in the runtime); None when there are none."""
        t = self._table
        raw = t.string_bytes(_OP_CUSTOM, "custom_options")
        if raw is not None:
            return raw
        offset = self.large_custom_options_offset
        if offset > 1:
            size = self.large_custom_options_size
            model = self._sg.model
            if offset + size > model.size:
                raise self._error(
                    f"large_custom_options_offset {offset} + size {size} = {offset + size} "
                    f"lies beyond the end of the file ({model.size} bytes)")
            return model._fb.bytes_at(offset, size, f"{self._where}.large_custom_options")
        return None

    @property
    def debug_metadata_index(self) -> int:
        return self._table.scalar(_OP_DEBUG, "i32", -1, "debug_metadata_index")

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


def read_operators(subgraph) -> "tuple[Operator, ...]":
    """The subgraph's operators; nothing of them is decoded yet."""
    vec = subgraph._t.tables(_SG_OPERATORS, "operators")
    if vec is None:
        return ()
    return tuple(Operator(subgraph, i, vec) for i in range(len(vec)))


# -- graph index: producers and consumers ---------------------------------------------


class _GraphIndex:
    __slots__ = ("producers", "consumers")

    def __init__(self, subgraph):
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
        self.producers = producers
        self.consumers = consumers


_GRAPHS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _graph(subgraph) -> _GraphIndex:
    g = _GRAPHS.get(subgraph)
    if g is None:
        g = _GRAPHS[subgraph] = _GraphIndex(subgraph)
    return g


def _subgraph_of(tensor):
    return tensor._model.subgraphs[tensor.subgraph]


def producers_of(tensor) -> "tuple[Operator, ...]":
    """Operators of the tensor's subgraph that list it among their outputs."""
    sg = _subgraph_of(tensor)
    ops = sg.operators
    return tuple(ops[i] for i in _graph(sg).producers.get(tensor.index, ()))


def consumers_of(tensor) -> "tuple[Operator, ...]":
    """Operators of the tensor's subgraph that list it among their inputs."""
    sg = _subgraph_of(tensor)
    ops = sg.operators
    return tuple(ops[i] for i in _graph(sg).consumers.get(tensor.index, ()))


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
    return b != 0 and tensor._model.buffer(b).has_data


def stored_constant(tensor):
    """The constant holding ``tensor``'s values: the tensor itself when it has
    stored data, else the constant a DEQUANTIZE or DENSIFY producer expands into
    it (followed up to a few steps, e.g. DENSIFY -> DEQUANTIZE); None otherwise."""
    for _ in range(_MAX_HOPS):
        if _is_constant(tensor):
            return tensor
        producers = producers_of(tensor)
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
