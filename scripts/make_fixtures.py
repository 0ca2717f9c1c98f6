#!/usr/bin/env python3
"""Regenerate the fixture models in fixtures/ and their interpreter goldens.

One command, from the repository root::

    python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install -e '.[fixtures]' \\
        && .venv-fixtures/bin/python scripts/make_fixtures.py

Options: ``--out DIR`` (default: fixtures/ next to this script's parent),
``--only NAME [NAME ...]`` to rebuild some fixtures (MANIFEST.json keeps the
entries of the others), ``--list`` to print the fixture names.

For every fixture NAME this writes

* ``NAME.tflite``: a tiny model converted with the TensorFlow Lite converter
  using the recipe recorded in MANIFEST.json;
* ``goldens/NAME.json`` and ``goldens/NAME.npz``: what the LiteRT interpreter
  reports about the file, written by ``scripts/interpreter_dump.py`` run in a
  subprocess (the interpreter can crash on valid models; a crash is recorded
  as status "crashed" with the return code);
* for ``qat_conv`` also ``qat_conv_float_weights.npz``: the trained float
  weights and the ranges quantization-aware training recorded.

and finally ``MANIFEST.json`` with package versions and, per fixture, the file
name, sha256, size, description, converter recipe, the operators per subgraph,
the metadata names and the decoded CONVERSION_METADATA as TensorFlow reads
them.

Everything is seeded (Python, numpy, TensorFlow), data are synthetic, ops run
single-threaded and deterministic, the script re-executes itself once with
PYTHONHASHSEED=0 and address-space randomisation turned off, and each
fixture is built in a fresh process with a fixed command line and
environment.  The buffer-offset writer still orders its blobs differently
from one conversion to the next, so that fixture keeps the smallest of
several conversions.  A second run therefore gives byte-identical files with
the same package versions, also from another checkout or virtual
environment.  Each fixture is then checked to show what it
is meant to show (``check_fixture``); the exit status is 1 if one does not.
Nothing here imports ``tflite_weights``.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile

# Environment must be set before TensorFlow is imported.
_ENV = {
    "TF_USE_LEGACY_KERAS": "1",      # tfmot needs tf_keras (Keras 2)
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
}

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(SCRIPTS_DIR)
DUMP_SCRIPT = os.path.join(SCRIPTS_DIR, "interpreter_dump.py")
SEED = 1234


_ADDR_NO_RANDOMIZE = 0x0040000
_REEXEC_MARK = "TFLITE_FIXTURES_REEXEC"


def _disable_aslr():
    """Turns off address-space randomisation for this process's next exec.

    The converter's buffer-offset writer appends constant blobs in the
    iteration order of a hash map whose seed comes from an address, so with
    randomised addresses the blob order (and so the file) changes from run to
    run.  Returns False where the kernel or the sandbox does not allow it.
    """
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        current = libc.personality(0xFFFFFFFF)
        if current == -1:
            return False
        if current & _ADDR_NO_RANDOMIZE:
            return True
        return libc.personality(current | _ADDR_NO_RANDOMIZE) != -1
    except (OSError, AttributeError):
        return False


def _reexec_with_pinned_env():
    """Re-executes once with the pinned environment and without ASLR."""
    if os.environ.get(_REEXEC_MARK):
        return
    env = dict(os.environ)
    env.update(_ENV)
    env[_REEXEC_MARK] = "aslr-off" if _disable_aslr() else "aslr-on"
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


if __name__ == "__main__":
    _reexec_with_pinned_env()

import numpy as np  # noqa: E402

sys.path.insert(0, SCRIPTS_DIR)
from interpreter_dump import run_dump, write_npz  # noqa: E402,E501  (stdlib + numpy only)

tf = None
keras = None
tfmot = None


def _import_tf():
    global tf, keras, tfmot
    if tf is not None:
        return
    import tensorflow as _tf
    import tf_keras as _keras
    import tensorflow_model_optimization as _tfmot
    tf, keras, tfmot = _tf, _keras, _tfmot
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")


def _reset(seed=SEED):
    """Same state before every fixture, so --only gives the same bytes."""
    keras.backend.clear_session()
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    keras.utils.set_random_seed(seed)


def _rng(salt):
    return np.random.default_rng([SEED, salt])


# ----------------------------------------------------------------------------
# Converter recipes


def recipe(**kw):
    """Machine-readable description of how a fixture is converted."""
    r = {
        "source": "keras_model",
        "optimizations": [],
        "supported_types": [],
        "supported_ops": [],
        "representative_dataset": False,
        "inference_input_type": None,
        "inference_output_type": None,
        "qat": False,
        "experimental_sparsity": False,
        "use_buffer_offset": False,
        "experimental_enable_resource_variables": False,
        "signature_keys": None,
    }
    unknown = set(kw) - set(r)
    if unknown:
        raise KeyError(unknown)
    r.update(kw)
    r["experimental_sparsity"] = "EXPERIMENTAL_SPARSITY" in r["optimizations"]
    return r


def _apply_recipe(converter, rcp, representative_dataset=None):
    opt = {"DEFAULT": tf.lite.Optimize.DEFAULT,
           "EXPERIMENTAL_SPARSITY": tf.lite.Optimize.EXPERIMENTAL_SPARSITY}
    ops = {name: getattr(tf.lite.OpsSet, name) for name in rcp["supported_ops"]}
    types = {"float16": tf.float16, "int8": tf.int8, "uint8": tf.uint8,
             "int16": tf.int16, "float32": tf.float32}
    if rcp["optimizations"]:
        converter.optimizations = [opt[o] for o in rcp["optimizations"]]
    if rcp["supported_types"]:
        converter.target_spec.supported_types = [
            types[t] for t in rcp["supported_types"]]
    if rcp["supported_ops"]:
        converter.target_spec.supported_ops = [ops[o]
                                               for o in rcp["supported_ops"]]
    if rcp["representative_dataset"]:
        if representative_dataset is None:
            raise ValueError("recipe needs a representative dataset")
        converter.representative_dataset = representative_dataset
    if rcp["inference_input_type"]:
        converter.inference_input_type = types[rcp["inference_input_type"]]
    if rcp["inference_output_type"]:
        converter.inference_output_type = types[rcp["inference_output_type"]]
    if rcp["use_buffer_offset"]:
        converter._experimental_use_buffer_offset = True
    if rcp["experimental_enable_resource_variables"]:
        converter.experimental_enable_resource_variables = True
    return converter.convert()


def _rep_data(shapes, n=32, salt=0, low=-1.0, high=1.0):
    """Deterministic representative dataset (list of input arrays)."""
    rng = _rng(1000 + salt)
    samples = [[rng.uniform(low, high, size=s).astype(np.float32)
                for s in shapes] for _ in range(n)]

    def gen():
        for s in samples:
            yield [np.array(a) for a in s]
    return gen


def _bias_init():
    return keras.initializers.RandomNormal(stddev=0.1)


# ----------------------------------------------------------------------------
# Fixtures.  Each returns (tflite bytes, description, recipe, extra files)
# where extra files is {file name: {"kind", "description", "arrays"}}.


def fx_qat_conv():
    rcp = recipe(optimizations=["DEFAULT"], qat=True)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1), name="image"),
        L.Conv2D(8, 3, activation="relu", bias_initializer=_bias_init(),
                 name="conv"),
        L.MaxPooling2D(name="pool"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", bias_initializer=_bias_init(),
                name="dense"),
    ], name="qat_conv")
    qmodel = tfmot.quantization.keras.quantize_model(model)
    qmodel.compile(optimizer=keras.optimizers.Adam(1e-3),
                   loss="sparse_categorical_crossentropy")
    rng = _rng(1)
    x = rng.random((512, 28, 28, 1), dtype=np.float32)
    proj = rng.normal(size=(28 * 28, 10)).astype(np.float32)
    y = np.argmax(x.reshape(512, -1) @ proj, axis=1).astype(np.int32)
    qmodel.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)

    arrays = {}
    for layer in qmodel.layers:
        for w in layer.weights:
            key = _sanitise(w.name)
            if key in arrays:
                raise ValueError("duplicate weight name " + key)
            arrays[key] = np.asarray(w.numpy())
    for alias in ("conv_kernel", "conv_bias", "dense_kernel", "dense_bias"):
        layer, var = alias.split("_")
        arrays[alias] = arrays["%s__%s_0" % (layer, var)]
    extras = {"qat_conv_float_weights.npz": {
        "kind": "float_weights",
        "description": (
            "Float weights after quantization-aware training and every "
            "variable of the quantize wrappers (ranges), keys are the Keras "
            "variable names with '/' and ':' replaced by '__' and '_' "
            "(e.g. quant_conv__kernel_min_0, quant_conv__post_activation_min_0"
            ", quantize_layer__quantize_layer_min_0 for the input range). "
            "Aliases: conv_kernel [H,W,I,O], conv_bias, dense_kernel [I,O], "
            "dense_bias (Keras layout; TFLite stores conv weights as "
            "[O,H,W,I] and FC weights as [O,I])."),
        "arrays": arrays,
    }}
    converter = tf.lite.TFLiteConverter.from_keras_model(qmodel)
    data = _apply_recipe(converter, rcp)
    return (data, "Quantization-aware trained Conv2D(8,3x3,relu) -> MaxPool "
            "-> Flatten -> Dense(10,softmax) on 28x28x1, int8 weights "
            "(per-channel conv), float input/output", rcp, extras)


def _sanitise(name):
    return name.replace("/", "__").replace(":", "_")


def fx_ptq_int8():
    rcp = recipe(optimizations=["DEFAULT"], representative_dataset=True,
                 supported_ops=["TFLITE_BUILTINS_INT8"],
                 inference_input_type="int8", inference_output_type="int8")
    L = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 3), name="image"),
        L.Conv2D(4, 3, strides=2, activation="relu",
                 bias_initializer=_bias_init(), name="conv"),
        L.Flatten(name="flatten"),
        L.Dense(5, bias_initializer=_bias_init(), name="dense"),
    ], name="ptq_int8")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp, _rep_data([(1, 16, 16, 3)], salt=2))
    return (data, "Post-training full-integer quantization: Conv2D(4) -> "
            "Flatten -> Dense(5), int8 input and output", rcp, {})


def fx_dynamic_range():
    rcp = recipe(optimizations=["DEFAULT"])
    L = keras.layers
    model = keras.Sequential([
        keras.Input((64,), name="features"),
        L.Dense(48, activation="relu", bias_initializer=_bias_init(),
                name="big"),          # 64*48 = 3072 elements: quantized
        L.Dense(8, bias_initializer=_bias_init(),
                name="small"),        # 48*8 = 384 elements: stays float
    ], name="dynamic_range")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp)
    return (data, "Dynamic-range quantization: Dense(64->48) with 3072 "
            "weights (int8, hybrid) and Dense(48->8) with 384 weights "
            "(below the 1024-element threshold, stays float32)", rcp, {})


def fx_float16():
    rcp = recipe(optimizations=["DEFAULT"], supported_types=["float16"])
    L = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 2), name="image"),
        L.Conv2D(4, 3, activation="relu", bias_initializer=_bias_init(),
                 name="conv"),
        L.Flatten(name="flatten"),
        L.Dense(6, bias_initializer=_bias_init(), name="dense"),
    ], name="float16")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp)
    return (data, "Float16 weights: Conv2D(4) -> Flatten -> Dense(6); "
            "FLOAT16 constants feed DEQUANTIZE ops", rcp, {})


def fx_int16x8():
    rcp = recipe(
        optimizations=["DEFAULT"], representative_dataset=True,
        supported_ops=["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"])
    L = keras.layers
    model = keras.Sequential([
        keras.Input((6, 6, 2), name="image"),
        L.Conv2D(3, 3, activation="relu", bias_initializer=_bias_init(),
                 name="conv"),
        L.Flatten(name="flatten"),
        L.Dense(4, bias_initializer=_bias_init(), name="dense"),
    ], name="int16x8")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp, _rep_data([(1, 6, 6, 2)], salt=5))
    return (data, "16x8 quantization: int16 activations, int8 per-channel "
            "weights, int64 biases; Conv2D(3) -> Flatten -> Dense(4), "
            "float input/output", rcp, {})


def fx_depthwise():
    rcp = recipe(optimizations=["DEFAULT"], representative_dataset=True,
                 supported_ops=["TFLITE_BUILTINS_INT8"],
                 inference_input_type="int8", inference_output_type="int8")
    L = keras.layers
    model = keras.Sequential([
        keras.Input((10, 10, 3), name="image"),
        L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu",
                          bias_initializer=_bias_init(), name="depthwise"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(4, bias_initializer=_bias_init(), name="dense"),
    ], name="depthwise")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp, _rep_data([(1, 10, 10, 3)], salt=6))
    return (data, "Full-integer DepthwiseConv2D(3x3, depth_multiplier=2) on 3 "
            "channels (weights [1,3,3,6], per-channel on axis 3) -> "
            "GlobalAveragePooling -> Dense(4), int8 input and output",
            rcp, {})


class _ControlFlow(object):
    """Module whose function has a while loop and a cond (extra subgraphs)."""

    def __init__(self):
        rng = _rng(7)
        self.w_body = rng.normal(size=(4, 4)).astype(np.float32) * 0.5
        self.b_body = rng.normal(size=(4,)).astype(np.float32) * 0.1
        self.w_then = rng.normal(size=(4, 3)).astype(np.float32)
        self.w_else = rng.normal(size=(4, 3)).astype(np.float32)
        self.w_main = rng.normal(size=(4,)).astype(np.float32)

    def build(self):
        module = tf.Module()
        w_body, b_body = self.w_body, self.b_body
        w_then, w_else, w_main = self.w_then, self.w_else, self.w_main

        @tf.function(input_signature=[
            tf.TensorSpec([1, 4], tf.float32, name="x"),
            tf.TensorSpec([], tf.int32, name="steps")])
        def serve(x, steps):
            x = x * tf.constant(w_main)

            def cond(i, h):
                return i < steps

            def body(i, h):
                # Constants created here live in the loop body subgraph.
                h = tf.tanh(tf.matmul(h, tf.constant(w_body)) +
                            tf.constant(b_body))
                return i + 1, h

            _, h = tf.while_loop(cond, body, [tf.constant(0), x])
            y = tf.cond(tf.reduce_sum(h) > 0.0,
                        lambda: tf.matmul(h, tf.constant(w_then)),
                        lambda: tf.nn.relu(tf.matmul(h, tf.constant(w_else))))
            return {"y": y, "h": h}

        module.serve = serve
        return module


def fx_control_flow():
    rcp = recipe(source="concrete_functions")
    cf = _ControlFlow()
    module = cf.build()
    fn = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    data = _apply_recipe(converter, rcp)
    return (data, "tf.function with tf.while_loop (constant weight [4,4] and "
            "bias [4] inside the loop body) and tf.cond (a [4,3] weight in "
            "each branch): WHILE and IF ops with several subgraphs", rcp, {})


def fx_lstm():
    rcp = recipe()
    L = keras.layers
    model = keras.Sequential([
        keras.Input((5, 3), batch_size=1, name="sequence"),
        L.LSTM(4, name="lstm"),
        L.Dense(2, bias_initializer=_bias_init(), name="dense"),
    ], name="lstm")
    lstm = model.get_layer("lstm")
    kernel, recurrent, bias = lstm.get_weights()
    bias = _rng(8).normal(scale=0.1, size=bias.shape).astype(np.float32)
    lstm.set_weights([kernel, recurrent, bias])  # distinct gate biases
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = _apply_recipe(converter, rcp)
    return (data, "Float Keras LSTM(4) over 5 steps of 3 features (batch 1), "
            "fused into UNIDIRECTIONAL_SEQUENCE_LSTM with variable state "
            "tensors, then Dense(2)", rcp, {})


def _multi_signature_module():
    rng = _rng(9)
    module = tf.Module()
    module.enc_w = tf.Variable(rng.normal(size=(6, 3)).astype(np.float32),
                               name="enc_w")
    module.enc_b = tf.Variable(rng.normal(size=(3,)).astype(np.float32) * 0.1,
                               name="enc_b")
    module.dec_w = tf.Variable(rng.normal(size=(3, 6)).astype(np.float32),
                               name="dec_w")
    module.dec_b = tf.Variable(rng.normal(size=(6,)).astype(np.float32) * 0.1,
                               name="dec_b")

    @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.float32, name="x")])
    def encode(x):
        code = tf.tanh(tf.matmul(x, module.enc_w) + module.enc_b)
        # Keys chosen so that alphabetical and creation order differ.
        return {"z_code": code,
                "a_norm": tf.reduce_sum(code * code, axis=1),
                "m_scaled": code * 2.0}

    @tf.function(input_signature=[
        tf.TensorSpec([1, 3], tf.float32, name="code"),
        tf.TensorSpec([1, 1], tf.float32, name="gain")])
    def decode(code, gain):
        recon = tf.matmul(code, module.dec_w) + module.dec_b
        return {"recon": recon * gain,
                "energy": tf.reduce_mean(recon, axis=1)}

    module.encode = encode
    module.decode = decode
    return module


def fx_multi_signature():
    rcp = recipe(source="saved_model", signature_keys=["encode", "decode"])
    module = _multi_signature_module()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "saved_model")
        tf.saved_model.save(module, path, signatures={
            "encode": module.encode.get_concrete_function(),
            "decode": module.decode.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            path, signature_keys=rcp["signature_keys"])
        data = _apply_recipe(converter, rcp)
    return (data, "SavedModel with two signatures: encode(x[1,6]) -> "
            "{z_code, a_norm, m_scaled} and decode(code[1,3], gain[1,1]) -> "
            "{recon, energy}, each with its own weights (one subgraph each)",
            rcp, {})


BUFFER_OFFSET_ATTEMPTS = 32


def _blob_order(data):
    """Buffer indices of the offset buffers, in the order of their bytes."""
    from tensorflow.lite.python import schema_py_generated as schema
    model = schema.Model.GetRootAs(bytes(data), 0)
    placed = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.Offset() > 1:
            placed.append((buf.Offset(), i))
    return tuple(i for _, i in sorted(placed))


def fx_buffer_offset():
    rcp = recipe(use_buffer_offset=True)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((12,), name="features"),
        L.Dense(7, activation="relu", bias_initializer=_bias_init(),
                name="hidden"),
        L.Dense(3, bias_initializer=_bias_init(), name="out"),
    ], name="buffer_offset")
    # The converter appends the constant blobs in the iteration order of a
    # hash map seeded from heap addresses, so each conversion picks one of a
    # few orders at random (4 seen with TF 2.21).  Converting several times
    # and keeping the smallest order makes the file reproducible.
    best = None
    for _ in range(BUFFER_OFFSET_ATTEMPTS):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        data = bytes(_apply_recipe(converter, rcp))
        key = (_blob_order(data), data)
        if best is None or key < best:
            best = key
    return (best[1], "Float Dense(12->7) -> Dense(7->3) converted with "
            "_experimental_use_buffer_offset: constant data after the "
            "flatbuffer, Buffer.offset/size, metadata buffer_location; of "
            "%d conversions (the blob order varies between them) the one "
            "with the lowest buffer indices first is kept"
            % BUFFER_OFFSET_ATTEMPTS, rcp, {})


def _sparse_model():
    L = keras.layers
    model = keras.Sequential([
        keras.Input((64,), name="features"),
        L.Dense(32, activation="relu", bias_initializer=_bias_init(),
                name="sparse_dense"),
        L.Dense(4, bias_initializer=_bias_init(), name="out"),
    ], name="sparse")
    layer = model.get_layer("sparse_dense")
    kernel, bias = layer.get_weights()
    rng = _rng(11)
    keep = rng.random(kernel.shape) >= 0.8          # ~80 % zeros
    layer.set_weights([(kernel * keep).astype(np.float32), bias])
    return model


def fx_sparse():
    rcp = recipe(optimizations=["EXPERIMENTAL_SPARSITY"])
    converter = tf.lite.TFLiteConverter.from_keras_model(_sparse_model())
    data = _apply_recipe(converter, rcp)
    return (data, "Float Dense(64->32) whose kernel is ~80% zeros (random "
            "pattern), converted with EXPERIMENTAL_SPARSITY: a sparse "
            "(CSR) constant densified by a DENSIFY op; Dense(32->4) stays "
            "dense", rcp, {})


def fx_sparse_int8():
    rcp = recipe(optimizations=["DEFAULT", "EXPERIMENTAL_SPARSITY"],
                 representative_dataset=True,
                 supported_ops=["TFLITE_BUILTINS_INT8"],
                 inference_input_type="int8", inference_output_type="int8")
    converter = tf.lite.TFLiteConverter.from_keras_model(_sparse_model())
    data = _apply_recipe(converter, rcp, _rep_data([(1, 64)], salt=12))
    return (data, "The sparse model with full-integer quantization and "
            "EXPERIMENTAL_SPARSITY: int8 sparse weight read by "
            "FULLY_CONNECTED", rcp, {})


def fx_resource_variable():
    rcp = recipe(source="saved_model",
                 experimental_enable_resource_variables=True)
    rng = _rng(13)
    module = tf.Module()
    module.state = tf.Variable(rng.normal(size=(1, 4)).astype(np.float32),
                               name="state")
    module.gain = tf.Variable(rng.normal(size=(4,)).astype(np.float32),
                              name="gain")

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def step(x):
        new_state = module.state * 0.5 + x * module.gain
        module.state.assign(new_state)
        return {"out": new_state + 1.0}

    module.step = step
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "saved_model")
        tf.saved_model.save(module, path,
                            signatures={"serving_default":
                                        module.step.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(path)
        data = _apply_recipe(converter, rcp)
    return (data, "tf.Module with a mutable tf.Variable state[1,4] (assigned "
            "in the function) and a read-only gain[4]: VAR_HANDLE / "
            "READ_VARIABLE / ASSIGN_VARIABLE with the initial value in a "
            "CALL_ONCE init subgraph", rcp, {})


def fx_strings():
    rcp = recipe(source="concrete_functions")
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([2], tf.int32, name="ids")])
    def lookup(ids):
        # Empty string, embedded NUL and non-ASCII bytes on purpose.
        table = tf.constant([b"alpha", b"", b"g\x00mma",
                             u"d\u00e9lta".encode("utf-8")])
        return {"words": tf.gather(table, ids)}

    module.lookup = lookup
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [lookup.get_concrete_function()], module)
    data = _apply_recipe(converter, rcp)
    return (data, "STRING constant [4] (b'alpha', b'', b'g\\x00mma', "
            "UTF-8 'd\u00e9lta') read by GATHER", rcp, {})


FIXTURES = {
    "qat_conv": fx_qat_conv,
    "ptq_int8": fx_ptq_int8,
    "dynamic_range": fx_dynamic_range,
    "float16": fx_float16,
    "int16x8": fx_int16x8,
    "depthwise": fx_depthwise,
    "control_flow": fx_control_flow,
    "lstm": fx_lstm,
    "multi_signature": fx_multi_signature,
    "buffer_offset": fx_buffer_offset,
    "sparse": fx_sparse,
    "sparse_int8": fx_sparse_int8,
    "resource_variable": fx_resource_variable,
    "strings": fx_strings,
}


# ----------------------------------------------------------------------------
# What TensorFlow's own flatbuffer code says about a converted file


def describe_model(data):
    """Operators per subgraph, metadata names, decoded CONVERSION_METADATA."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python import (
        conversion_metadata_schema_py_generated as cm_schema)
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    codes = []
    for oc in model.operatorCodes:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == schema.BuiltinOperator.CUSTOM:
            codes.append("CUSTOM:" + oc.customCode.decode())
        else:
            codes.append(names.get(code, str(code)))
    subgraphs = []
    for sg in model.subgraphs:
        name = sg.name.decode() if sg.name else None
        subgraphs.append({
            "name": name,
            "num_tensors": len(sg.tensors or []),
            "operators": [codes[op.opcodeIndex] for op in sg.operators or []],
        })
    meta = {}
    conversion = None
    for m in model.metadata or []:
        key = m.name.decode()
        buf = model.buffers[m.buffer].data
        raw = b"" if buf is None else np.asarray(buf, np.uint8).tobytes()
        if key == "CONVERSION_METADATA":
            cm = cm_schema.ConversionMetadataT.InitFromPackedBuf(raw, 0)
            env, opts = cm.environment, cm.options
            conversion = {
                "environment": {
                    "tensorflow_version": (env.tensorflowVersion.decode()
                                           if env.tensorflowVersion else None),
                    "api_version": env.apiVersion,
                    "model_type": env.modelType,
                    "model_hash": env.modelHash,
                },
                "options": {
                    "model_optimization_modes": sorted(
                        int(v) for v in (
                            [] if opts.modelOptimizationModes is None
                            else opts.modelOptimizationModes)),
                    "allow_custom_ops": bool(opts.allowCustomOps),
                    "enable_select_tf_ops": bool(opts.enableSelectTfOps),
                    "force_select_tf_ops": bool(opts.forceSelectTfOps),
                },
            }
            meta[key] = {"size": len(raw)}
        else:
            meta[key] = {"size": len(raw), "hex": raw.hex()}
    return {"subgraphs": subgraphs, "metadata": meta,
            "conversion_metadata": conversion,
            "num_buffers": len(model.buffers or [])}


# ----------------------------------------------------------------------------
# Goldens


def run_golden(model_path, json_path, npz_path, timeout=600):
    """The interpreter's report on a fixture, written to ``json_path``/``npz_path`` by
    the runner ``tflite_weights.testing`` uses too (crashing reads retried without
    them; a crash recorded as status "crashed"); returns (status, return code)."""
    env = dict(os.environ)
    env.update(_ENV)
    report = run_dump(model_path, json_path, npz_path, timeout=timeout, env=env)
    return report["status"], report.get("returncode", 0) or 0


# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# Sanity checks: each fixture shows what it is meant to show.


def _golden_tensors(golden):
    out = list(golden.get("tensors", []))
    for sg in golden.get("other_subgraphs", []):
        out.extend(sg.get("tensors", []))
    return out


def check_fixture(name, entry, out_dir):
    """Returns a list of problems (empty if the fixture is as intended)."""
    problems = []

    def expect(cond, msg):
        if not cond:
            problems.append(msg)

    with open(os.path.join(out_dir, entry["golden"]["json"]["file"])) as f:
        golden = json.load(f)
    expect(golden.get("status") == "ok",
           "golden status %r" % golden.get("status"))
    if golden.get("status") not in ("ok", "refused"):
        return problems
    values = np.load(os.path.join(out_dir, entry["golden"]["npz"]["file"]),
                     allow_pickle=False)
    with open(os.path.join(out_dir, entry["file"]), "rb") as f:
        blob = f.read()
    tensors = _golden_tensors(golden)
    for t in tensors:
        if t.get("data_offset") is not None:
            a = values[t["npz_key"]]
            raw = blob[t["data_offset"]:t["data_offset"] + t["data_nbytes"]]
            expect(raw == a.tobytes(),
                   "%s: bytes at data_offset differ from the value"
                   % t["name"])
    ops = [op for sg in entry["model"]["subgraphs"] for op in sg["operators"]]
    consts = [t for t in tensors if t.get("value_before_allocate") == "ok"]

    def qp(t):
        return t["quantization_parameters"]

    def per_channel(t, qdim):
        return (len(qp(t)["scales"]) == t["shape"][qdim] > 1
                and qp(t)["quantized_dimension"] == qdim)

    if name == "qat_conv":
        conv = [t for t in consts if t["dtype"] == "int8"
                and t["shape"] == [8, 3, 3, 1]]
        expect(len(conv) == 1 and per_channel(conv[0], 0),
               "conv weight int8 [8,3,3,1] with 8 scales on axis 0")
        fw = np.load(os.path.join(out_dir, "qat_conv_float_weights.npz"))
        if conv:
            q = values[conv[0]["npz_key"]].astype(np.float64)
            scale = np.asarray(qp(conv[0])["scales"])[:, None, None, None]
            kmin = fw["quant_conv__kernel_min_0"][:, None, None, None]
            kmax = fw["quant_conv__kernel_max_0"][:, None, None, None]
            k = np.clip(fw["conv_kernel"].transpose(3, 0, 1, 2), kmin, kmax)
            err = np.max(np.abs(q * scale - k) / scale)
            expect(err <= 0.5 + 1e-3,
                   "int8 conv weight != clip(float, QAT range) (%.3f LSB)"
                   % err)
    if name in ("ptq_int8", "depthwise", "sparse_int8"):
        expect(all(t["dtype"] in ("int8", "int32") for t in consts
                   if t["shape"] and len(t["shape"]) > 1),
               "full-integer model has float weights")
    if name == "depthwise":
        dw = [t for t in consts if t["dtype"] == "int8"
              and t["shape"] == [1, 3, 3, 6]]
        expect(len(dw) == 1 and per_channel(dw[0], 3),
               "depthwise weight [1,3,3,6] per-channel on axis 3")
    if name == "int16x8":
        expect(any(t["dtype"] == "int64" for t in consts), "int64 bias")
        expect(any(t["dtype"] == "int16" for t in tensors),
               "int16 activations")
    if name == "dynamic_range":
        expect(any(t["dtype"] == "int8" and t["shape"] == [48, 64]
                   and per_channel(t, 0) for t in consts),
               "int8 hybrid weight [48,64] with 48 scales")
        expect(any(t["dtype"] == "float32" and t["shape"] == [8, 48]
                   for t in consts), "small weight stays float32")
        expect("DEQUANTIZE" not in ops, "no DEQUANTIZE in a hybrid model")
    if name == "float16":
        expect(any(t["dtype"] == "float16" for t in consts),
               "float16 constants")
        expect("DEQUANTIZE" in ops, "DEQUANTIZE op")
    if name in ("sparse", "sparse_int8"):
        expect(any(t["sparsity_parameters"] for t in consts),
               "a constant with sparsity parameters")
        expect("DENSIFY" in ops, "DENSIFY op")
    if name == "buffer_offset":
        expect("buffer_location" in entry["model"]["metadata"],
               "metadata buffer_location")
        first_offset = min((t["data_offset"] for t in consts
                              if t.get("data_offset") is not None),
                             default=0)
        expect(first_offset > 0, "constants read from the file")
    if name == "control_flow":
        expect(len(entry["model"]["subgraphs"]) > 1, "several subgraphs")
        expect("WHILE" in ops and "IF" in ops, "WHILE and IF ops")
        expect(any(t["subgraph"] > 0 and len(t["shape"]) == 2
                   for t in consts), "a weight in a non-main subgraph")
    if name == "lstm":
        expect("UNIDIRECTIONAL_SEQUENCE_LSTM" in ops,
               "UNIDIRECTIONAL_SEQUENCE_LSTM op")
    if name == "multi_signature":
        expect(sorted(golden["signatures"]) == ["decode", "encode"],
               "signatures encode and decode")
    if name == "resource_variable":
        for op in ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
                   "CALL_ONCE"):
            expect(op in ops, op + " op")
        expect(any(t["subgraph"] > 0 for t in consts),
               "initial value in the init subgraph")
    if name == "strings":
        words = [t for t in consts if "string_value" in t]
        expect(len(words) == 1 and [bytes.fromhex(v) for v in
                                    words[0]["string_value"]]
               == [b"alpha", b"", b"g\x00mma", u"d\u00e9lta".encode()],
               "string constant read back by the interpreter")
    if entry["recipe"]["use_buffer_offset"]:
        expect(entry["model"]["conversion_metadata"] is None,
               "no CONVERSION_METADATA expected with buffer offsets")
    else:
        expect(entry["model"]["conversion_metadata"] is not None,
               "CONVERSION_METADATA present")
    return problems


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _file_record(out_dir, rel):
    path = os.path.join(out_dir, rel)
    return {"file": rel, "sha256": _sha256(path),
            "size": os.path.getsize(path)}


def _versions():
    from importlib.metadata import version, PackageNotFoundError

    def v(*dists):
        for d in dists:
            try:
                return version(d)
            except PackageNotFoundError:
                pass
        return None
    return {
        "python": platform.python_version(),
        "tensorflow": v("tensorflow", "tensorflow-cpu"),
        "tensorflow_dist": ("tensorflow-cpu" if v("tensorflow-cpu")
                            else "tensorflow"),
        "tf_keras": v("tf-keras", "tf_keras"),
        "tensorflow_model_optimization": v("tensorflow-model-optimization"),
        "ai_edge_litert": v("ai-edge-litert"),
        "numpy": np.__version__,
        "flatbuffers": v("flatbuffers"),
    }


def build(name, out_dir):
    _reset()
    data, description, rcp, extras = FIXTURES[name]()
    model_rel = name + ".tflite"
    model_path = os.path.join(out_dir, model_rel)
    with open(model_path, "wb") as f:
        f.write(bytes(data))
    entry = {"name": name, "description": description, "recipe": rcp}
    entry.update(_file_record(out_dir, model_rel))
    entry["model"] = describe_model(data)

    extra_records = []
    for rel, spec in sorted(extras.items()):
        write_npz(os.path.join(out_dir, rel), spec["arrays"])
        rec = _file_record(out_dir, rel)
        rec.update(kind=spec["kind"], description=spec["description"],
                   keys=sorted(spec["arrays"]))
        extra_records.append(rec)
    entry["extra_files"] = extra_records

    gdir = os.path.join(out_dir, "goldens")
    os.makedirs(gdir, exist_ok=True)
    json_rel = os.path.join("goldens", name + ".json")
    npz_rel = os.path.join("goldens", name + ".npz")
    status, rc = run_golden(model_path, os.path.join(out_dir, json_rel),
                          os.path.join(out_dir, npz_rel))
    entry["golden"] = {"status": status, "returncode": rc,
                       "json": _file_record(out_dir, json_rel),
                       "npz": _file_record(out_dir, npz_rel)}
    return entry, check_fixture(name, entry, out_dir)


# Variables passed on to the per-fixture processes; everything else (PWD,
# OLDPWD, the shell's "_", ...) is left out so that it cannot shift the heap.
_CHILD_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV",
                   "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _build_in_child(name, out_dir):
    """Builds one fixture in a fresh process; returns (entry, problems).

    A fresh process per fixture makes each file independent of what was
    built before it, and the process gets the same command line and
    environment whatever the caller's: the buffer-offset writer orders its
    constant blobs by a hash that depends on heap addresses, and those
    depend on everything the process allocated before (earlier conversions,
    the length of its arguments and environment).
    """
    fd, result_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = {k: os.environ[k] for k in _CHILD_ENV_KEEP if k in os.environ}
    env.update(_ENV)
    env[_REEXEC_MARK] = os.environ.get(_REEXEC_MARK, "aslr-on")
    request = json.dumps({"name": name, "out": out_dir,
                          "result": result_path})
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--build-one"],
            input=request.encode(), env=env, cwd=SCRIPTS_DIR)
        if proc.returncode != 0:
            raise RuntimeError("building %s failed (return code %d)"
                               % (name, proc.returncode))
        with open(result_path) as f:
            result = json.load(f)
    finally:
        os.remove(result_path)
    return result["entry"], result["problems"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO_DIR, "fixtures"))
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=FIXTURES)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--build-one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(FIXTURES))
        return 0
    if args.build_one:  # child process of _build_in_child; request on stdin
        request = json.loads(sys.stdin.read())
        _import_tf()
        entry, problems = build(request["name"], request["out"])
        with open(request["result"], "w") as f:
            json.dump({"entry": entry, "problems": problems}, f)
        return 0
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "MANIFEST.json")
    fixtures = {}
    if args.only and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            fixtures = json.load(f).get("fixtures", {})
    names = args.only or list(FIXTURES)
    failed = {}
    for name in names:
        print("building %s ..." % name, flush=True)
        entry, problems = _build_in_child(name, out_dir)
        fixtures[name] = entry
        print("  %s: %d bytes, golden %s%s" % (
            entry["file"], entry["size"], entry["golden"]["status"],
            "" if not problems else ", NOT AS INTENDED: " + "; ".join(problems)),
            flush=True)
        if problems:
            failed[name] = problems
    ordered = {n: fixtures[n] for n in FIXTURES if n in fixtures}
    manifest = {"format": 1,
                "generator": "scripts/make_fixtures.py",
                "seed": SEED,
                "address_randomisation": (
                    "off" if os.environ.get(_REEXEC_MARK) == "aslr-off"
                    else "on"),
                "versions": _versions(),
                "fixtures": ordered}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = 0
    for root, _, files in os.walk(out_dir):
        total += sum(os.path.getsize(os.path.join(root, fn)) for fn in files)
    print("fixtures directory: %d bytes" % total)
    if failed:
        print("fixtures not as intended: %s" % ", ".join(sorted(failed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
