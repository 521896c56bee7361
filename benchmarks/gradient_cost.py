"""Cost of one relative-gradient evaluation against the inverse and exact gradients at D = 2048 (issue 2's check).

Setting: 2 fully connected layers, batch 100, float32, forward + backward of one gradient evaluation, compiled ahead
of time (compile excluded), one warm-up call, then rounds that interleave the methods so machine noise hits them
alike; the median per method is reported.  Uses the same measurement code as ``python -m flowlab bench``
(flowlab.benchmark.measure_point, which samples with flowlab.timing).  Goal: relative >= 10x faster than exact (and
than inverse).  Recorded: assets/benchmarks/gradient_cost_*.json.

Run:  python benchmarks/gradient_cost.py [--dim 2048] [--rounds 5] [--json FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowlab import benchmark as B  # noqa: E402
from flowlab.settings import TIMING  # noqa: E402
from flowlab.system import load_average, system_info, write_result  # noqa: E402

METHODS = ("relative", "inverse", "exact")  # the cheap method first, then the two it is compared with
GOAL = 10.0
SETTING = dict(batch=100, layers=2)  # Gresele et al. Fig. 1 left: two layers, batch 100


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each times every method)")
    ap.add_argument("--repeats", type=int, default=3, help="timed samples per method per round")
    ap.add_argument("--json", default=None, help="also write the numbers here (flowlab.system.write_result)")
    args = ap.parse_args(argv)

    cfg = B.BenchConfig(dims=(args.dim,), methods=METHODS, repeats=args.repeats, cap=TIMING["cap"].hi, **SETTING)
    info = system_info()
    load0 = load_average()
    print(f"One gradient evaluation at D={args.dim}, {cfg.layers} layers, batch {cfg.batch}, float32 on "
          f"{info['device']} (JAX {info['jax']}, XLA threads {info['threads']['xla_threads']}, load average {load0})")
    inputs = B.make_inputs(args.dim, cfg)
    per_round = {m: [] for m in METHODS}
    mem = {}
    for _ in range(args.rounds):
        for m in METHODS:
            p = B.measure_point(m, args.dim, cfg, inputs=inputs)
            if p.status != "ok":
                print(f"  {m}: {p.status} — {p.note}")
                return 1
            per_round[m].append(p.time_s)
            mem[m] = p.mem_bytes
    t = {m: statistics.median(v) for m, v in per_round.items()}
    for m in METHODS:
        spread = f"{min(per_round[m]) * 1e3:.1f}–{max(per_round[m]) * 1e3:.1f}"
        print(f"  {m:9s} {t[m] * 1e3:10.2f} ms  (rounds {spread} ms)   memory {mem[m] / 2 ** 20:8.1f} MiB")
    r_exact, r_inv = t["exact"] / t["relative"], t["inverse"] / t["relative"]
    ok = r_exact >= GOAL
    load1 = load_average()
    print(f"  relative is {r_exact:.1f}x faster than exact and {r_inv:.1f}x faster than inverse "
          f"(goal >= {GOAL:g}x vs exact: {'met' if ok else 'NOT met'}); load average at the end {load1}")
    if args.json:
        path = write_result(args.json, {"dim": args.dim, **SETTING, "repeats": args.repeats, "rounds": args.rounds,
                                        "load_average": [load0, load1], "time_s": t, "rounds_s": per_round,
                                        "mem_bytes": mem, "ratio_exact_over_relative": r_exact,
                                        "ratio_inverse_over_relative": r_inv})
        print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
