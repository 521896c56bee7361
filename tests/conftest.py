import os
import sys

import jax
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def x64():
    """Float64 for correctness tests, scoped to the test (the app itself never flips global config)."""
    with jax.enable_x64(True):
        yield
