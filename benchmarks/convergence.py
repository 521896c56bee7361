"""Does the relative gradient need more iterations than the ordinary one?  (Gresele et al. 2020, Fig. 1 right: "the
relative gradient does not need more iterations".)  And what does one step cost as D grows?

Part 1 — iterations.  Deterministic full-batch optimisation, 1000 points in D = 2, a two-layer flow, 10 initial
weights shared by both methods, each method at its own best learning rate of the Compare page's sweep (equal rates
are not equal steps: the relative gradient is the ordinary one times W̄ᵀW̄).  For every init i the loss levels
    level_q,i = L0_i − q · (L0_i − min(final_ordinary_i, final_relative_i)),   q ∈ {0.5, 0.9, 0.99}
are fixed, and the first iteration at which each method reaches them is compared on the same init.
Part 2 — per-step wall-clock time (optimiser steps only, all inits vmapped, compilation excluded) vs D on the
random-rotation Gaussian mixture, N = 1000 points.

Prints the measured numbers and writes assets/benchmarks/convergence.json (through flowlab.system.write_result, which
stamps the device, versions, load and date).  About 2–3 minutes on a 2-core CPU.

    python benchmarks/convergence.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from flowlab import compare as C  # noqa: E402
from flowlab import presets  # noqa: E402
from flowlab.settings import COMPARE_ND  # noqa: E402
from flowlab.system import device_label, write_result  # noqa: E402

LEVELS = (0.5, 0.9, 0.99)


def ms(a):
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return {"mean": float(a.mean()) if len(a) else None, "std": float(a.std()) if len(a) else None, "n": int(len(a))}


def iterations_experiment(density, optimizer, iters, inits=10):
    s = C.CompareSettings(density=density, optimizer=optimizer, lr=presets.COMPARE_LR[optimizer],
                          rates=presets.COMPARE_RATES[optimizer], iters=iters,
                          inits=inits, points=1000, layers=2, methods=("inverse", "relative"), seed=0)
    t0 = time.perf_counter()
    c_all = C.ConvergenceRun(s).run().curves()
    c = C.at_rates(c_all, "best")  # each method at its best rate of the sweep
    wall = time.perf_counter() - t0
    o, r = c["methods"]["inverse"], c["methods"]["relative"]
    it = o["iteration"]
    L0 = o["loss"][0]
    assert np.allclose(L0, r["loss"][0], rtol=1e-6), "both methods must start from the same loss"
    fo, fr = o["loss"][-1], r["loss"][-1]
    best = np.fmin(fo, fr)
    out = {"settings": {k: v for k, v in s.as_dict().items() if k not in ("activation", "eval_every")},
           "best_rate": {"ordinary": float(o["lr"]), "relative": float(r["lr"])},
           "conclusion": C.conclusion(c_all, "best")["loss"],
           "true_nll_on_points": c["true_nll"], "wall_s": wall,
           "start_loss": ms(L0), "final_loss": {"ordinary": ms(fo), "relative": ms(fr)},
           "diverged": {"ordinary": int(np.sum(o["diverged_at"] >= 0)), "relative": int(np.sum(r["diverged_at"] >= 0))},
           "relative_final_lower": int(np.sum(fr < fo)), "levels": {}}
    for q in LEVELS:
        level = L0 - q * (L0 - best)
        io_ = C.iterations_to_reach(it, o["loss"], level)
        ir = C.iterations_to_reach(it, r["loss"], level)
        both = np.isfinite(io_) & np.isfinite(ir)
        ratio = ir[both] / np.maximum(io_[both], 1)
        out["levels"][str(q)] = {
            "ordinary_iterations": ms(io_), "relative_iterations": ms(ir),
            "reached": {"ordinary": int(np.isfinite(io_).sum()), "relative": int(np.isfinite(ir).sum())},
            "ratio_relative_over_ordinary": ms(ratio),
            "relative_not_slower": int(np.sum(ir[both] <= io_[both])), "paired": int(both.sum()),
            "per_init": {"ordinary": [None if not np.isfinite(v) else int(v) for v in io_],
                         "relative": [None if not np.isfinite(v) else int(v) for v in ir]}}
    return out


def timing_experiment(dims, points=1000, inits=2, iters=6):
    """Per-iteration time: every step timed on its own (eval_every = 1); the minimum over the steps is reported (the
    machine is shared, so the minimum is the least disturbed estimate), the median alongside."""
    rows = []
    for D in dims:
        s = C.CompareSettings(density=COMPARE_ND, dim=D, optimizer="adam", lr=1e-3, rates=(1e-3,), iters=iters,
                              eval_every=1, inits=inits, points=points, layers=2,
                              methods=("inverse", "relative", "self_normalizing", "exact"))
        c = C.ConvergenceRun(s).run().curves()
        row = {"dim": D, "points": points, "inits": inits, "iters_timed": iters}
        for m, d in c["methods"].items():
            per = np.diff(d["time"])
            row[m + "_ms_per_iteration"] = 1000 * float(per.min())
            row[m + "_ms_median"] = 1000 * float(np.median(per))
        row["ordinary_over_relative"] = row["inverse_ms_per_iteration"] / row["relative_ms_per_iteration"]
        rows.append(row)
        print(f"  D = {D:4d}: ms/iteration ({inits} inits, N = {points}) ordinary {row['inverse_ms_per_iteration']:8.1f}"
              f"  autodiff {row['exact_ms_per_iteration']:8.1f}  relative {row['relative_ms_per_iteration']:8.1f}"
              f"  self-normalizing {row['self_normalizing_ms_per_iteration']:8.1f}"
              f"  → ordinary/relative {row['ordinary_over_relative']:.2f}×", flush=True)
    return rows


def fmt(m, digits=1):
    return "—" if m["mean"] is None else f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations and dimensions (smoke run)")
    ap.add_argument("--only-timing", action="store_true", help="redo part 2 only, keep part 1 of --out")
    ap.add_argument("--out", default=os.path.join(ROOT, "assets", "benchmarks", "convergence.json"))
    args = ap.parse_args(argv)
    iters = 200 if args.quick else 1000
    dims = (2, 64) if args.quick else (2, 64, 256, 512)
    result = {"benchmark": "convergence", "iterations": [], "timing": []}
    print(f"device: {device_label()}, {os.cpu_count()} CPUs (shared)")
    if args.only_timing:
        with open(args.out) as f:
            result["iterations"] = json.load(f)["iterations"]
    print("Part 1 — iterations to reach a loss level, same 10 inits, full batch of 1000 points, D = 2, 2 layers")
    for density, opt in () if args.only_timing else (("trimodal", "sgd"), ("trimodal", "adam"), ("moons", "sgd")):
        r = iterations_experiment(density, opt, iters)
        result["iterations"].append(r)
        print(f" {density}, {opt}, best rates: ordinary {r['best_rate']['ordinary']:g}, relative "
              f"{r['best_rate']['relative']:g}; {iters} iterations ({r['wall_s']:.0f} s): start "
              f"{r['start_loss']['mean']:.3f}, final ordinary {fmt(r['final_loss']['ordinary'], 3)}, relative "
              f"{fmt(r['final_loss']['relative'], 3)} "
              f"(relative lower on {r['relative_final_lower']}/10; diverged {r['diverged']})\n   {r['conclusion']}")
        for q, L in r["levels"].items():
            rt = L["ratio_relative_over_ordinary"]
            print(f"   level q={q:>4}: iterations ordinary {fmt(L['ordinary_iterations'])} (reached "
                  f"{L['reached']['ordinary']}/10), relative {fmt(L['relative_iterations'])} (reached "
                  f"{L['reached']['relative']}/10); relative/ordinary "
                  f"{fmt(rt, 2)}"
                  f"; relative not slower on {L['relative_not_slower']}/{L['paired']}", flush=True)
    print("Part 2 — wall-clock per iteration (optimiser steps only, compile excluded, min over 6 single steps), "
          "Gaussian mixture, 2 layers")
    result["timing"] = timing_experiment(dims)
    print(f"wrote {os.path.relpath(write_result(args.out, result), ROOT)}")


if __name__ == "__main__":
    main()
