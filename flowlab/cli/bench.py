"""``python -m flowlab bench``: time one gradient evaluation of each method against the dimension D (the Timing
page's engine, ``flowlab.benchmark``, from the command line).

The options shared with the Timing page (--dims, --methods, --batch, --layers, --repeats, --cap, --seed) come from
``settings.TIMING``; the grid options (--min-dim, --max-dim, --per-octave) and the output options are this command's.
Without --dims and --methods it runs the recorded runs' setting: the log-spaced grid and every method.  Every bad
argument, and a grid that cannot run within this machine's budget (``flowlab.budget.local_budget``, or
--mem-limit-gb), is one line "error: ..." on stderr and exit status 2, before anything runs or is written."""
from __future__ import annotations

import sys
from pathlib import Path

from flowlab.benchmark import (ALL_METHODS, FIT_RANGE, BenchConfig, BenchmarkRun, BenchResult, Point, default_dims,
                               default_max_dim, grid_refusal, parse_dims, parse_methods, run_benchmark, stability)
from flowlab.benchmark.config import CHECKED
from flowlab.budget import GiB, Budget, local_budget, size_text
from flowlab.settings import TIMING
from flowlab.system import load_average, system_info

from . import Parser, fail


def build_parser() -> Parser:
    ap = Parser(prog="python -m flowlab bench",
                description="Time one gradient evaluation (forward + backward) of each method against the dimension "
                            "D. Without --dims: a log-spaced grid from --min-dim to --max-dim; without --methods: "
                            "every method.",
                epilog="Example: python -m flowlab bench --max-dim 4096 --out assets/benchmarks/timing_cpu.json")
    TIMING.add_arguments(ap)
    ap.add_argument("--min-dim", type=int, default=64, help="smallest D of the default grid (default 64)")
    ap.add_argument("--max-dim", type=int, default=None, help="largest D of the default grid (default: 4096 on CPU, "
                                                              "16384 on an accelerator)")
    ap.add_argument("--per-octave", type=int, default=2, help="points per doubling of D in the default grid")
    ap.add_argument("--mem-limit-gb", type=float, default=None,
                    help="per-point memory limit in GiB (default and maximum: half the free memory, 85 %% of it on an "
                         "accelerator, or FLOWLAB_SESSION_MEMORY_MB)")
    ap.add_argument("--fit", default=f"{FIT_RANGE[0]},{FIT_RANGE[1]}", help="D window of the headline slope fit")
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    ap.add_argument("--out", help="write the result here (.json, or .csv for the table)")
    ap.add_argument("--csv", help="also write the table as CSV here")
    ap.add_argument("--quiet", action="store_true")
    return ap


def config_from_args(args) -> BenchConfig:
    """The run the arguments describe; ValueError with one sentence if one is bad.  --dims and --methods go through
    parse_dims / parse_methods (the schema's fields, with messages that name the bad item of the list)."""
    checked = TIMING.from_args(args, CHECKED)
    if args.dims is not None:
        dims = parse_dims(args.dims)
    else:
        dims = default_dims(args.max_dim or default_max_dim(), args.min_dim, args.per_octave)
    methods = parse_methods(args.methods) if args.methods is not None else ALL_METHODS
    try:
        fit = tuple(float(v) for v in str(args.fit).split(","))
    except ValueError:
        raise ValueError(f"--fit takes two numbers like 512,4096, got {args.fit!r}.") from None
    if len(fit) != 2:
        raise ValueError(f"--fit takes two numbers like 512,4096, got {args.fit!r}.")
    if args.mem_limit_gb is not None and not args.mem_limit_gb > 0:
        raise ValueError(f"--mem-limit-gb must be positive, got {args.mem_limit_gb}.")
    mem = None if args.mem_limit_gb is None else int(args.mem_limit_gb * GiB)
    return BenchConfig(dims=dims, methods=methods, mem_limit=mem, fit_range=fit, **checked)


def budget_from_args(config: BenchConfig) -> Budget:
    """This machine's budget (``local_budget``), its memory lowered to --mem-limit-gb when given; ValueError with
    one sentence for a limit above what the machine can give."""
    budget = local_budget()
    if config.mem_limit is None:
        return budget
    if config.mem_limit > budget.memory:
        who, what = budget.memory_note
        raise ValueError(f"--mem-limit-gb {config.mem_limit / GiB:g} is more than {who} {what}.")
    return Budget(config.mem_limit, budget.seconds, ("--mem-limit-gb allows", size_text(config.mem_limit)),
                  budget.time_note)


def format_summary(res: BenchResult) -> str:
    """Per method: fitted slopes, the time at the largest measured D and the speed-up over exact there; where and why
    each stopped method stopped; the repeats' spread and whether the Timing page would let the run head it
    (flowlab.benchmark.stability)."""
    lines = []
    slopes = res.slopes()
    lo, hi = res.meta.get("fit_range", FIT_RANGE)
    sp = res.speedups()
    for m in res.methods:
        d, t = res.series(m)
        s = slopes[m]
        extra = ""
        if len(sp.get(m, ([],))[0]) and m != "exact":
            extra = f"  {sp[m][1][-1]:7.1f}x faster than exact at D={int(sp[m][0][-1])}"
        last = f"{t[-1] * 1e3:10.2f} ms at D={int(d[-1])}" if len(d) else "not measured"
        lines.append(f"  {m:18s} slope {s['all']:5.2f} (all D)  {s['window']:5.2f} (D in [{lo:g}, {hi:g}])  "
                     f"{last}{extra}")
    for m, s in res.stopped().items():
        lines.append(f"  {m} stopped{' at D=' + str(s['dim']) if s.get('dim') else ''}: {s['note']}")
    check = stability(res)
    if check.spread_text():
        lines.append(f"  median (middle half of the repeats): {check.spread_text()}")
    lines.append("  stable by the Timing page's rule (it may replace the recorded headline): "
                 + ("yes" if check.stable else "no: " + "; ".join(check.reasons)))
    return "\n".join(lines)


def point_line(p: Point, run: BenchmarkRun) -> str:
    """One progress line per point: index, D, method, status, time, compiled memory, note."""
    t = f"{p.time_s * 1e3:10.3f} ms" if p.time_s is not None else " " * 13
    mem = f"{p.mem_bytes / 2 ** 20:9.1f} MiB" if p.mem_bytes else " " * 13
    return f"[{run.index:3d}/{run.total}] D={p.dim:6d} {p.method:18s} {p.status:8s} {t} {mem}  {p.note}"


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a malformed option (2, its one line already printed)
        return int(e.code or 0)
    try:
        config = config_from_args(args)
        for path in (args.out, args.csv):
            if path and not Path(path).resolve().parent.is_dir():
                raise ValueError(f"The folder of {path} does not exist.")
        budget = budget_from_args(config)
        refused = grid_refusal(config, budget)  # from the shapes alone: nothing is built before it passes
        if refused:
            raise ValueError(refused)
    except ValueError as e:
        return fail(str(e))
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    info = system_info()
    say(f"FlowLab gradient timing on {info['device']} (JAX {info['jax']}, threads: {info['threads']['xla_threads']}, "
        f"load average {load_average()}): {len(config.dims)} dimensions x {len(config.methods)} methods, batch "
        f"{config.batch}, {config.layers} layers, cap {config.cap:g} s per point")
    try:
        res = run_benchmark(config, on_point=lambda p, run: say(point_line(p, run)), note=args.note,
                            mem_limit=budget.memory, time_limit=budget.seconds)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    say(f"done in {res.meta.get('duration_s', 0):.0f} s, load average at the end {res.meta.get('load_average_end')}")
    say(format_summary(res))
    if args.out:
        say(f"wrote {res.save(args.out)}")
    if args.csv:
        Path(args.csv).write_text(res.to_csv())
        say(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
