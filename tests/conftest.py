import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # tests/builders.py

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")
FIXTURES = os.path.join(ROOT, "fixtures")


def corpus_files():
    """Every model file of ../shared/corpus (empty when the folder is absent)."""
    if not os.path.isdir(CORPUS):
        return []
    return sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS)
                  if f.endswith((".tflite", ".bin")))


def corpus_path(name):
    p = os.path.join(CORPUS, name)
    if not os.path.exists(p):
        pytest.skip(f"{p} is absent")
    return p


@pytest.fixture
def corpus():
    if not os.path.isdir(CORPUS):
        pytest.skip("../shared/corpus is absent")
    return CORPUS
