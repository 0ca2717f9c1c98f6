"""Variable tensors (no data by design) and resource variables with the initial values
assigned by their CALL_ONCE init subgraph."""


import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import S, ModelBuilder
from tflite_weights.variables import init_subgraphs

from tests.support.paths import corpus_path as corpus  # noqa: E402


def test_variable_tensor_has_no_data_and_says_why():
    b = ModelBuilder()
    sg = b.subgraph()
    sg.tensor("state", "FLOAT32", [1, 8], is_variable=True)
    with tw.open(b.finish()) as m:
        t = m["state"]
        assert t.is_variable and not t.has_data
        with pytest.raises(tw.NoDataError, match="variable tensor .*by design"):
            t.numpy()


def test_corpus_lstm_state_tensors_are_variables():
    with tw.open(corpus("litert_lstm.bin")) as m:
        variables = [t for t in m.all_tensors() if t.is_variable]
        assert variables
        for t in variables:
            with pytest.raises(tw.NoDataError, match="variable tensor"):
                t.numpy()


def test_corpus_call_once_model():
    with tw.open(corpus("litert_call_once_mul.bin")) as m:
        assert init_subgraphs(m) == (1,)
        rv = m.resource_variables()
        assert list(rv) == ["Variable"]
        v = rv["Variable"]
        assert (v.container, v.shared_name) == ("", "Variable")
        assert [(h.subgraph, h.index, h.type) for h in v.handles] == \
            [(0, 1, "RESOURCE"), (1, 1, "RESOURCE")]
        assert v.init_subgraph == 1
        init = v.initial_value
        assert (init.subgraph, init.index, init.name) == (1, 0, "std.constant")
        assert init.type == "FLOAT32" and init.shape == ()
        value = v.numpy()
        np.testing.assert_array_equal(value, init.numpy())
        assert value.shape == () and np.isfinite(value)
        with pytest.raises(tw.UnsupportedError):
            v.handles[0].numpy()  # a RESOURCE handle has no values


def var_handle(sg, name, container="", shared=""):
    h = sg.tensor(name, "RESOURCE", [])
    opt = S.VarHandleOptionsT()
    opt.container, opt.sharedName = container, shared
    sg.op("VAR_HANDLE", [], [h], options=opt, options_type=S.BuiltinOptions.VarHandleOptions)
    return h


def synthetic():
    b = ModelBuilder()
    main = b.subgraph("main")
    init = b.subgraph("init")
    # main: CALL_ONCE(init), two variables read
    opt = S.CallOnceOptionsT()
    opt.initSubgraphIndex = 1
    main.op("CALL_ONCE", [], [], options=opt, options_type=S.BuiltinOptions.CallOnceOptions)
    hw = var_handle(main, "w_handle", "", "dense/kernel")
    hb = var_handle(main, "b_handle", "scope", "dense/bias")
    hn = var_handle(main, "n_handle", "", "never_initialised")
    for h in (hw, hb, hn):
        out = main.tensor(f"read{h}", "FLOAT32", [2, 3])
        main.op("READ_VARIABLE", [h], [out])
    # init: assign constants (the kernel twice: the last assignment wins)
    kw = np.arange(6, dtype=np.float32).reshape(2, 3)
    ih = var_handle(init, "h0", "", "dense/kernel")
    c0 = init.tensor("first", "FLOAT32", [2, 3], np.zeros(6, np.float32))
    c1 = init.tensor("kernel_init", "FLOAT32", [2, 3], kw)
    init.op("ASSIGN_VARIABLE", [ih, c0], [])
    init.op("ASSIGN_VARIABLE", [ih, c1], [])
    ib = var_handle(init, "h1", "scope", "dense/bias")
    cb = init.tensor("bias_init", "FLOAT32", [3], np.array([1, 2, 3], np.float32))
    init.op("ASSIGN_VARIABLE", [ib, cb], [])
    # same shared_name, other container: a different variable, not initialised here
    var_handle(init, "h2", "other", "dense/bias")
    return b.finish(), kw


def test_synthetic_resource_variables_by_container_and_shared_name():
    data, kw = synthetic()
    with tw.open(data) as m:
        rv = m.resource_variables()
        assert list(rv) == ["dense/kernel", "scope/dense/bias", "never_initialised",
                            "other/dense/bias"]
        k = rv["dense/kernel"]
        assert k.initial_value.name == "kernel_init" and k.init_subgraph == 1
        np.testing.assert_array_equal(k.numpy(), kw)
        assert [(h.subgraph, h.name) for h in k.handles] == [(0, "w_handle"), (1, "h0")]
        bias = rv["scope/dense/bias"]
        assert (bias.container, bias.shared_name) == ("scope", "dense/bias")
        np.testing.assert_array_equal(bias.numpy(), [1, 2, 3])
        assert rv["other/dense/bias"].initial_value is None
        never = rv["never_initialised"]
        assert never.initial_value is None and never.init_subgraph is None
        with pytest.raises(tw.NoDataError, match="no initial value"):
            never.numpy()
        assert "dense/kernel" in repr(k)


def test_model_without_variables():
    b = ModelBuilder()
    b.subgraph().tensor("t", "FLOAT32", [1], np.ones(1, np.float32))
    with tw.open(b.finish()) as m:
        assert m.resource_variables() == {}
        assert init_subgraphs(m) == ()


def test_call_once_with_an_out_of_range_subgraph_is_ignored():
    b = ModelBuilder()
    main = b.subgraph("main")
    opt = S.CallOnceOptionsT()
    opt.initSubgraphIndex = 7
    main.op("CALL_ONCE", [], [], options=opt, options_type=S.BuiltinOptions.CallOnceOptions)
    var_handle(main, "h", "", "v")
    with tw.open(b.finish()) as m:
        assert init_subgraphs(m) == ()
        assert m.resource_variables()["v"].initial_value is None
