"""Learned activations against the fixed ones: training speed, and what they learn in a fixed number of steps.

1. Speed: steps per second of FlowLab's jitted training chunk (Adam, clipping, schedule, divergence guard) at D=2,
   L=10, batch 512, for every activation in ``flowlab.activations.ACTIVATION_NAMES``, side by side, per gradient
   method.  The step time is the marginal cost of a step, (time of a 3K-step chunk - time of a K-step chunk) / 2K,
   median of interleaved rounds, so the per-chunk evaluation is not counted.
2. Quality (``--steps N``, 0 = skip): held-out NLL and KL(p‖q) after N optimiser steps on the densities given, same
   seeds and settings for every activation (FlowLab's tuned preset with the depth and batch above, relative gradient).

Timing: flowlab.timing (one call per sample, each blocking until its result exists); output: flowlab.system's result
writer (stamped with device, versions, load and date).

Run:  python benchmarks/activation_speed.py [--repeats 7] [--steps 4000] [--json assets/benchmarks/activation_cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flowlab import timing  # noqa: E402
from flowlab.activations import ACTIVATION_NAMES, make_activation  # noqa: E402
from flowlab.flow import FlowSpec, Norm  # noqa: E402
from flowlab.system import write_result  # noqa: E402
from flowlab.train import TrainConfig, build_trainer, init_state, make_chunk, make_hyper  # noqa: E402

D, L, B, K = 2, 10, 512, 100
K2 = 3 * K


def time_call(fn) -> float:
    """Seconds of one call of ``fn``, waiting for its result (one sample of flowlab.timing, never looped)."""
    return timing.sample_times(lambda: jax.block_until_ready(fn()), repeats=1, min_sample_s=0.0)[0][0]


def speed(methods, repeats: int) -> dict:
    """{method: {activation: steps per second}} of the training chunk."""
    data = jnp.asarray(np.random.default_rng(0).normal(size=(50_000, D)), jnp.float32)
    test, nan, norm = data[:1000], jnp.full((1000,), jnp.nan, jnp.float32), Norm.identity(D)
    hyper = make_hyper(lr=1e-3)
    calls = {}
    for method in methods:
        for name in ACTIVATION_NAMES:
            spec = FlowSpec(D, L, make_activation(name))
            for k_ in (K, K2):
                cfg = TrainConfig(method=method, batch=B, chunk=k_)
                st, fn = init_state(spec, cfg, 0), make_chunk(spec, cfg)
                calls[(method, name, k_)] = lambda fn=fn, st=st: fn(st, st, data, test, nan, norm, hyper)
    for f in calls.values():  # compile and warm up
        jax.block_until_ready(f())
    times = {key: [] for key in calls}
    for _ in range(repeats):  # interleaved so machine noise hits every variant alike
        for key, f in calls.items():
            times[key].append(time_call(f))
    out = {}
    for method in methods:
        for name in ACTIVATION_NAMES:
            per_step = (statistics.median(times[(method, name, K2)]) - statistics.median(times[(method, name, K)])) / (
                K2 - K)
            out.setdefault(method, {})[name] = 1.0 / per_step
    return out


def quality(densities, steps: int, seeds) -> list[dict]:
    """Held-out NLL and KL after ``steps`` steps, per density, activation and seed (relative gradient)."""
    rows = []
    for density in densities:
        for name in ACTIVATION_NAMES:
            for seed in seeds:
                t = build_trainer(density, layers=L, batch=B, method="relative", activation=name, seed=seed,
                                  ntrain=50_000, ntest=5_000, headless=True, decay=steps)
                t.train(steps=steps, keep_best=True)
                row = {"density": density, "activation": name, "seed": seed, "steps": t.step,
                       "test_nll": t.evals["test_nll"][-1], "kl": t.evals["kl"][-1], "train_s": t.elapsed,
                       "diverged": bool(t.divergences)}
                rows.append(row)
                print(f"  {density:13s} {name:20s} seed {seed}: KL {row['kl']:.3f}  test NLL {row['test_nll']:.3f}  "
                      f"({row['train_s']:.1f} s{', diverged' if row['diverged'] else ''})", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--methods", default="relative,self_normalizing")
    ap.add_argument("--steps", type=int, default=0, help="optimiser steps of the quality runs (0: speed only)")
    ap.add_argument("--densities", default="rings,two_spirals,checkerboard")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    methods = tuple(args.methods.split(","))
    res = {"setting": dict(D=D, L=L, batch=B, steps_per_chunk=(K, K2), repeats=args.repeats)}
    res["steps_per_s"] = speed(methods, args.repeats)
    print(f"Training steps per second at D={D}, L={L}, batch {B} (marginal, median of {args.repeats} rounds):")
    for method, row in res["steps_per_s"].items():
        base = row["smooth_leaky_relu"]
        print(f"  {method:17s} " + "   ".join(f"{n}: {v:7.0f}/s ({v / base:4.2f}x)" for n, v in row.items()))
    if args.steps:
        print(f"Held-out KL after {args.steps} steps (relative gradient, L={L}, batch {B}):")
        res["quality"] = quality(args.densities.split(","), args.steps, [int(s) for s in args.seeds.split(",")])
    if args.json:
        print(f"wrote {write_result(args.json, res)}")


if __name__ == "__main__":
    main()
