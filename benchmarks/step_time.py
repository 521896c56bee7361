"""Step time and compile time of FlowLab's training chunk, measured against a plain baseline in the same run.

1. Step time at D=2, L=100, batch 100: FlowLab's chunk (relative and exact methods, with metrics, clipping,
   schedule and the divergence guard) vs a straightforward implementation — layers under lax.scan, autodiff of the
   exact NLL, Adam, K steps in one jitted lax.scan, nothing else.  Goal: FlowLab per-step time <= baseline.
   The step time is the marginal cost of a step: (time of a 300-step chunk - time of a 100-step chunk) / 200, so
   per-chunk work (FlowLab's end-of-chunk test NLL on 1000 points, the dispatch) is reported apart, as overhead.
2. Compile time of one training chunk at L=2 vs L=200.  Goal: ratio <= 1.5 (layers are scanned, not unrolled).
   Median of interleaved compiles (the first compile in a process also pays one-off XLA start-up).

Timing: flowlab.timing (one call per sample, each blocking until its result exists); output: flowlab.system's result
writer (stamped with device, versions, load and date).  Recorded: assets/benchmarks/step_time_*.json.

Run:  python benchmarks/step_time.py [--repeats 5] [--json assets/benchmarks/step_time_cpu.json]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from flowlab import timing  # noqa: E402
from flowlab.flow import FlowSpec, Norm, init_params  # noqa: E402
from flowlab.system import write_result  # noqa: E402
from flowlab.train import TrainConfig, init_state, make_chunk, make_hyper  # noqa: E402

D, L, B, K = 2, 100, 100, 100
K2 = 3 * K


def baseline_chunk(L_, K_):
    """The plain version: scan over layers, value_and_grad of the exact NLL, Adam; K steps in a jitted scan."""
    alpha = 0.3
    opt = optax.adam(1e-3)

    def nll(p, x):
        def layer(h, wb):
            W, b, last = wb
            y = h @ W.T + b
            act = alpha * y + (1 - alpha) * jax.nn.softplus(y)
            ld = jnp.sum(jnp.log(alpha + (1 - alpha) * jax.nn.sigmoid(y)), -1)
            return jnp.where(last, y, act), jnp.where(last, 0.0, ld)

        z, ld = jax.lax.scan(layer, x, (p["W"], p["b"], jnp.arange(L_) == L_ - 1))
        logq = -0.5 * jnp.sum(z * z, -1) - math.log(2 * math.pi) + jnp.sum(ld, 0)
        return -jnp.mean(logq) - jnp.sum(jnp.linalg.slogdet(p["W"])[1])

    @jax.jit
    def chunk(p, s, data, key):
        def step(carry, k):
            p, s = carry
            x = data[jax.random.randint(k, (B,), 0, data.shape[0])]
            loss, g = jax.value_and_grad(nll)(p, x)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), loss

        (p, s), losses = jax.lax.scan(step, (p, s), jax.random.split(key, K_))
        return p, s, losses

    return chunk, opt


def time_call(fn) -> float:
    """Seconds of one call of ``fn``, waiting for its result (one sample of flowlab.timing, never looped)."""
    return timing.sample_times(lambda: jax.block_until_ready(fn()), repeats=1, min_sample_s=0.0)[0][0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    data = jnp.asarray(np.random.default_rng(0).normal(size=(50_000, D)), jnp.float32)
    test = data[:1000]
    nan = jnp.full((1000,), jnp.nan, jnp.float32)
    norm = Norm.identity(D)
    spec = FlowSpec(D, L)
    res = {"setting": dict(D=D, L=L, batch=B, steps_per_chunk=K)}  # device, versions, load, date: the stamp

    # 1. step time, interleaved rounds so machine noise hits every variant alike
    p0 = init_params(spec, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    hyper = make_hyper(lr=1e-3)
    variants = {}  # name -> {K: call}
    for k_ in (K, K2):
        base, opt = baseline_chunk(L, k_)
        s0 = opt.init(p0)
        variants.setdefault("baseline (plain scan, exact grad)", {})[k_] = (
            lambda base=base, s0=s0: base(p0, s0, data, key))
        for method in ("relative", "exact"):
            cfg = TrainConfig(method=method, batch=B, chunk=k_)
            st = init_state(spec, cfg, 0)
            fn = make_chunk(spec, cfg)
            variants.setdefault(f"flowlab chunk, {method}", {})[k_] = (
                lambda fn=fn, st=st: fn(st, st, data, test, nan, norm, hyper))
    for calls in variants.values():  # compile + warm up
        for f in calls.values():
            jax.block_until_ready(f())
    times = {name: {k_: [] for k_ in (K, K2)} for name in variants}
    for _ in range(args.repeats):  # interleaved rounds so machine noise hits every variant alike
        for name, calls in variants.items():
            for k_, f in calls.items():
                times[name][k_].append(time_call(f))
    res["step_time_ms"], res["chunk_overhead_ms"] = {}, {}
    for name, t in times.items():
        t1, t2 = statistics.median(t[K]), statistics.median(t[K2])
        per_step = (t2 - t1) / (K2 - K)
        res["step_time_ms"][name] = 1e3 * per_step
        res["chunk_overhead_ms"][name] = 1e3 * (t1 - K * per_step)
    base_ms = res["step_time_ms"]["baseline (plain scan, exact grad)"]
    print(f"Step time at D={D}, L={L}, batch {B} (marginal cost per step from chunks of {K} and {K2} steps, "
          f"median of {args.repeats} interleaved rounds):")
    for k, v in res["step_time_ms"].items():
        print(f"  {k:36s} {v:7.3f} ms/step   ratio to baseline {v / base_ms:5.2f}   per-chunk overhead "
              f"{res['chunk_overhead_ms'][k]:6.1f} ms")
    res["step_ratio_relative"] = res["step_time_ms"]["flowlab chunk, relative"] / base_ms

    # 2. compile time vs depth (fresh trace + compile of the chunk for each L), interleaved, median of 3
    comp = {2: [], 200: []}
    for _ in range(3):
        for L_ in (2, 200):
            spec_ = FlowSpec(D, L_)
            cfg = TrainConfig(method="relative", batch=B, chunk=K)
            st = init_state(spec_, cfg, 0)
            t0 = timing.clock()
            make_chunk.__wrapped__(spec_, cfg).lower(st, st, data, test, nan, norm, hyper).compile()
            comp[L_].append(timing.clock() - t0)
    res["compile_s"] = {L_: statistics.median(v) for L_, v in comp.items()}
    res["compile_s_all"] = comp
    ratio = res["compile_s"][200] / res["compile_s"][2]
    print(f"Compile time of a relative-gradient chunk (median of 3): L=2 {res['compile_s'][2]:.2f} s, L=200 "
          f"{res['compile_s'][200]:.2f} s, ratio {ratio:.2f} (goal <= 1.5); all: "
          + ", ".join(f"L={L_}: " + " ".join(f"{x:.2f}" for x in v) for L_, v in comp.items()))
    res["compile_ratio_200_vs_2"] = ratio
    if args.json:
        print(f"wrote {write_result(args.json, res)}")


if __name__ == "__main__":
    main()
