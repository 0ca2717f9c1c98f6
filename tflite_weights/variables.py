"""Variables: state tensors, and resource variables with their initial values.

Two kinds of state live in TFLite files, neither with values in its own buffer:

* **Variable tensors** (``Tensor.is_variable``), the state of LSTM/RNN
  kernels.  The runtime refuses a buffer on them ("Tensor %d is a variable
  tensor with buffer or external buffer. It's not supported now.",
  ``InterpreterBuilder::ParseTensors``) and zero-fills them on reset
  (``Subgraph::ResetVariableTensors``), so :meth:`Tensor.numpy` raises
  :class:`~tflite_weights.errors.NoDataError` saying so.

* **Resource variables** (TensorFlow ``tf.Variable``): a ``VAR_HANDLE``
  operator yields a RESOURCE tensor naming the variable by
  ``VarHandleOptions{container, shared_name}``, which ``READ_VARIABLE`` and
  ``ASSIGN_VARIABLE`` use.  The runtime keys variables by the pair
  (container, shared_name) (``tflite/kernels/var_handle.cc``).  The initial
  value is an ordinary constant in an *init* subgraph that the main subgraph
  runs once through ``CALL_ONCE`` (``CallOnceOptions.init_subgraph_index``),
  assigned there with ``ASSIGN_VARIABLE(handle, value)``.

:func:`resource_variables` finds every variable of the model and, when an init
subgraph assigns it, that assigned tensor (the last assignment in execution
order wins, as it would at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResourceVariable", "resource_variables", "init_subgraphs"]


@dataclass(frozen=True, eq=False)
class ResourceVariable:
    """One resource variable.

    ``name`` is ``shared_name``, prefixed with ``container + "/"`` when the
    container is not empty.  ``handles`` are the RESOURCE tensors that
    ``VAR_HANDLE`` operators produce for it, in every subgraph.
    ``initial_value`` is the tensor assigned to it in an init subgraph (a
    constant in converter output; None when no init subgraph assigns it),
    ``init_subgraph`` that subgraph's index.
    """

    name: str
    container: str
    shared_name: str
    handles: tuple
    initial_value: object = None
    init_subgraph: "int | None" = None

    def numpy(self):
        """The initial value's array (raises NoDataError when there is none)."""
        if self.initial_value is None:
            from .errors import NoDataError
            raise NoDataError(f"resource variable {self.name!r} has no initial value "
                              f"assigned by a CALL_ONCE init subgraph")
        return self.initial_value.numpy()

    def __repr__(self) -> str:
        init = (f"{self.initial_value.subgraph}:{self.initial_value.index}"
                if self.initial_value is not None else "none")
        return (f"<ResourceVariable {self.name!r} handles="
                f"{[f'{t.subgraph}:{t.index}' for t in self.handles]} initial={init}>")


def _key(op) -> "tuple[str, str]":
    opts = op.options if op.options_type == "VarHandleOptions" else {}
    return (opts.get("container") or "", opts.get("shared_name") or "")


def init_subgraphs(model) -> "tuple[int, ...]":
    """Indices of the subgraphs run by CALL_ONCE operators, in order of first use."""
    out: list[int] = []
    n = len(model.subgraphs)
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode != "CALL_ONCE":
                continue
            idx = op.options.get("init_subgraph_index") if op.options_type == \
                "CallOnceOptions" else None
            if isinstance(idx, int) and 0 <= idx < n and idx not in out:
                out.append(idx)
    return tuple(out)


def resource_variables(model) -> "dict[str, ResourceVariable]":
    """Every resource variable of the model by name, with its initial value.

    Variables are listed in the order their first VAR_HANDLE appears (subgraph
    by subgraph).
    """
    handles: dict[tuple[str, str], list] = {}
    for sg in model.subgraphs:
        tensors = sg.tensors
        for op in sg.operators:
            if op.opcode != "VAR_HANDLE":
                continue
            key = _key(op)
            lst = handles.setdefault(key, [])
            for o in op.outputs:
                if 0 <= o < len(tensors):
                    lst.append(tensors[o])
    initial: dict[tuple[str, str], tuple] = {}
    for s in init_subgraphs(model):
        sg = model.subgraphs[s]
        tensors = sg.tensors
        handle_key: dict[int, tuple[str, str]] = {}
        for op in sg.operators:
            if op.opcode == "VAR_HANDLE":
                for o in op.outputs:
                    handle_key[o] = _key(op)
            elif op.opcode == "ASSIGN_VARIABLE":
                ins = op.inputs
                if len(ins) >= 2 and ins[0] in handle_key and 0 <= ins[1] < len(tensors):
                    initial[handle_key[ins[0]]] = (tensors[ins[1]], s)
    out: dict[str, ResourceVariable] = {}
    for (container, shared), hs in handles.items():
        name = f"{container}/{shared}" if container else shared
        value, s = initial.get((container, shared), (None, None))
        out[name] = ResourceVariable(name, container, shared, tuple(hs), value, s)
    return out
