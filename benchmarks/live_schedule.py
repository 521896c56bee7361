"""Open-ended training, as the Playground does it: the preset's own schedule (no fitting to a budget), KL(p‖q) on
20 000 fresh points at fixed step marks, and how steady the held-out KL stays over the second half of the run (a
schedule that looks right at 30 s but spikes later is no good for a live page).  Two runs at a time, one per core.

    python benchmarks/live_schedule.py --density moons --method relative --set b2=0.999 decay=25000 --seeds 0 1 \\
        --out assets/benchmarks/live_schedule_cpu.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STOPS = (10_000, 20_000, 25_000, 30_000, 45_000, 60_000)
SHAPED = 10_000  # after this many steps a good run shows the density's shape: a KL spike later is what a class sees


def run_one(density: str, method: str, over: dict, seed: int, stops=STOPS) -> dict:
    """One open-ended run in this process (the child of ``main``)."""
    import numpy as np  # noqa: PLC0415  (the parent process never imports JAX)

    from flowlab import presets  # noqa: PLC0415
    from flowlab.densities import get_density  # noqa: PLC0415
    from flowlab.train import build_trainer  # noqa: PLC0415

    s = {**presets.tuned(density, method).settings(), **over}
    t = build_trainer(density, seed=seed, headless=True, **s)
    d = get_density(density)
    x = d.sample(20_000, seed=777).astype(np.float32)
    lp = np.asarray(d.log_prob(x), np.float64)
    traj = []
    for stop in stops:
        t.train(steps=stop)
        traj.append([t.step, round(float(np.mean(lp - np.asarray(t.log_prob(x), np.float64))), 4)])
        if t.stopped:
            break
    kl = np.asarray(t.evals["kl"], np.float64)
    late = kl[len(kl) // 2:]
    shaped = kl[np.asarray(t.evals["step"]) >= SHAPED]
    return {"density": density, "method": method, "over": over, "seed": seed, "settings": s, "traj": traj,
            "late_kl_median": round(float(np.median(late)), 4), "late_kl_max": round(float(np.max(late)), 4),
            "kl_max_after_shaped": round(float(np.max(shaped)), 4) if len(shaped) else None,
            "divergences": len(t.divergences)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", required=True)
    ap.add_argument("--method", default="relative")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="changes to the tuned preset")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--out", default=None, help="append one line per run here (flowlab.system.write_result)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(**json.loads(a.one))), flush=True)
        return
    from flowlab.presets import changes  # noqa: PLC0415  (pure Python: the parent still never imports JAX)

    try:
        over = changes(a.set)
    except ValueError as e:
        ap.error(str(e))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}

    def child(seed):
        cfg = json.dumps({"density": a.density, "method": a.method, "over": over, "seed": seed})
        r = subprocess.run([sys.executable, __file__, "--density", a.density, "--one", cfg], env=env,
                           capture_output=True, text=True, cwd=ROOT)
        return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"seed": seed,
                                                                                          "error": r.stderr[-300:]}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
        rows = list(ex.map(child, a.seeds))
    from flowlab.system import write_result  # noqa: PLC0415  (imports JAX: after the children ran)

    for r in rows:
        print(json.dumps({k: r.get(k) for k in ("density", "method", "over", "seed", "traj", "late_kl_median",
                                               "late_kl_max", "kl_max_after_shaped", "divergences", "error")}))
        if a.out:
            write_result(a.out, {"benchmark": "live_schedule", **r})


if __name__ == "__main__":
    main()
