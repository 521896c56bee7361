"""Step time and compile time of FlowLab's training chunk, measured against a plain baseline in the same run.

1. Step time at D=2, L=100, batch 100: FlowLab's chunk (relative and exact methods, with metrics, clipping,
   schedule and the divergence guard) vs a straightforward implementation — layers under lax.scan, autodiff of the
   exact NLL, Adam, K steps in one jitted lax.scan, nothing else.  Goal: FlowLab per-step time <= baseline.
2. Compile time of one training chunk at L=2 vs L=200.  Goal: ratio <= 1.5 (layers are scanned, not unrolled).

Run:  python benchmarks/step_time.py [--repeats 5] [--json assets/benchmarks/step_time_cpu.json]
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from flowlab.flow import FlowSpec, Norm, init_params  # noqa: E402
from flowlab.train import TrainConfig, init_state, make_chunk, make_hyper  # noqa: E402

D, L, B, K = 2, 100, 100, 100


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


def time_calls(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    res = {"device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}", "jax": jax.__version__,
           "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d"),
           "setting": dict(D=D, L=L, batch=B, steps_per_chunk=K)}

    # 1. step time, interleaved rounds so machine noise hits every variant alike
    base, opt = baseline_chunk(L, K)
    p0 = init_params(spec, jax.random.PRNGKey(0))
    s0 = opt.init(p0)
    key = jax.random.PRNGKey(1)
    jax.block_until_ready(base(p0, s0, data, key))
    variants = {"baseline (plain scan, exact grad)": lambda: base(p0, s0, data, key)}
    hyper = make_hyper(lr=1e-3)
    for method in ("relative", "exact"):
        cfg = TrainConfig(method, B, K)
        st = init_state(spec, cfg, 0)
        fn = make_chunk(spec, cfg)
        jax.block_until_ready(fn(st, st, data, test, nan, norm, hyper))
        variants[f"flowlab chunk, {method}"] = (lambda fn=fn, st=st: fn(st, st, data, test, nan, norm, hyper))
    per_step = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, f in variants.items():
            per_step[name].append(time_calls(f, 1) / K)
    res["step_time_ms"] = {k: 1e3 * statistics.median(v) for k, v in per_step.items()}
    base_ms = res["step_time_ms"]["baseline (plain scan, exact grad)"]
    print(f"Step time at D={D}, L={L}, batch {B} (median of {args.repeats} chunks of {K} steps, includes the "
          f"end-of-chunk test NLL for FlowLab):")
    for k, v in res["step_time_ms"].items():
        print(f"  {k:36s} {v:7.3f} ms/step   ratio to baseline {v / base_ms:5.2f}")

    # 2. compile time vs depth (fresh trace + compile of the chunk for each L)
    res["compile_s"] = {}
    for L_ in (2, 200):
        spec_ = FlowSpec(D, L_)
        cfg = TrainConfig("relative", B, K)
        st = init_state(spec_, cfg, 0)
        t0 = time.perf_counter()
        make_chunk.__wrapped__(spec_, cfg).lower(st, st, data, test, nan, norm, hyper).compile()
        res["compile_s"][L_] = time.perf_counter() - t0
    ratio = res["compile_s"][200] / res["compile_s"][2]
    print(f"Compile time of a relative-gradient chunk: L=2 {res['compile_s'][2]:.2f} s, L=200 "
          f"{res['compile_s'][200]:.2f} s, ratio {ratio:.2f} (goal <= 1.5)")
    res["compile_ratio_200_vs_2"] = ratio
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
