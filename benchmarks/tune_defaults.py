"""The sweep behind FlowLab's tuned defaults (flowlab.presets): train each candidate setting for a fixed number of
steps and print one JSON line with the KL(p‖q) reached (last chunk, best chunk, mean of the last five chunks),
the wall time, divergences and, for self-normalizing flows, the final ‖RW − I‖.

Steps rather than seconds make the sweep comparable on a busy machine; benchmarks/quality.py then checks the
chosen settings against the 60 s budget.

    python benchmarks/tune_defaults.py moons relative \
        '[{"layers": 50, "batch_size": 1024, "lr": 2e-2, "warmup": 500, "decay_steps": 16000, "steps": 16000}]'
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from flowlab.train import build_trainer  # noqa: E402


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__)
        return 2
    density, method, configs = argv[0], argv[1], json.loads(argv[2])
    for c in configs:
        c = dict(c)
        steps = int(c.pop("steps"))
        t = build_trainer(density, method=method, chunk_steps=500, **c)
        t0 = time.time()
        t.train(steps=steps)
        kl = t.evals["kl"]
        inv = t.evals.get("inv_err")
        print(json.dumps({"density": density, "method": method, **c, "steps": t.step,
                          "time": round(time.time() - t0, 1), "kl_last": round(kl[-1], 4), "kl_min": round(min(kl), 4),
                          "kl_mean_last5": round(float(np.mean(kl[-5:])), 4), "div": len(t.divergences),
                          "inv_err": round(float(inv[-1]), 4) if inv else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
