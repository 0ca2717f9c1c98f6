"""The schema tables against the schema's own generated Python bindings.

Every slot number, scalar width, enum value and union member of our
transcription is compared with ai-edge-litert's ``schema_py_generated``
(the newest generated code we can install) and, where it has them, with the
``tflite`` package's bindings.
"""

import inspect
import re

import pytest

from tflite_weights.format import schema as _schema

gen = pytest.importorskip("ai_edge_litert.schema_py_generated")

# flatbuffers builder call -> our scalar kind ("off" = an offset: table, vector, string)
_PREPEND = {
    "Bool": "bool", "Int8": "i8", "Uint8": "u8", "Int16": "i16", "Uint16": "u16",
    "Int32": "i32", "Uint32": "u32", "Int64": "i64", "Uint64": "u64",
    "Float32": "f32", "Float64": "f64", "UOffsetTRelative": "off",
}


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _generated_fields(table):
    """{slot: (kind, default)} from the generated ``<Table>Add<Field>`` functions."""
    out = {}
    for fname, fn in vars(gen).items():
        if not (fname.startswith(table + "Add") and callable(fn)):
            continue
        src = inspect.getsource(fn)
        m = re.search(r"builder\.Prepend(\w+)Slot\((\d+),.*,\s*([-\w.]+)\)\s*$", src, re.M)
        if m:
            d = m.group(3)
            d = {"True": 1.0, "False": 0.0}.get(d, None if d == "None" else float(d))
            out[fname[len(table) + 3:]] = (int(m.group(2)), _PREPEND[m.group(1)], d)
    return out


def _our_tables():
    # conversion metadata tables live in another schema file; the generated module lacks them
    return [t for t in _schema.TABLES.values()
            if t.name not in ("Environment", "SparsityBlockSize", "ConversionOptions",
                              "ConversionMetadata")]


@pytest.mark.parametrize("table", _our_tables(), ids=lambda t: t.name)
def test_table_slots_match_generated_code(table):
    generated = _generated_fields(table.name)
    if not table.fields:
        assert generated == {}
        assert hasattr(gen, table.name), f"generated code has no table {table.name}"
        return
    ours = {}
    for f in table.fields:
        if f.kind == "union":
            ours[_camel(f.name) + "Type"] = (f.slot - 1, "u8", 0.0)
            ours[_camel(f.name)] = (f.slot, "off", 0.0)
        elif f.kind == "scalar":
            ours[_camel(f.name)] = (f.slot, f.elem, float(f.default))
        else:
            ours[_camel(f.name)] = (f.slot, "off", 0.0)
    for name in _DEPRECATED.get(table.name, ()):  # no adder is generated for these
        assert name not in generated
        ours.pop(name)
    assert ours == generated


# fields marked (deprecated) in the schema: they keep their slots, but have no builder
_DEPRECATED = {"ResizeBilinearOptions": ("NewHeight", "NewWidth"),
               "SignatureDef": ("DeprecatedTag",)}


@pytest.mark.parametrize("enum", ["TensorType", "BuiltinOperator", "DimensionType", "Padding",
                                  "ActivationFunctionType", "LSHProjectionType",
                                  "FullyConnectedOptionsWeightsFormat", "LSTMKernelType",
                                  "CombinerType", "MirrorPadMode", "CustomOptionsFormat",
                                  "StablehloPrecisionConfig", "StablehloComparisonDirection",
                                  "StablehloComparisonType", "RngAlgorithm",
                                  "ReduceWindowFunction"])
def test_enum_values_match_generated_code(enum):
    cls = getattr(gen, enum)
    theirs = {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}
    assert _schema.ENUMS[enum] == theirs


@pytest.mark.parametrize("union", sorted(_schema.UNIONS))
def test_union_members_match_generated_code(union):
    cls = getattr(gen, union)
    theirs = {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}
    ours = {i + 1: n for i, n in enumerate(_schema.UNIONS[union])}
    ours[0] = "NONE"
    assert ours == theirs


def test_tensor_types_cover_the_23_codes_of_the_newest_schema():
    assert len(_schema.TENSOR_TYPES) == 23
    assert _schema.TENSOR_TYPES[19:] == ["INT2", "UINT4", "FLOAT8_E4M3FN", "FLOAT8_E5M2"]


def test_older_tflite_bindings_agree_where_they_overlap():
    pytest.importorskip("tflite")
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.TensorType import TensorType
    for cls, names, least in ((TensorType, _schema.TENSOR_TYPES, 19),
                              (BuiltinOperator, _schema.BUILTIN_OPERATORS, 209)):
        theirs = {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}
        # the tflite 2.18 bindings stop at BFLOAT16 (18) and STABLEHLO_CBRT (208): every
        # one of their codes must name the same thing here, and we must know more
        assert len(theirs) >= least - 1 and len(names) >= least
        for code, name in theirs.items():
            assert names[code] == name, (cls.__name__, code)
