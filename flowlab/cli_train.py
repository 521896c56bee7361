"""`python -m flowlab train`: train headless, write model (.npz), metrics (CSV + JSON) and a density figure (HTML)."""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import presets
from .densities import get_density, names
from .gradients import TRAIN_METHODS
from .io import save_model
from .session import with_chunk_steps
from .train import build_trainer, train_candidates


def add_train_args(p):
    p.add_argument("--density", required=True, help=f"one of: {', '.join(names())}")
    p.add_argument("--method", default=None, help=f"one of: {', '.join(TRAIN_METHODS)} (default: preset's)")
    p.add_argument("--preset", default="default", choices=["default", "paper"],
                   help="FlowLab's tuned defaults or the paper's Table 2 settings")
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--b2", type=float, default=None, help="Adam's second-moment decay β₂ (default: preset's)")
    p.add_argument("--activation", default=None, choices=["smooth_leaky_relu", "tanh_linear"])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--budget", type=float, help="training time budget in seconds (compile included)")
    g.add_argument("--steps", type=int, help="number of optimiser steps")
    p.add_argument("--fixed-schedule", action="store_true",
                   help="with --budget: keep the preset's decay_steps instead of ending the cosine decay with the "
                        "budget at this machine's measured step rate")
    p.add_argument("--keep-last", action="store_true",
                   help="save the last weights instead of those of the chunk end with the lowest held-out NLL")
    p.add_argument("--candidates", type=int, default=1,
                   help="train this many seeds (seed, seed+1, ...) side by side, one thread each, on the same data, "
                        "and save the one with the lowest held-out NLL (use at most one per CPU core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def settings_from_args(args) -> dict:
    get_density(args.density)  # ValueError with the list of names
    if args.preset == "paper":
        s = presets.paper_training(args.density)
    else:
        s = presets.defaults(args.density, args.method)
    for key in ("method", "layers", "batch_size", "lr", "b2", "activation"):
        v = getattr(args, key)
        if v is not None:
            s[key] = v
    if args.budget is not None and args.budget <= 0:
        raise ValueError(f"--budget must be a positive number of seconds, got {args.budget}.")
    if args.steps is not None and args.steps <= 0:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}.")
    if args.candidates < 1:
        raise ValueError(f"--candidates must be a positive integer, got {args.candidates}.")
    return with_chunk_steps(s)


def run_train(args) -> int:
    s = settings_from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(args.density, seed=args.seed, **s)
    t0 = time.perf_counter()
    total = args.steps if args.steps else args.budget

    def progress(t):
        if args.quiet:
            return
        done = t.step / total if args.steps else t.elapsed / total
        done = min(1.0, done)
        bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
        kl = t.evals["kl"][-1]
        sys.stderr.write(f"\r[{bar}] {100 * done:5.1f}%  step {t.step:6d}  test NLL {t.evals['test_nll'][-1]:.4f}"
                         f"  KL {kl:.4f}  {time.perf_counter() - t0:5.1f}s")
        sys.stderr.flush()

    fit = args.budget is not None and not args.fixed_schedule
    trainer, cands = train_candidates(trainer, args.candidates, steps=args.steps, budget_s=args.budget,
                                      callback=progress, fit_schedule=fit, keep_best=not args.keep_last)
    if not args.quiet:
        sys.stderr.write("\n")
    if len(cands) > 1:
        for c in cands:
            print(f"candidate seed {c.seed}: {c.step} steps, held-out NLL {c.evals['test_nll'][-1]:.4f}"
                  f"{'  <- saved' if c is trainer else ''}", file=sys.stderr)
    kept = trainer.restored
    if kept is not None:
        print(f"kept the weights of step {kept.step} (held-out NLL {kept.test_nll:.4f}; last step {trainer.step}: "
              f"{trainer.last_chunk_test_nll:.4f})", file=sys.stderr)
    for d in trainer.divergences:
        print(f"warning: {d.message}", file=sys.stderr)
    drift = trainer.inverse_drift_warning()
    if drift:
        print(f"warning: {drift}", file=sys.stderr)
    config = {"density": args.density, **trainer.config_dict()}
    save_model(out / "model.npz", trainer.spec, trainer.params, trainer.norm, config)
    hist = trainer.history_arrays()
    keys = [k for k in hist if k != "step"]
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + keys)
        for i in range(len(hist.get("step", []))):
            w.writerow([int(hist["step"][i])] + [f"{hist[k][i]:.6g}" for k in keys])
    d = get_density(args.density)
    # the last evaluation row describes the saved weights (restore_best adds one when it restores)
    summary = {"density": args.density, "seed": trainer.seed, "candidates": len(cands), "steps": trainer.step,
               "kept_step": trainer.kept_step, "train_seconds": trainer.elapsed,
               "test_nll": trainer.evals["test_nll"][-1], "kl": trainer.evals["kl"][-1],
               "entropy": d.entropy(), "diverged": [x.message for x in trainer.divergences], "evals": trainer.evals,
               "settings": {k: (v if not isinstance(v, float) or np.isfinite(v) else str(v)) for k, v in s.items()}}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    from .plots.core import density_figure, grid

    xs, ys, pts = grid(d.plot_range, 160)
    lp = np.asarray(trainer.log_prob(pts))
    fig = density_figure(xs, ys, lp, name="q", title=f"learned density · {args.density} · {s['method']} · KL "
                         f"{summary['kl']:.3f} nats")
    fig.write_html(out / "density.html", include_plotlyjs="cdn")
    print(f"{args.density}: {trainer.step} steps in {trainer.elapsed:.1f}s, test NLL {summary['test_nll']:.4f}, "
          f"KL {summary['kl']:.4f} nats -> {out}")
    return 1 if trainer.divergences and trainer.stopped else 0
