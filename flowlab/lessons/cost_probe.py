"""The measurement of lesson 3, also run as a script in a child interpreter with one BLAS thread:

    python -P cost_probe.py '[dims, repeats, seed, min_sample_s]'   ->   {"op": [seconds per call, ...], ...}

It imports only numpy and ``flowlab.timing`` (standard library), so the child starts in a fraction of a second;
the parent passes PYTHONPATH so ``flowlab`` is importable, and ``-P`` keeps this folder off the child's sys.path."""
from __future__ import annotations

import json
import math
import sys

import numpy as np

from flowlab.timing import best_time

TIMED_OPS = ("slogdet", "inverse", "matvec", "triangular_logdet")


def measure(dims, repeats: int, seed: int, min_sample_s: float) -> dict[str, list[float]]:
    """Fastest seconds per call (numpy, float64) of each op of ``TIMED_OPS`` for each D, on a well-conditioned
    W = I + G/√D, its lower triangle T and a vector v."""
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {op: [] for op in TIMED_OPS}
    for d in dims:
        W = np.eye(d) + rng.standard_normal((d, d)) / math.sqrt(d)
        T = np.tril(W)
        v = rng.standard_normal(d)
        calls = {"slogdet": lambda: np.linalg.slogdet(W), "inverse": lambda: np.linalg.inv(W),
                 "matvec": lambda: W @ v, "triangular_logdet": lambda: np.sum(np.log(np.abs(np.diagonal(T))))}
        for op in TIMED_OPS:
            times[op].append(best_time(calls[op], repeats=int(repeats), min_sample_s=float(min_sample_s)))
    return times


if __name__ == "__main__":
    print(json.dumps(measure(*json.loads(sys.argv[1]))))
