"""Lesson 3 (flowlab.lessons.cost): the timing's structure (no timed assertions), its child interpreter that imports
only numpy and flowlab.timing, the log-log slope, and the LU factorisation into two triangular maps."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowlab import lessons as L
from flowlab.lessons import cost, cost_probe
from flowlab.metrics import loglog_slope


@pytest.mark.parametrize("single_thread", [True, False])
def test_timing_structure(single_thread):
    r = L.time_linear_algebra(dims=(8, 16, 32), repeats=1, min_total=1e-4, single_thread=single_thread)
    assert list(r["dims"]) == [8, 16, 32] and r["single_thread"] == single_thread
    for op in L.TIMED_OPS:
        assert r["times"][op].shape == (3,) and np.all(r["times"][op] > 0)
        assert np.isfinite(r["slopes"][op])
    with pytest.raises(ValueError):
        L.time_linear_algebra(dims=(1,))


def test_timing_falls_back_in_process_when_no_child_can_start(monkeypatch):
    def boom(*a, **k):
        raise OSError("no interpreter")

    monkeypatch.setattr(subprocess, "run", boom)
    r = L.time_linear_algebra(dims=(8, 16), repeats=1, min_total=1e-4)
    assert r["single_thread"] is False and np.all(r["times"]["slogdet"] > 0)


def test_the_child_imports_flowlab_timing_and_nothing_heavy():
    """The probe, run as the child runs it, answers JSON and loads neither JAX nor the lessons package."""
    root = Path(cost.__file__).resolve().parents[2]  # the folder holding the flowlab package
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = ("import runpy, sys; sys.argv = ['cost_probe', '[[4], 1, 0, 1e-05]']; "
            f"runpy.run_path({cost_probe.__file__!r}, run_name='__main__'); "
            "assert 'flowlab.timing' in sys.modules, 'the probe times with flowlab.timing'; "
            "heavy = [m for m in ('jax', 'flowlab.lessons', 'flowlab.metrics') if m in sys.modules]; "
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, check=True)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(times) == set(L.TIMED_OPS) and all(len(v) == 1 for v in times.values())


def test_loglog_slope_recovers_power():
    d = np.array([16, 32, 64, 128])
    assert np.isclose(L.loglog_slope(d, 3e-9 * d**3), 3.0)
    assert np.isclose(L.loglog_slope(d, 5e-7 * d**2), 2.0)
    assert L.loglog_slope is loglog_slope  # the one definition, in flowlab.metrics


def test_lu_gives_two_triangular_factors_and_the_logdet():
    A = L.random_matrix(6, seed=2)
    Lo, U = L.lu_nopivot(A)
    assert np.allclose(Lo @ U, A)
    assert np.allclose(Lo, np.tril(Lo)) and np.allclose(U, np.triu(U)) and np.allclose(np.diag(Lo), 1)
    assert np.isclose(np.sum(np.log(np.abs(np.diag(U)))), np.linalg.slogdet(A)[1])
    dep = L.triangular_dependence(np.tril(A))
    assert dep[0].sum() == 1 and dep[-1].sum() == 6  # first output sees one input, the last sees all
    with pytest.raises(ValueError, match="permutation"):
        L.lu_nopivot([[0.0, 1.0], [1.0, 0.0]])


def test_lu_check_is_the_lessons_caption():
    """The numbers lesson 3 prints for its random 5×5 W: ‖LU − W‖ at rounding level, Σ log|Uᵢᵢ| = slogdet."""
    W = L.random_matrix(5, seed=1)
    c = L.lu_check(W)
    assert c["lu_error"] < 1e-12
    assert c["logdet_lu"] == pytest.approx(c["logdet"], abs=1e-12)
    assert c["logdet"] == pytest.approx(L.logabsdet(W), abs=1e-15)
    np.testing.assert_allclose(c["L"] @ c["U"], W, atol=1e-12)
