"""Seed sweep behind FlowLab's presets: many steps-based training runs side by side, one single-threaded process per
CPU core, each printing one JSON line with its KL(p‖q) trajectory.

Each run trains ``build_trainer(density, seed=seed, **presets.tuned(density, method).settings() | overrides)`` for ``steps``
optimiser steps with the cosine decay ending at ``steps`` (what ``Trainer.train(budget_s, fit_schedule=True)`` does
within a time budget), and measures KL(p‖q) = mean(log p − log q) on 50 000 fresh samples at each check step and
at the end.  Steps rather than seconds make runs on a many-core machine comparable with each other; the 60 s quality
bar itself is benchmarks/quality.py.

    python benchmarks/seed_sweep.py --densities moons sine --methods relative self_normalizing \\
        --seeds 0-7 --steps 30000 --checks 1500,3000,6000,12000 --set lr=1e-2 --out sweep.jsonl

Recorded sweeps: assets/benchmarks/seed_sweep_*.jsonl (see assets/benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Empty, Queue

ROOT = Path(__file__).resolve().parents[1]
SINGLE_THREAD = {"JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1",
                 "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def run_one(cfg: dict) -> dict:
    """Train one configuration in this process and return it with its trajectory."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from flowlab import presets
    from flowlab.densities import get_density
    from flowlab.train import build_trainer

    settings = {**presets.defaults(cfg["density"], cfg["method"]), **cfg.get("over", {})}
    settings["decay"] = cfg["steps"]
    t0 = time.time()
    stops = sorted(set(cfg.get("checks", [])) | {cfg["steps"]})
    chunk = min(500, math.gcd(*stops))  # chunks end exactly on every check
    trainer = build_trainer(cfg["density"], seed=cfg["seed"], chunk=chunk, **settings)
    d = get_density(cfg["density"])
    x = d.sample(50_000, seed=777_777).astype(np.float32)
    lp = np.asarray(d.log_prob(x), np.float64)
    traj = []
    for stop in stops:
        trainer.train(steps=stop)
        lq = np.asarray(trainer.log_prob(x), np.float64)
        traj.append([trainer.step, round(float(np.mean(lp - lq)), 4)])
        if trainer.stopped:
            break
    return {**cfg, "traj": traj, "kl": traj[-1][1], "divergences": len(trainer.divergences),
            "seconds": round(time.time() - t0, 1)}


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--densities", nargs="+", default=["trimodal", "moons", "sine"])
    ap.add_argument("--methods", nargs="+", default=["relative", "self_normalizing"])
    ap.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 0,2,4")
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--checks", default="", help="comma-separated steps at which to measure KL on the way")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. lr=1e-2 batch=256")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--out", required=True, help="JSON lines are appended here")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one JSON config in this process
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(json.loads(a.one))), flush=True)
        return 0
    over = dict((k, _value(v)) for k, v in (s.split("=", 1) for s in a.set))
    checks = [int(c) for c in a.checks.split(",") if c]
    cfgs = [dict(density=d, method=m, seed=s, steps=a.steps, checks=checks, over=over)
            for d in a.densities for m in a.methods for s in _seeds(a.seeds)]
    queue: Queue = Queue()
    for c in cfgs:
        queue.put(c)
    print(f"{len(cfgs)} runs on {a.workers} single-threaded workers -> {a.out}", flush=True)

    def worker(core: int):
        env = {**os.environ, **SINGLE_THREAD}
        pin = ["taskset", "-c", str(core)] if hasattr(os, "sched_getaffinity") else []
        while True:
            try:
                c = queue.get_nowait()
            except Empty:
                return
            r = subprocess.run(pin + [sys.executable, __file__, "--out", a.out, "--one", json.dumps(c)], env=env,
                               capture_output=True, text=True)
            lines = r.stdout.strip().splitlines()
            line = lines[-1] if lines else json.dumps({**c, "error": r.stderr[-300:]})
            with open(a.out, "a") as fh:
                fh.write(line + "\n")
            print(line, flush=True)

    with ThreadPoolExecutor(a.workers) as ex:
        list(ex.map(worker, range(a.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
