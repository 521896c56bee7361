"""Lesson 3 — why the log-determinant is expensive (Gresele §2.3, Zhao §3.1, 3.4–3.5): log|det W| and W⁻¹ cost
O(D³), a matrix–vector product O(D²), a triangular log-det O(D); any dense W with non-zero leading minors is a
product LU of two triangular maps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..metrics import loglog_slope
from ..system import THREAD_VARS
from .cost_probe import TIMED_OPS, measure

OP_LABELS = {"slogdet": "log|det W| (LU)", "inverse": "W⁻¹ (inverse)", "matvec": "W·v (matrix × vector)",
             "triangular_logdet": "log|det T|, T triangular (Σ log|Tᵢᵢ|)"}
OP_ORDER = {"slogdet": 3, "inverse": 3, "matvec": 2, "triangular_logdet": 1}  # asymptotic exponent of D
MAX_DIM = 4096
CHILD_TIMEOUT_S = 300
_PROBE = Path(__file__).with_name("cost_probe.py")
_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the flowlab package


def _measure_in_child(dims, repeats: int, seed: int, min_total: float):
    """``measure`` in a child interpreter with one BLAS thread; None when no child could run it."""
    env = {**os.environ, **{k: "1" for k in THREAD_VARS},
           "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    args = json.dumps([list(dims), int(repeats), int(seed), float(min_total)])
    try:
        out = subprocess.run([sys.executable, "-P", str(_PROBE), args], env=env, capture_output=True, text=True,
                             timeout=CHILD_TIMEOUT_S)
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def time_linear_algebra(dims=(32, 64, 128, 256, 512), repeats: int = 3, seed: int = 0, min_total: float = 2e-3,
                        single_thread: bool = True) -> dict:
    """Measured seconds per call (numpy, float64, this machine) of log|det W|, W⁻¹, W·v and a triangular log-det for
    each D, plus log-log slopes fitted over the larger half of the sizes.

    With ``single_thread`` the measurement runs in a child Python with the BLAS thread count set to 1: on a busy
    machine multi-threaded BLAS can stall for milliseconds waiting for cores, which hides the D³-vs-D² story.  When
    no child can start, it measures here with the BLAS threads as they are (``single_thread`` False in the result)."""
    dims = [int(d) for d in dims]
    if not dims or min(dims) < 2 or max(dims) > MAX_DIM:
        raise ValueError(f"Dimensions must lie between 2 and {MAX_DIM}.")
    times = _measure_in_child(dims, repeats, seed, min_total) if single_thread else None
    if times is None:
        single_thread = False
        times = measure(dims, repeats, seed, min_total)
    times = {op: np.asarray(t) for op, t in times.items()}
    half = max(2, (len(dims) + 1) // 2) if len(dims) > 1 else 0
    return {"dims": np.asarray(dims), "times": times, "single_thread": bool(single_thread),
            "slopes": {op: loglog_slope(dims[-half:], t[-half:]) if half else float("nan")
                       for op, t in times.items()}}


def lu_nopivot(A):
    """A = L U with L unit lower- and U upper-triangular (Doolittle, no pivoting): the product of two triangular
    linear flows.  log|det A| = Σ log|Uᵢᵢ|.  Raises if a leading minor vanishes (then a permutation is needed)."""
    A = np.asarray(A, np.float64)
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError("A must be square.")
    L, U = np.eye(n), A.copy()
    for k in range(n - 1):
        if abs(U[k, k]) < 1e-12 * max(1.0, np.abs(A).max()):
            raise ValueError("A leading minor is zero: this matrix needs a permutation before its LU factorisation.")
        L[k + 1:, k] = U[k + 1:, k] / U[k, k]
        U[k + 1:] -= np.outer(L[k + 1:, k], U[k])
    return L, np.triu(U)


def lu_check(W) -> dict:
    """The lesson's check of the triangular factorisation on W: ‖LU − W‖_F (rounding only), and the log-det from
    the factors, Σ log|Uᵢᵢ| (L has a unit diagonal), next to slogdet's."""
    W = np.asarray(W, np.float64)
    L, U = lu_nopivot(W)
    return {"L": L, "U": U, "lu_error": float(np.linalg.norm(L @ U - W)),
            "logdet_lu": float(np.sum(np.log(np.abs(np.diag(U))))), "logdet": float(np.linalg.slogdet(W)[1])}


def triangular_dependence(T) -> np.ndarray:
    """Boolean (D, D) matrix: output i depends on input j (for a linear map z = T x that is T_ij ≠ 0).  For a lower
    triangular T output 1 sees input 1 only — the expressivity price of a cheap determinant."""
    return np.abs(np.asarray(T, np.float64)) > 0
