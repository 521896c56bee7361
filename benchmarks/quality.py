"""The quality bar of the core engine: KL(p‖q) reached within a fixed training-time budget.

For each density and method, train from FlowLab's tuned defaults (``flowlab.presets.defaults``) for ``--budget``
seconds of wall-clock training (the first chunk's compile time included), keep the weights of the chunk end with
the lowest NLL on the trainer's own held-out split (``Trainer.train(keep_best=True)``), then measure on fresh samples
that neither the training nor that choice saw (``--n-eval`` points from a separate seed):

    test NLL = -mean log q(x),   KL(p‖q) = test NLL - H(p)        (H(p) from the density registry, MC 200k)

and also the paired estimate mean(log p - log q) on the same points (same expectation, lower variance).
With ``--paper`` the paper's settings taken literally (Gresele et al. App. H.2 / Table 2: L=100, batch 100, Adam
1e-3, sine 5e-3, 5000 training points, no clipping, no standardisation) run in the same budget as a reference.

    python benchmarks/quality.py                          # tuned defaults, relative + SNF, 60 s each
    python benchmarks/quality.py --paper --json assets/benchmarks/quality_cpu.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from flowlab import presets  # noqa: E402
from flowlab.densities import get_density  # noqa: E402
from flowlab.system import write_result  # noqa: E402
from flowlab.train import build_trainer, train_candidates  # noqa: E402

GOAL_KL = 0.05


def evaluate(trainer, density: str, n_eval: int, seed: int = 777_777) -> dict:
    d = get_density(density)
    x = d.sample(n_eval, seed=seed).astype(np.float32)
    lq = np.asarray(trainer.log_prob(x), np.float64)
    lp = np.asarray(d.log_prob(x), np.float64)
    ent = d.entropy()
    nll = float(-np.mean(lq))
    return {"test_nll": nll, "entropy": ent, "kl": nll - ent, "kl_paired": float(np.mean(lp - lq)),
            "kl_paired_se": float(np.std(lp - lq) / np.sqrt(n_eval)), "finite": bool(np.all(np.isfinite(lq)))}


def run(density: str, method: str, settings: dict, budget: float, n_eval: int, seed: int, candidates: int = 1) -> dict:
    s = dict(settings)
    s["method"] = method
    t_wall = time.perf_counter()
    trainer = build_trainer(density, seed=seed, headless=True, **s)  # the CLI's chunk length
    # the cosine decay ends with the budget; the weights with the lowest held-out NLL (trainer's own test split) are
    # kept; with several candidates (seeds seed, seed+1, ..., one thread each) the one with the lowest such NLL
    trainer, cands = train_candidates(trainer, candidates, budget_s=budget, fit_schedule=True, keep_best=True)
    res = {"density": density, "method": method, "seed": trainer.seed, "candidates": [
        {"seed": c.seed, "steps": c.step, "kept_heldout_nll": c.best.test_nll if c.best else None,
         "kl_fresh": evaluate(c, density, n_eval)["kl"]} for c in cands] if len(cands) > 1 else None,
           "steps": trainer.step, "kept_step": trainer.kept_step,
           "final_heldout_nll": trainer.last_chunk_test_nll,
           "kept_heldout_nll": trainer.best.test_nll,
           "train_seconds": round(trainer.elapsed, 2),
           "wall_seconds": round(time.perf_counter() - t_wall, 2), "divergences": [d.message for d in
                                                                                   trainer.divergences],
           "settings": {k: (v if not isinstance(v, float) or np.isfinite(v) else str(v)) for k, v in s.items()}}
    res.update(evaluate(trainer, density, n_eval))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per run (compile included)")
    ap.add_argument("--densities", nargs="+", default=["trimodal", "moons", "sine"])
    ap.add_argument("--methods", nargs="+", default=["relative", "self_normalizing"])
    ap.add_argument("--paper", action="store_true", help="also run the paper's settings (relative) as a reference")
    ap.add_argument("--n-eval", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=1,
                    help="train this many seeds side by side (one thread each) and keep the lowest held-out NLL")
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({os.cpu_count()} cores), load {load:.2f}, "
          f"budget {a.budget:.0f} s per run, goal KL <= {GOAL_KL}, {a.candidates} candidate(s) per tuned run")
    rows = []
    plan = [(d, m, "tuned", presets.tuned(d, m).settings()) for d in a.densities for m in a.methods]
    if a.paper:
        plan += [(d, "relative", "paper", presets.paper(d).settings()) for d in a.densities]
    for density, method, preset, settings in plan:
        r = run(density, method, settings, a.budget, a.n_eval, a.seed, a.candidates if preset == "tuned" else 1)
        r["preset"] = preset
        rows.append(r)
        ok = "PASS" if (preset == "tuned" and r["kl"] <= GOAL_KL and not r["divergences"]) else (
            "FAIL" if preset == "tuned" else "ref")
        print(f"{preset:5s} {density:9s} {method:17s} steps {r['steps']:6d} (kept {r['kept_step']:6d}) in "
              f"{r['train_seconds']:5.1f} s  "
              f"test NLL {r['test_nll']:.4f}  H {r['entropy']:.4f}  KL {r['kl']:.4f} "
              f"(paired {r['kl_paired']:.4f} ± {r['kl_paired_se']:.4f})  divergences {len(r['divergences'])}  {ok}",
              flush=True)
        for c in r["candidates"] or []:
            print(f"      candidate seed {c['seed']}: {c['steps']} steps, kept held-out NLL "
                  f"{c['kept_heldout_nll']:.4f}, "
                  f"KL on the fresh points {c['kl_fresh']:.4f}{'  <- kept' if c['seed'] == r['seed'] else ''}",
                  flush=True)
    tuned = [r for r in rows if r["preset"] == "tuned"]
    passed = sum(r["kl"] <= GOAL_KL and not r["divergences"] for r in tuned)
    print(f"{passed}/{len(tuned)} tuned runs reach KL <= {GOAL_KL} within {a.budget:.0f} s")
    if a.json:
        write_result(a.json, {"benchmark": "quality", "budget_s": a.budget, "goal_kl": GOAL_KL, "n_eval": a.n_eval,
                              "candidates": a.candidates, "results": rows})
        print(f"wrote {a.json}")
    return 0 if passed == len(tuned) else 1


if __name__ == "__main__":
    sys.exit(main())
