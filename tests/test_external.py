"""External buffers: values in files beside the model, matched by id, mapped once,
checked, confined to the model's folder and released by close()."""

import os

import numpy as np
import pytest

import tflite_weights as tw
from tests.support.builders import ModelBuilder, S
from tflite_weights.numerics.values import pack_bits

ID0 = (1 << 31) | 0  # the converter's ids: (1 << 31) | n
ID1 = (1 << 31) | 1


def external_model(entries, groups=("weights.bin",), tensors=None):
    """``entries``: [(id, group, offset, length, packing)]; ``tensors``: [(name, type,
    shape, external id, quant)]."""
    b = ModelBuilder()
    sg = b.subgraph()
    for name, tname, shape, ext, quant in tensors or []:
        sg.tensor(name, tname, shape, external_buffer=ext, buffer=0, quant=quant)
    gs = []
    for g in groups:
        t = S.ExternalBufferGroupT()
        t.name = g
        gs.append(t)
    es = []
    for i, grp, off, length, packing in entries:
        e = S.ExternalBufferT()
        e.id, e.group, e.offset, e.length, e.packing = i, grp, off, length, packing
        es.append(e)
    b.m.externalBufferGroups = gs
    b.m.externalBuffers = es
    return b.finish()


@pytest.fixture
def two_weights(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    q = (np.arange(10) % 16 - 8).astype(np.int8)
    blob = b"HEADER--" + a.tobytes() + pack_bits(q, 4)
    (tmp_path / "weights.bin").write_bytes(blob)
    # listed in the opposite order of their ids: matched by id, not position
    data = external_model(
        [(ID1, 0, 8 + 48, 5, "unpacked"), (ID0, 0, 8, 48, "unpacked")],
        tensors=[("a", "FLOAT32", [3, 4], ID0, None),
                 ("q", "INT4", [2, 5], ID1, dict(scale=[0.5], zero_point=[0]))])
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    return path, a, q.reshape(2, 5)


def test_values_come_from_the_group_file(two_weights):
    path, a, q = two_weights
    with tw.open(path) as m:
        ta, tq = m["a"], m["q"]
        assert ta.external_buffer == ID0 and tq.external_buffer == ID1
        assert ta.buffer == 0
        np.testing.assert_array_equal(ta.numpy(), a)
        np.testing.assert_array_equal(tq.numpy(), q)
        np.testing.assert_array_equal(tq.dequantize(), q * np.float32(0.5))
        assert ta.has_data and ta.data_offset == 8 and ta.nbytes == 48
        assert tq.raw().size == 5


def test_model_lists_groups_and_buffers(two_weights):
    path, _, _ = two_weights
    with tw.open(path) as m:
        (g,) = m.external_buffer_groups
        assert (g.index, g.name) == (0, "weights.bin")
        e1, e0 = m.external_buffers
        assert (e0.index, e0.id, e0.group, e0.offset, e0.length, e0.packing) == \
            (1, ID0, 0, 8, 48, "unpacked")
        assert (e1.id, e1.offset, e1.length) == (ID1, 56, 5)


def test_values_are_views_over_one_mapping_per_file(two_weights):
    path, a, _ = two_weights
    with tw.open(path) as m:
        x, y = m["a"].numpy(), m["a"].numpy()
        assert not x.flags.owndata and not x.flags.writeable
        assert np.shares_memory(x, y)  # the same mapped bytes, not copies
        m["q"].numpy()
        files = m._state.external_files
        assert list(files) == [os.path.realpath(path.parent / "weights.bin")]


def test_close_releases_the_mapping_and_old_arrays_stay_valid(two_weights):
    path, a, _ = two_weights
    m = tw.open(path)
    m["q"].numpy()  # unpacked: a copy, so no view keeps the mapping
    (f,) = m._state.external_files.values()
    m.close()
    assert not f.mapped
    m2 = tw.open(path)
    kept = m2["a"].numpy()
    m2.close()  # a live view: the mapping closes when it goes
    np.testing.assert_array_equal(kept, a)
    with pytest.raises(tw.ClosedModelError):
        m2["a"].numpy()


def test_external_data_dir_for_a_model_opened_from_bytes(two_weights, tmp_path):
    path, a, _ = two_weights
    data = path.read_bytes()
    with tw.open(data, external_data_dir=tmp_path) as m:
        np.testing.assert_array_equal(m["a"].numpy(), a)
    with tw.open(data) as m:
        with pytest.raises(tw.ExternalDataError, match="opened from bytes.*external_data_dir"):
            m["a"].numpy()


def test_external_data_dir_overrides_the_model_folder(two_weights, tmp_path):
    path, a, _ = two_weights
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "weights.bin").write_bytes(b"\0" * 8 + (a * 2).tobytes() + b"\0" * 5)
    with tw.open(path, external_data_dir=other) as m:
        np.testing.assert_array_equal(m["a"].numpy(), a * 2)


def write(tmp_path, entries, groups=("weights.bin",), tensors=None, blob=b"\0" * 64):
    (tmp_path / "weights.bin").write_bytes(blob)
    p = tmp_path / "m.tflite"
    p.write_bytes(external_model(
        entries, groups, tensors or [("t", "FLOAT32", [4], ID0, None)]))
    return p


@pytest.mark.parametrize("entries,groups,match", [
    ([(ID1, 0, 0, 16, "")], ("weights.bin",), "id 2147483648, which Model.external_buffers "
                                              "does not list"),
    ([(ID0, 0, 0, 16, ""), (ID0, 0, 16, 16, "")], ("weights.bin",), "listed 2 times"),
    ([(ID0, 3, 0, 16, "")], ("weights.bin",), "only 1 external buffer groups"),
    ([(ID0, 0, 60, 16, "")], ("weights.bin",), r"bytes 60\.\.76 lie beyond the end"),
    ([(ID0, 0, 1 << 63, 16, "")], ("weights.bin",), "beyond the end"),
    ([(ID0, 0, 0, 16, "")], ("missing.bin",), "does not exist"),
    ([(ID0, 0, 0, 16, "")], ("../weights.bin",), r"has a '\.\.' component"),
    ([(ID0, 0, 0, 16, "")], ("sub/../../weights.bin",), r"'\.\.' component"),
    ([(ID0, 0, 0, 16, "")], ("/etc/passwd",), "is absolute"),
    ([(ID0, 0, 0, 16, "")], ("",), "empty file name"),
    ([(ID0, 0, 0, 16, "")], (".",), "outside"),
])
def test_bad_external_references_raise_external_data_error(tmp_path, entries, groups, match):
    p = write(tmp_path, entries, groups)
    with tw.open(p) as m:
        with pytest.raises(tw.ExternalDataError, match=match):
            m["t"].numpy()


def test_buffer_shorter_than_the_tensor(tmp_path):
    p = write(tmp_path, [(ID0, 0, 0, 8, "")])
    with tw.open(p) as m:
        with pytest.raises(tw.InvalidModelError, match="needs 16 bytes"):
            m["t"].numpy()


def test_symlink_leaving_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\1" * 64)
    inner = tmp_path / "model"
    inner.mkdir()
    os.symlink(outside / "secret.bin", inner / "weights.bin")
    p = inner / "m.tflite"
    p.write_bytes(external_model([(ID0, 0, 0, 16, "")],
                                 tensors=[("t", "FLOAT32", [4], ID0, None)]))
    with tw.open(p) as m:
        with pytest.raises(tw.ExternalDataError, match="outside"):
            m["t"].numpy()


def test_symlink_inside_the_folder_and_subfolders_are_followed(tmp_path):
    (tmp_path / "shards").mkdir()
    vals = np.arange(4, dtype=np.float32)
    (tmp_path / "shards" / "real.bin").write_bytes(vals.tobytes())
    os.symlink(tmp_path / "shards" / "real.bin", tmp_path / "link.bin")
    p = tmp_path / "m.tflite"
    p.write_bytes(external_model(
        [(ID0, 0, 0, 16, ""), (ID1, 1, 0, 16, "")], groups=("link.bin", "shards/./real.bin"),
        tensors=[("a", "FLOAT32", [4], ID0, None), ("b", "FLOAT32", [4], ID1, None)]))
    with tw.open(p) as m:
        np.testing.assert_array_equal(m["a"].numpy(), vals)
        np.testing.assert_array_equal(m["b"].numpy(), vals)
        assert len(m._state.external_files) == 1  # both names resolve to one file


def test_a_model_without_external_buffers():
    b = ModelBuilder()
    b.subgraph().tensor("t", "FLOAT32", [1], np.ones(1, np.float32))
    with tw.open(b.finish()) as m:
        assert m.external_buffer_groups == () and m.external_buffers == ()
        assert m["t"].external_buffer == 0


def test_empty_weight_file(tmp_path):
    p = write(tmp_path, [(ID0, 0, 0, 16, "")], blob=b"")
    with tw.open(p) as m:
        with pytest.raises(tw.ExternalDataError, match=r"\(0 bytes\)"):
            m["t"].numpy()


def test_packing_is_reported_and_the_bytes_are_read_as_they_are(tmp_path):
    """``packing`` is the writer's word: whatever it says, the slice of the file is the
    tensor's bytes, unchanged, and the word is reported."""
    values = np.arange(6, dtype=np.int16) - 3
    (tmp_path / "weights.bin").write_bytes(b"pad." + values.tobytes())
    for packing in ("unpacked", "zstd", ""):
        data = external_model([(ID0, 0, 4, values.nbytes, packing)],
                              tensors=[("t", "INT16", [2, 3], ID0, None)])
        path = tmp_path / "model.tflite"
        path.write_bytes(data)
        with tw.open(path) as m:
            (e,) = m.external_buffers
            assert e.packing == packing
            np.testing.assert_array_equal(m["t"].numpy(), values.reshape(2, 3))
