"""Files that change under the reader, and paths that are not regular files.

A mapped file truncated while in use kills the process with SIGBUS when the lost
pages are read (shown here in a child process, so that it cannot take pytest down);
``open(path, mmap=False)`` reads the file once and never touches it again, and reads
external weight files a range at a time, so the same truncation is harmless or a
package error.  A pipe, a device or a directory is refused before it is opened.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tflite_weights as tw
from tflite_weights import verify
from tests.support.builders import ModelBuilder, S
from tests.support.paths import FIXTURES, ROOT

QAT = os.path.join(FIXTURES, "qat_conv.tflite")


def _big_model(path, n=16):
    """Weights spread over many pages, so truncating the file unmaps some of them."""
    b = ModelBuilder()
    sg = b.subgraph()
    for i in range(n):
        sg.tensor(f"w{i}", "FLOAT32", [256, 256], np.full((256, 256), i, np.float32))
    path.write_bytes(b.finish())


_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[3])
    import tflite_weights as tw
    m = tw.open(sys.argv[1], mmap=sys.argv[2] == "mmap")
    t = m.tensors[-1]
    os.truncate(sys.argv[1], 0)
    print(float(t.numpy().sum()))
""")


@pytest.mark.parametrize("mode", ["mmap", "copy"])
def test_truncating_the_file_while_it_is_read(tmp_path, mode):
    p = tmp_path / "big.tflite"
    _big_model(p)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(p), mode, ROOT],
                       capture_output=True, text=True)
    if mode == "mmap":
        # the hazard the default carries, documented on the robustness page
        assert r.returncode == -signal.SIGBUS, (r.returncode, r.stderr)
    else:
        assert r.returncode == 0, r.stderr
        assert float(r.stdout) == 15 * 256 * 256


def test_a_private_copy_reads_like_the_mapping(tmp_path):
    with tw.open(QAT) as mapped, tw.open(QAT, mmap=False) as copied:
        for a, b in zip(mapped.all_tensors(), copied.all_tensors()):
            assert (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
            if a.has_data:
                assert a.numpy().tobytes() == b.numpy().tobytes()
                assert a.data_offset == b.data_offset
    p = tmp_path / "m.tflite"
    shutil.copy(QAT, p)
    m = tw.open(p, mmap=False)
    w = next(t for t in m.tensors if t.has_data and t.size > 100)
    expected = w.dequantize().copy()
    os.truncate(p, 0)
    np.testing.assert_array_equal(w.dequantize(), expected)
    assert verify.errors_of(verify.verify(m)) == []


def _external_model(tmp_path):
    b = ModelBuilder()
    sg = b.subgraph()
    w = np.arange(1024, dtype=np.float32)
    (tmp_path / "weights.bin").write_bytes(w.tobytes())
    g = S.ExternalBufferGroupT()
    g.name = "weights.bin"
    e = S.ExternalBufferT()
    e.id, e.group, e.offset, e.length, e.packing = 1 << 31 | 1, 0, 0, w.nbytes, "unpacked"
    b.m.externalBufferGroups, b.m.externalBuffers = [g], [e]
    sg.tensor("w", "FLOAT32", [1024], external_buffer=e.id, buffer=0)
    p = tmp_path / "ext.tflite"
    p.write_bytes(b.finish())
    return p, w


def test_an_external_file_truncated_under_a_private_model_gives_the_package_error(tmp_path):
    p, w = _external_model(tmp_path)
    with tw.open(p, mmap=False) as m:
        np.testing.assert_array_equal(m["w"].numpy(), w)
        os.truncate(tmp_path / "weights.bin", 16)
        with pytest.raises(tw.ExternalDataError):
            m["w"].numpy()


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_path_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, kind):
    if kind == "fifo":
        p = tmp_path / "pipe"
        os.mkfifo(p)  # no writer: opening it for reading would wait forever
        what = r"a pipe \(FIFO\)"
    elif kind == "directory":
        p, what = tmp_path, "a directory"
    else:
        p, what = "/dev/null", "a character device"
    for read in (tw.open, verify.verify, lambda x: tw.open(x, mmap=False)):
        with pytest.raises(tw.InvalidModelError, match=f"is {what}, not a regular file"):
            read(p)
