"""Where the test data is: the committed fixtures and the shared corpus beside the repository."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")
FIXTURES = os.path.join(ROOT, "fixtures")
#: set to 1 (as CI does) to make an absent ../shared/corpus a failure instead of skips
REQUIRE_CORPUS = "TFLITE_WEIGHTS_REQUIRE_CORPUS"


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
