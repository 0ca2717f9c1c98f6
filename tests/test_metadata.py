"""Decoded metadata entries against independent readers and hand-built flatbuffers.

The reference decoder here is the ``flatbuffers`` package's own table reader,
driven by the slot numbers of conversion_metadata.fbs; the generated bindings
give the raw metadata bytes; fixture models carry the converter's own record.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import flatbuffers
import numpy as np
import pytest
from flatbuffers import number_types as N
from flatbuffers.table import Table as FbTable

import tflite_weights
from tflite_weights.format import nested
from tflite_weights.errors import InvalidModelError

from tests.support.builders import S, ModelBuilder, conversion_metadata_bytes, support_metadata_bytes

HERE = os.path.dirname(__file__)
from tests.support.paths import CORPUS  # noqa: E402
MODELS = sorted(f for f in os.listdir(CORPUS) if not f.endswith(".md")) \
    if os.path.isdir(CORPUS) else []
READABLE = [f for f in MODELS if f != "litert_invalid_model.bin"]
needs_corpus = pytest.mark.skipif(not MODELS, reason="../shared/corpus is absent")
FIXTURES = os.path.join(HERE, "..", "fixtures")
MANIFEST = os.path.join(FIXTURES, "MANIFEST.json")

MODES = {1001: "PTQ_FLOAT16", 1002: "PTQ_DYNAMIC_RANGE", 1003: "PTQ_FULL_INTEGER",
         1004: "PTQ_INT16", 2000: "QUANTIZATION_AWARE_TRAINING", 3001: "RANDOM_SPARSITY",
         3002: "BLOCK_SPARSITY", 3003: "STRUCTURED_SPARSITY"}
MODEL_TYPES = {0: "NONE", 1: "TF_SAVED_MODEL", 2: "KERAS_MODEL", 3: "TF_CONCRETE_FUNCTIONS",
               4: "TF_GRAPH_DEF", 5: "TF_SESSION", 6: "JAX", 7: "PYTORCH"}


def _generated_metadata(data):
    """name -> bytes of its buffer, through the generated bindings (first name wins)."""
    g = S.Model.GetRootAs(data, 0)
    out = {}
    for i in range(g.MetadataLength()):
        md = g.Metadata(i)
        name = md.Name().decode()
        if name not in out:
            buf = g.Buffers(md.Buffer())
            out[name] = b"" if buf.DataIsNone() else buf.DataAsNumpy().tobytes()
    return out


def _reference_conversion_metadata(raw: bytes) -> dict:
    """Decode ConversionMetadata with flatbuffers' own Table reader."""
    def field(tab, slot, flags, default):
        o = tab.Offset(4 + 2 * slot)
        return tab.Get(flags, o + tab.Pos) if o else default

    def sub(tab, slot):
        o = tab.Offset(4 + 2 * slot)
        return FbTable(tab.Bytes, tab.Indirect(o + tab.Pos)) if o else None

    def vector(tab, slot, flags, size):
        o = tab.Offset(4 + 2 * slot)
        if not o:
            return []
        start = tab.Vector(o)
        return [tab.Get(flags, start + size * i) for i in range(tab.VectorLen(o))]

    root = FbTable(raw, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, raw, 0))
    env, opts = sub(root, 0), sub(root, 1)
    out = {"environment": None, "options": None}
    if env is not None:
        o = env.Offset(4)
        out["environment"] = {
            "tensorflow_version": env.String(o + env.Pos).decode() if o else None,
            "api_version": field(env, 1, N.Uint32Flags, 0),
            "model_type": MODEL_TYPES.get(field(env, 2, N.Int32Flags, 0)),
            "model_hash": field(env, 3, N.Uint64Flags, 0)}
    if opts is not None:
        blocks = []
        o = opts.Offset(4 + 2 * 4)
        if o:
            start = opts.Vector(o)
            for i in range(opts.VectorLen(o)):
                t = FbTable(raw, opts.Indirect(start + 4 * i))
                blocks.append(vector(t, 0, N.Uint32Flags, 4))
        out["options"] = {
            "model_optimization_modes": [MODES.get(m, f"<{m}>") for m in
                                         vector(opts, 0, N.Int32Flags, 4)],
            "allow_custom_ops": bool(field(opts, 1, N.BoolFlags, False)),
            "enable_select_tf_ops": bool(field(opts, 2, N.BoolFlags, False)),
            "force_select_tf_ops": bool(field(opts, 3, N.BoolFlags, False)),
            "sparsity_block_sizes": blocks}
    return out


# -- corpus --------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("name", READABLE)
def test_corpus_min_runtime_version_matches_generated_bindings(name):
    data = open(os.path.join(CORPUS, name), "rb").read()
    raw = _generated_metadata(data).get("min_runtime_version")
    got = tflite_weights.open(data).min_runtime_version
    if not raw:
        assert got is None
    else:
        assert got == raw.split(b"\0")[0].decode()
        assert got and "\0" not in got


@needs_corpus
@pytest.mark.parametrize("name", READABLE)
def test_corpus_conversion_metadata_matches_reference_decoder(name):
    data = open(os.path.join(CORPUS, name), "rb").read()
    raw = _generated_metadata(data).get("CONVERSION_METADATA")
    cm = tflite_weights.open(data).conversion_metadata
    if not raw:
        assert cm is None
        return
    assert cm.to_dict() == _reference_conversion_metadata(raw)


@needs_corpus
def test_corpus_conversion_metadata_facts():
    cm = tflite_weights.open(os.path.join(CORPUS, "tflm_hello_world_int8.tflite")) \
        .conversion_metadata
    assert cm.environment.tensorflow_version == "2.11.0"
    assert cm.environment.model_type == "KERAS_MODEL"
    assert cm.model_optimization_modes == ("PTQ_FULL_INTEGER",)
    cm = tflite_weights.open(os.path.join(CORPUS, "tflm_audio_preprocessor_int8.tflite")) \
        .conversion_metadata
    assert cm.options.allow_custom_ops is True


@needs_corpus
@pytest.mark.parametrize("name", READABLE)
def test_corpus_describe_is_json_and_has_no_errors(name):
    model = tflite_weights.open(os.path.join(CORPUS, name))
    d = model.describe()
    text = json.dumps(d)
    assert '"error"' not in text
    assert d["compression_metadata"] is False
    assert d["associated_files"] == [] and d["tflite_metadata"] is None
    assert [e["name"] for e in d["metadata"]] == list(_generated_metadata(
        open(os.path.join(CORPUS, name), "rb").read()))


# -- synthetic: min_runtime_version, buffer_location, compression -------------------------


def _model_with(entries: dict, trailing: bytes = b"") -> bytes:
    b = ModelBuilder()
    b.subgraph().tensor("x", "FLOAT32", [1])
    for name, raw in entries.items():
        b.add_metadata(name, raw)
    return b.finish(trailing=trailing)


def test_min_runtime_version_is_cut_at_the_first_nul():
    model = tflite_weights.open(_model_with({"min_runtime_version": b"1.15.0" + b"\0" * 10}))
    assert model.min_runtime_version == "1.15.0"
    model = tflite_weights.open(_model_with({"min_runtime_version": b"2.3.0"}))  # TOCO: unpadded
    assert model.min_runtime_version == "2.3.0"
    assert tflite_weights.open(_model_with({})).min_runtime_version is None
    # an empty entry is skipped, as the runtime's ReadAllMetadata does
    assert tflite_weights.open(_model_with({"min_runtime_version": b""})) \
        .min_runtime_version is None
    assert tflite_weights.open(_model_with({"CONVERSION_METADATA": b""})) \
        .conversion_metadata is None


def test_first_entry_of_a_repeated_name_wins():
    b = ModelBuilder()
    b.subgraph()
    b.add_metadata("min_runtime_version", b"1.0.0\0")
    b.add_metadata("min_runtime_version", b"9.9.9\0")
    assert tflite_weights.open(b.finish()).min_runtime_version == "1.0.0"


def test_buffer_location_and_compression_metadata_are_reported():
    data = _model_with({"buffer_location": b"outside flatbuffers",
                        "COMPRESSION_METADATA": b"\0" * 16})
    model = tflite_weights.open(data)
    assert model.buffer_location == "outside flatbuffers"
    assert model.has_compression_metadata is True
    d = model.describe()
    assert d["buffer_location"] == "outside flatbuffers"
    assert d["compression_metadata"] is True
    plain = tflite_weights.open(_model_with({}))
    assert plain.buffer_location is None
    assert plain.has_compression_metadata is False


def test_metadata_entry_with_missing_buffer_raises_naming_it():
    b = ModelBuilder()
    b.subgraph()
    b.add_metadata("min_runtime_version", b"1.0\0")
    b.m.metadata[0].buffer = 99
    model = tflite_weights.open(b.finish())  # opening does not read metadata
    with pytest.raises(InvalidModelError, match="metadata 'min_runtime_version'.*buffer 99"):
        model.min_runtime_version
    d = model.describe()
    assert "error" in d["min_runtime_version"]
    assert "buffer 99" in d["metadata"][0]["error"]


# -- synthetic: CONVERSION_METADATA --------------------------------------------------------


def test_conversion_metadata_round_trip():
    raw = conversion_metadata_bytes(
        tensorflow_version="2.21.0", api_version=2, model_type=7, model_hash=2**64 - 5,
        modes=[1002, 3002, 4242], allow_custom_ops=True, force_select_tf_ops=True,
        sparsity_block_sizes=[[1, 4], [16]])
    model = tflite_weights.open(_model_with({"CONVERSION_METADATA": raw}))
    cm = model.conversion_metadata
    assert cm.environment == nested.Environment("2.21.0", 2, "PYTORCH", 2**64 - 5)
    assert cm.options.model_optimization_modes == ("PTQ_DYNAMIC_RANGE", "BLOCK_SPARSITY",
                                                   "<4242>")
    assert cm.options.allow_custom_ops and cm.options.force_select_tf_ops
    assert not cm.options.enable_select_tf_ops
    assert cm.options.sparsity_block_sizes == ((1, 4), (16,))
    assert cm.to_dict() == _reference_conversion_metadata(raw)
    json.dumps(cm.to_dict())
    with pytest.raises(Exception):
        cm.environment = None  # frozen


def test_conversion_metadata_without_environment_or_options():
    raw = conversion_metadata_bytes(environment=False, options=False)
    cm = tflite_weights.open(_model_with({"CONVERSION_METADATA": raw})).conversion_metadata
    assert cm.environment is None and cm.options is None
    assert cm.model_optimization_modes == ()


def test_conversion_metadata_is_read_in_place_without_a_copy():
    raw = conversion_metadata_bytes(tensorflow_version="x" * 40)
    data = _model_with({"CONVERSION_METADATA": raw})
    model = tflite_weights.open(data)
    entry = {e.name: e for e in model.metadata_entries()}.get("CONVERSION_METADATA")
    assert data[entry.offset:entry.offset + entry.size] == raw
    assert model.conversion_metadata.environment.tensorflow_version == "x" * 40


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_conversion_metadata_raises_naming_the_entry_when_read(damage):
    raw = conversion_metadata_bytes(modes=[1001], sparsity_block_sizes=[[1, 4]])
    raw = {"garbage": b"\xff" * 32, "truncated": raw[:len(raw) // 2], "empty": b"\0\0\0"}[damage]
    model = tflite_weights.open(_model_with({"CONVERSION_METADATA": raw}))
    assert model.min_runtime_version is None  # the rest of the model reads
    with pytest.raises(InvalidModelError, match="metadata 'CONVERSION_METADATA'"):
        model.conversion_metadata
    assert "CONVERSION_METADATA" in model.describe()["conversion_metadata"]["error"]


def test_nested_reads_stay_inside_the_entry():
    """A nested root offset that points past the entry (but inside the file) is refused."""
    raw = bytearray(conversion_metadata_bytes())
    raw[0:4] = (len(raw) + 8).to_bytes(4, "little")
    model = tflite_weights.open(_model_with({"CONVERSION_METADATA": bytes(raw)},
                                            trailing=b"\0" * 64))
    with pytest.raises(InvalidModelError, match="CONVERSION_METADATA"):
        model.conversion_metadata


# -- fixtures: conversion metadata against the converter recipe --------------------------


def _fixtures():
    if not os.path.exists(MANIFEST):
        return []
    with open(MANIFEST) as f:
        entries = json.load(f).get("fixtures", {})
    return [(name, e) for name, e in sorted(entries.items())
            if os.path.exists(os.path.join(FIXTURES, name + ".tflite"))]


def _expected_modes(recipe) -> "tuple[set, set]":
    """(quantization modes that must be there, sparsity modes that may be there),
    following the converter (tflite/python/lite.py, QuantizationMode)."""
    must = set()
    opts = set(recipe.get("optimizations") or ())
    if recipe.get("qat"):
        must.add("QUANTIZATION_AWARE_TRAINING")
    elif "DEFAULT" in opts:
        types = set(recipe.get("supported_types") or ())
        ops = set(recipe.get("supported_ops") or ())
        if "float16" in types:
            must.add("PTQ_FLOAT16")
        elif "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8" in ops:
            must.add("PTQ_INT16")
        elif recipe.get("representative_dataset"):
            must.add("PTQ_FULL_INTEGER")
        else:
            must.add("PTQ_DYNAMIC_RANGE")
    may = ({"RANDOM_SPARSITY", "BLOCK_SPARSITY", "STRUCTURED_SPARSITY"}
           if recipe.get("experimental_sparsity") else set())
    return must, may


@pytest.mark.skipif(not _fixtures(), reason="fixtures/MANIFEST.json is absent")
@pytest.mark.parametrize("name,entry", _fixtures(), ids=[n for n, _ in _fixtures()])
def test_fixture_conversion_metadata_matches_its_recipe(name, entry):
    model = tflite_weights.open(os.path.join(FIXTURES, name + ".tflite"))
    cm = model.conversion_metadata
    recipe = entry["recipe"]
    if recipe.get("use_buffer_offset"):
        # the converter skips conversion metadata for buffer-offset models (lite.py)
        assert cm is None
        assert model.buffer_location == "outside flatbuffers"
        return
    assert cm is not None
    modes = set(cm.model_optimization_modes)
    must, may = _expected_modes(recipe)
    assert must <= modes and modes - must <= may, (modes, must, may)
    if recipe.get("experimental_sparsity"):
        assert modes & may
    recorded = entry.get("model", {}).get("conversion_metadata")
    if recorded is not None:  # the generator's own decode, with TensorFlow's bindings
        assert sorted(MODES.get(m, f"<{m}>") for m in
                      recorded["options"]["model_optimization_modes"]) == sorted(modes)
        env = recorded["environment"]
        assert cm.environment.tensorflow_version == env["tensorflow_version"]
        assert cm.environment.api_version == env["api_version"]
        assert cm.environment.model_type == MODEL_TYPES[env["model_type"]]
        assert cm.environment.model_hash == env["model_hash"]
        for k in ("allow_custom_ops", "enable_select_tf_ops", "force_select_tf_ops"):
            assert getattr(cm.options, k) == recorded["options"][k]


# -- synthetic: TFLITE_METADATA and the appended zip ----------------------------------------

LABELS = b"cat\ndog\nbird\n"
VOCAB = b"".join(b"word%d\n" % i for i in range(500))


def _support():
    return support_metadata_bytes(
        name="classifier", description="Finds cats", version="v3", author="someone",
        license="Apache-2.0", min_parser_version="1.2.1",
        files=[("vocab.txt", "the words", 5)],
        subgraphs=[dict(name="main", inputs=[("image", [])],
                        outputs=[("probability", [("labels.txt", "labels", 2)])])])


def _zip(files: dict, comment=b"") -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, raw in files.items():
            zf.writestr(name, raw)
        zf.comment = comment
    return bio.getvalue()


def _appended_in_place(model: bytes, files: dict) -> bytes:
    """What tflite-support's populator does: zipfile mode "a" on the model file."""
    bio = io.BytesIO(model)
    with zipfile.ZipFile(bio, "a", zipfile.ZIP_STORED) as zf:
        for name, raw in files.items():
            zf.writestr(name, raw)
    return bio.getvalue()


def test_tflite_metadata_is_decoded():
    model = tflite_weights.open(_model_with({"TFLITE_METADATA": _support()}))
    sm = model.tflite_metadata
    assert (sm.name, sm.description, sm.version, sm.author, sm.license,
            sm.min_parser_version) == ("classifier", "Finds cats", "v3", "someone",
                                       "Apache-2.0", "1.2.1")
    assert sm.associated_file_names == ("vocab.txt", "labels.txt")
    files = {f.name: f for f in sm.associated_files}
    assert files["vocab.txt"].type == "VOCABULARY" and files["vocab.txt"].scope == "model"
    assert files["labels.txt"].type == "TENSOR_AXIS_LABELS"
    assert files["labels.txt"].scope == "subgraph 0 output 'probability'"
    assert sm.subgraphs == ({"name": "main", "description": None, "inputs": ["image"],
                             "outputs": ["probability"]},)
    json.dumps(sm.to_dict())


@pytest.mark.parametrize("style", ["concatenated", "in_place", "with_comment"])
def test_associated_files_in_an_appended_zip(style):
    files = {"labels.txt": LABELS, "vocab.txt": VOCAB}
    base = _model_with({"TFLITE_METADATA": _support()})
    if style == "in_place":
        data = _appended_in_place(base, files)
    else:
        data = base + _zip(files, comment=b"packed" if style == "with_comment" else b"")
    model = tflite_weights.open(data)
    af = model.associated_files
    assert af.present
    assert dict(af) == {"labels.txt": len(LABELS), "vocab.txt": len(VOCAB)}
    assert af.read("labels.txt") == LABELS
    assert af.read("vocab.txt") == VOCAB
    assert af.offset == (0 if style == "in_place" else len(base))
    assert af.archive_start == len(base)
    with pytest.raises(KeyError, match="no associated file named 'x.txt'"):
        af.read("x.txt")
    # the model itself still reads: trailing bytes are not part of the flatbuffer
    assert model.tensors[0].name == "x"
    assert model.tflite_metadata.name == "classifier"
    d = model.describe()
    assert {f["name"] for f in d["associated_files"]} == set(files)
    json.dumps(d)


def test_no_zip_gives_an_empty_mapping():
    model = tflite_weights.open(_model_with({}, trailing=b"PK\x05\x06" + b"\0" * 14 + b"\xff\xff"))
    af = model.associated_files
    assert not af.present and len(af) == 0 and dict(af) == {}
    assert model.describe()["associated_files"] == []


def test_eocd_bytes_inside_a_weight_are_not_an_archive():
    fake_eocd = b"PK\x05\x06" + b"\0" * 18
    b = ModelBuilder()
    b.subgraph().tensor("w", "UINT8", [len(fake_eocd) * 4],
                        np.frombuffer(fake_eocd * 4, np.uint8))
    model = tflite_weights.open(b.finish())
    assert not model.associated_files.present


def test_damaged_zip_directory_raises():
    data = _model_with({}) + _zip({"labels.txt": LABELS})
    cd = data.rfind(b"PK\x01\x02")
    damaged = data[:cd] + b"XX" + data[cd + 2:]
    model = tflite_weights.open(damaged)
    with pytest.raises(InvalidModelError, match="associated files: the zip archive"):
        model.associated_files
    assert "error" in model.describe()["associated_files"]


def test_damaged_zip_member_raises_when_read():
    data = bytearray(_model_with({}) + _zip({"labels.txt": LABELS * 50}))
    local = data.rfind(b"PK\x03\x04")
    data[local + 40] ^= 0xFF  # inside the compressed bytes
    model = tflite_weights.open(bytes(data))
    af = model.associated_files
    assert list(af) == ["labels.txt"]
    with pytest.raises(InvalidModelError, match="associated files"):
        af.read("labels.txt")


def test_zip_directory_pointing_before_the_file_raises():
    z = bytearray(_zip({"a": b"1"}))
    eocd = z.rfind(b"PK\x05\x06")
    z[eocd + 16:eocd + 20] = (10**6).to_bytes(4, "little")  # central directory offset
    model = tflite_weights.open(_model_with({}) + bytes(z))
    with pytest.raises(InvalidModelError, match="does not fit before it"):
        model.associated_files


def test_tflite_metadata_with_wrong_identifier_raises_naming_the_entry():
    model = tflite_weights.open(_model_with({"TFLITE_METADATA": support_metadata_bytes(
        name="x", identifier=b"XXXX")}))
    with pytest.raises(InvalidModelError, match=r"metadata 'TFLITE_METADATA'.*b'M001'"):
        model.tflite_metadata


def test_describe_collects_every_part():
    data = _model_with({"min_runtime_version": b"2.1.0\0\0\0",
                        "CONVERSION_METADATA": conversion_metadata_bytes(modes=[1001]),
                        "TFLITE_METADATA": _support(),
                        "reduced_precision_support": b"fp16accfp32"},
                       trailing=_zip({"labels.txt": LABELS}))
    d = tflite_weights.open(data).describe()
    assert d["min_runtime_version"] == "2.1.0"
    assert d["conversion_metadata"]["options"]["model_optimization_modes"] == ["PTQ_FLOAT16"]
    assert d["tflite_metadata"]["name"] == "classifier"
    assert d["associated_files"] == [{"name": "labels.txt", "size": len(LABELS),
                                      "compressed_size": d["associated_files"][0]
                                      ["compressed_size"]}]
    names = {e["name"]: e for e in d["metadata"]}
    assert names["reduced_precision_support"]["text"] == "fp16accfp32"
    assert "text" not in names["CONVERSION_METADATA"]
    assert d["signatures"] == {}
    json.dumps(d)


def test_decoded_caches_do_not_keep_the_model_alive():
    import gc
    import weakref
    data = _model_with({"CONVERSION_METADATA": conversion_metadata_bytes(),
                        "TFLITE_METADATA": _support()}, trailing=_zip({"a.txt": b"a"}))
    model = tflite_weights.open(data)
    model.describe()
    list(model.weights())
    model.tensors[0].consumers
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


# -- damaged bytes: only the package's error, never another exception ----------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tflite_weights.errors import TFLiteWeightsError  # noqa: E402

_CM = conversion_metadata_bytes(modes=[1001, 3002], sparsity_block_sizes=[[1, 4]])
_SM = _support()


def _mutate(raw: bytes, flips) -> bytes:
    out = bytearray(raw)
    for pos, value in flips:
        out[pos % len(out)] = value
    return bytes(out)


_flips = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                  max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=_flips, cut=st.integers(0, len(_CM)))
def test_mutated_conversion_metadata_decodes_or_raises_the_package_error(flips, cut):
    raw = _mutate(_CM, flips)[:cut or None]
    model = tflite_weights.open(_model_with({"CONVERSION_METADATA": raw}))
    try:
        cm = model.conversion_metadata
    except InvalidModelError as e:
        assert "CONVERSION_METADATA" in str(e)
    else:
        assert cm is None or isinstance(cm.to_dict(), dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=_flips, cut=st.integers(0, len(_SM)))
def test_mutated_support_metadata_decodes_or_raises_the_package_error(flips, cut):
    raw = _mutate(_SM, flips)[:cut or None]
    model = tflite_weights.open(_model_with({"TFLITE_METADATA": raw}))
    try:
        sm = model.tflite_metadata
    except InvalidModelError as e:
        assert "TFLITE_METADATA" in str(e)
    else:
        assert sm is None or isinstance(sm.to_dict(), dict)


_ZIPPED = _model_with({}) + _zip({"labels.txt": LABELS, "vocab.txt": VOCAB[:300]})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1,
                      max_size=4))
def test_mutated_zip_tail_lists_and_reads_or_raises_the_package_error(flips):
    """Whatever the reader lists and reads from a damaged archive is what Python's own
    zipfile finds in the same bytes; a read that succeeds returns the file as packed
    (the member's CRC is checked), or the package's error is raised."""
    data = bytearray(_ZIPPED)
    for pos, value in flips:
        data[len(data) - 1 - pos] = value  # the archive's end: directory and last file
    model = tflite_weights.open(bytes(data))
    try:
        af = model.associated_files
        names = list(af)
    except TFLiteWeightsError:
        return
    try:
        ref = zipfile.ZipFile(io.BytesIO(bytes(data)))
        ref_names = list(dict.fromkeys(ref.namelist()))
    except Exception:
        ref = None
    if not af.present:
        # stricter than zipfile, on purpose: an end record counts only when it and its
        # comment end exactly at the end of the file (a stray signature in model bytes
        # is not an archive)
        eocd = bytes(data).rfind(b"PK\x05\x06")
        assert eocd < 0 or eocd + 22 + int.from_bytes(data[eocd + 20:eocd + 22], "little") \
            != len(data)
        return
    if ref is not None:
        assert names == ref_names
    packed = {"labels.txt": LABELS, "vocab.txt": VOCAB[:300]}
    for name in names:
        try:
            got = af.read(name)
        except TFLiteWeightsError:
            continue
        assert len(got) == af[name]
        if name in packed:
            assert got == packed[name]
        if ref is not None:
            assert got == ref.read(name)


def test_a_member_shorter_than_its_directory_entry_is_refused():
    """zipfile verifies a member's CRC only when it reaches the declared size, so a
    central directory that declares more than the member holds would pass unchecked."""
    data = bytearray(_ZIPPED)
    cd = data.rfind(b"PK\x01\x02")  # the last directory entry: vocab.txt
    assert data[cd + 46:cd + 46 + 9] == b"vocab.txt"
    size = int.from_bytes(data[cd + 24:cd + 28], "little")
    data[cd + 24:cd + 28] = (size + 1000).to_bytes(4, "little")  # uncompressed size
    model = tflite_weights.open(bytes(data))
    af = model.associated_files
    assert af["vocab.txt"] == size + 1000
    assert af.read("labels.txt") == LABELS
    with pytest.raises(InvalidModelError, match="declares 1300 bytes but holds 300"):
        af.read("vocab.txt")


def test_a_member_cannot_expand_past_its_bound():
    """A small archive member that claims (or decompresses to) far more than its
    compressed bytes is refused before anything that size is allocated; ``max_size``
    bounds any member."""
    data = bytearray(_ZIPPED)
    cd = data.rfind(b"PK\x01\x02")
    size = int.from_bytes(data[cd + 24:cd + 28], "little")
    data[cd + 24:cd + 28] = (size + (1 << 24)).to_bytes(4, "little")
    af = tflite_weights.open(bytes(data)).associated_files
    with pytest.raises(InvalidModelError, match=r"'vocab.txt' declares 16777516 bytes, more "
                       r"than the \d+ bytes a read may expand to"):
        af.read("vocab.txt")
    af = tflite_weights.open(_ZIPPED).associated_files
    assert af.read("vocab.txt", max_size=300) == VOCAB[:300]
    with pytest.raises(InvalidModelError, match="more than the 299 bytes"):
        af.read("vocab.txt", max_size=299)


def test_a_bzip2_bomb_is_refused_without_inflating_it():
    """1 GiB of zeros compresses to a few hundred bytes with bzip2; whatever size its
    directory entry declares, reading it allocates at most the bound."""
    import bz2
    import tracemalloc
    bomb = bz2.compress(bytes(64 << 20))  # 64 MiB of zeros: 70 compressed bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("small.txt", b"ok")
    raw = bytearray(buf.getvalue())
    # swap in the bomb's compressed stream, declaring a small size
    z = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    info = z.infolist()[0]
    start = info.header_offset + 30 + len(info.filename)
    raw = raw[:start] + bomb + raw[start + info.compress_size:]
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 20:cd + 24] = len(bomb).to_bytes(4, "little")  # compressed size
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 16:eocd + 20] = cd.to_bytes(4, "little")  # directory offset
    af = tflite_weights.open(_model_with({}) + bytes(raw)).associated_files
    tracemalloc.start()
    try:
        with pytest.raises(InvalidModelError, match="small.txt"):
            af.read("small.txt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
