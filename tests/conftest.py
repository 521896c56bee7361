import os
import sys
import tempfile

import jax
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# AppTest runs app.py inside this process, and app.py turns on JAX's persistent compilation cache for the rest of the
# process; the end-to-end tests' server (a child process) inherits this variable.  Both use a throwaway folder, not
# the repository's .jax_cache.
os.environ.setdefault("FLOWLAB_JAX_CACHE", tempfile.mkdtemp(prefix="flowlab_test_jax_cache_"))


@pytest.fixture
def x64():
    """Float64 for correctness tests, scoped to the test (the app itself never flips global config)."""
    with jax.enable_x64(True):
        yield
