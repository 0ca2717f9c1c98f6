import os

import pytest

from tests.support.paths import CORPUS, REQUIRE_CORPUS, corpus_files


def pytest_configure(config):
    if os.environ.get(REQUIRE_CORPUS, "") not in ("", "0") and not corpus_files():
        pytest.exit(f"{REQUIRE_CORPUS} is set but {CORPUS} holds no models: the tests that "
                    f"read the real corpus would all be skipped", returncode=3)


@pytest.fixture
def corpus():
    if not os.path.isdir(CORPUS):
        pytest.skip("../shared/corpus is absent")
    return CORPUS
