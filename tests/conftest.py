import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # tests/builders.py

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus")
FIXTURES = os.path.join(ROOT, "fixtures")
#: set to 1 (as CI does) to make an absent ../shared/corpus a failure instead of skips
REQUIRE_CORPUS = "TFLITE_WEIGHTS_REQUIRE_CORPUS"


def pytest_configure(config):
    if os.environ.get(REQUIRE_CORPUS, "") not in ("", "0") and not corpus_files():
        pytest.exit(f"{REQUIRE_CORPUS} is set but {CORPUS} holds no models: the tests that "
                    f"read the real corpus would all be skipped", returncode=3)


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
