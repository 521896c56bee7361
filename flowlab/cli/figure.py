"""``python -m flowlab figure convergence|lambda|movie``: the Compare page's figures, headless, and the home
page's training movie.

Writes OUT.html, OUT.csv and, with --png, OUT.png (convergence: also OUT_rates.html / .png, the learning-rate sweep),
and prints one JSON summary row per method (or per λ); convergence also prints one JSON row per method and rate of
the sweep and the page's conclusion computed from this run (one line, "conclusion: ...").  The experiment's
options are the COMPARE schema's fields, named as in the page's URL (--inits, --iters, --points, --optimizer
sgd|adam, --rates 0.01,0.02,... the sweep, --curves best|shared, ...); --lams, --band, --out, --png and --quiet belong
to the command line alone.  Every bad
argument, and a run over this machine's budget (``flowlab.budget.local_budget``: half the free memory, or
FLOWLAB_SESSION_MEMORY_MB / FLOWLAB_JOB_SECONDS when set), is one line "error: ..." on stderr and exit status 2,
before anything is created or computed; a run that fails while computing (out of memory) is one line too, and
writes nothing.  ``--density text --text FLOW`` (or ``--text FLOW`` alone) compares the gradients on the density
of a typed text.

``movie`` (its own options: --density, --steps, --frames, --seed, --out) trains a flow with the density's tuned
preset and writes OUT/<density>.gif (the learned density at step 0 and at chunk ends up to --steps, beside the true
density; at most 5 MB) and OUT/<density>.json (the record the home page's caption reads: label, layers, method,
steps, frames, final KL, ...)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from flowlab import presets
from flowlab.budget import local_budget, training_refusal
from flowlab.cli import Parser, fail
from flowlab.cli.train import NTEST, check_out
from flowlab.compare import CompareSettings, ConvergenceRun, LambdaSweep, at_rates, conclusion, summary_rows, sweep_rows
from flowlab.plots.compare import convergence_figure, lambda_figure, rate_figure
from flowlab.plots.export import write_png
from flowlab.plots.movie import CHUNK, FRAMES, MAX_FRAMES, MAX_STEPS, STEPS, movie_settings, training_movie
from flowlab.settings import COMPARE, COMPARE_TEXT, LAMBDAS, TRAIN
from flowlab.system import write_result

KINDS = ("convergence", "lambda", "movie")
MOVIE_OUT = "assets/home"
BANDS = ("std", "minmax")


def build_parser() -> Parser:
    p = Parser(
        prog="python -m flowlab figure",
        description="Convergence figures of the Compare page, headless: ordinary vs relative vs self-normalizing "
                    "gradients from the same initial weights (Gresele et al. 2020 Fig. 1 right; Keller et al. 2021 "
                    "Fig. 3) at every learning rate of --rates, each drawn at its best rate (--curves best) or at "
                    "--lr (--curves shared), with the conclusion computed from the run; or the self-normalizing λ "
                    "sweep (Keller et al. Table 4; λ on Keller's scale).  Writes OUT.html, OUT.csv and, with --png, "
                    "OUT.png.  Options left out take the Compare page's defaults.")
    p.add_argument("kind", choices=KINDS, help="which figure (movie: the home page's GIF; see movie --help)")
    COMPARE.add_arguments(p)
    p.add_argument("--lams", default=", ".join(f"{v:g}" for v in presets.LAMBDA_SWEEP),
                   help=f"{LAMBDAS.help} (lambda figure; at most {LAMBDAS.max_items})")
    p.add_argument("--band", default="std", choices=BANDS, help="spread over the inits: mean ± 1 std, or min–max")
    p.add_argument("--out", default="runs/convergence", help="output path without extension")
    p.add_argument("--png", action="store_true", help="also write a PNG (kaleido or headless Chromium)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return p


def compare_settings(args) -> CompareSettings:
    """The experiment's settings from the arguments; ``--text`` alone means ``--density text``."""
    given = COMPARE.from_args(args)
    if "text" in given:
        given.setdefault("density", COMPARE_TEXT)
        if given["density"] != COMPARE_TEXT:
            raise ValueError(f"--text applies to --density {COMPARE_TEXT} only.")
    return CompareSettings(**given)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["movie"]:
        return movie(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a one-line argparse error (2)
        return int(e.code or 0)
    try:
        settings = compare_settings(args)
        try:
            lams = LAMBDAS.check(args.lams)
        except ValueError as e:
            raise ValueError(f"--lams: {e}") from None
        if not args.out.strip():
            raise ValueError("--out must name a file path (without extension).")
        budget = local_budget()
        job = (ConvergenceRun(settings, budget=budget) if args.kind == "convergence" else
               LambdaSweep(settings, lams, budget=budget))  # refused (ValueError) before any array is made
    except ValueError as e:
        return fail(str(e))

    def report(j):
        if not args.quiet:
            print(f"\r{j.status} ({100 * j.progress:.0f} %)", end="", file=sys.stderr, flush=True)

    job.run(report)
    if not args.quiet:
        print(file=sys.stderr)
    if job.error:  # out of memory, or a compiled step over the budget: one line, nothing written
        return fail(job.error)
    curves = job.curves()
    out = args.out
    if args.kind == "convergence":
        cut = at_rates(curves, settings.curves)
        figs = {out: convergence_figure(cut, band_kind=args.band), out + "_rates": rate_figure(curves)}
    else:
        figs = {out: lambda_figure(curves)}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    written = [p + ".html" for p in figs] + [out + ".csv"]
    for path, fig in figs.items():
        fig.write_html(path + ".html", include_plotlyjs="cdn")
    with open(out + ".csv", "w") as f:
        f.write(job.to_csv())
    if args.png:
        for path, fig in figs.items():
            try:
                written.append(write_png(fig, path + ".png"))
            except Exception as e:  # a missing browser must not lose the HTML/CSV already written
                print(f"warning: PNG not written ({e})", file=sys.stderr)
    if args.kind == "convergence":
        for m, rows in sweep_rows(curves).items():
            for r in rows:
                print(json.dumps({"sweep": m, "lr": r["rate"], "median_final_nll": r["median"], "q25": r["q25"],
                                  "q75": r["q75"], "diverged": r["diverged"], "n": r["n"]}))
    for r in summary_rows(cut) if args.kind == "convergence" else job.summary():
        print(json.dumps(r))
    if args.kind == "convergence":
        said = conclusion(curves, settings.curves)
        print(f"conclusion: {said['loss']} {said['time']}")
    print("wrote " + ", ".join(written))
    return 0


# ---- the home page's movie -------------------------------------------------------------------------------------------
def movie_parser() -> Parser:
    p = Parser(prog="python -m flowlab figure movie",
               description="The home page's training movie: a flow learning a density with its tuned preset, the "
                           "learned density at step 0 and at chunk ends spaced geometrically up to --steps, beside "
                           "the true density.  Writes OUT/DENSITY.gif (at most 5 MB) and OUT/DENSITY.json (the "
                           "record its caption reads).")
    p.add_argument("--density", default="moons", help=f"one of: {', '.join(TRAIN['density'].options())}")
    p.add_argument("--steps", type=int, default=STEPS,
                   help=f"optimiser steps ({CHUNK} to {MAX_STEPS:,}); the cosine decay ends with them")
    p.add_argument("--frames", type=int, default=FRAMES, help=f"frames, step 0 included (2 to {MAX_FRAMES})")
    p.add_argument("--seed", default="0", help="seed of the data and the initial weights")
    p.add_argument("--out", default=MOVIE_OUT, help="output folder (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return p


def movie(argv) -> int:
    """``python -m flowlab figure movie``: every argument checked (one line, exit status 2, nothing created) before
    the run; then the GIF and its record."""
    try:
        args = movie_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    checked = {}
    for key in ("density", "seed"):
        try:
            checked[key] = TRAIN[key].check(getattr(args, key))
        except ValueError as e:
            return fail(f"--{key}: {e}")
    density, seed = checked["density"], checked["seed"]
    try:
        if not CHUNK <= args.steps <= MAX_STEPS:
            raise ValueError(f"--steps must be between {CHUNK} and {MAX_STEPS:,}, got {args.steps}.")
        if not 2 <= args.frames <= MAX_FRAMES:
            raise ValueError(f"--frames must be between 2 and {MAX_FRAMES}, got {args.frames}.")
        if not args.out.strip():
            raise ValueError("--out must name a folder.")
        out = check_out(args.out)
        s = movie_settings(density, args.steps)
        over = training_refusal(local_budget(), method=s["method"], layers=s["layers"], batch=s["batch"],
                                ntrain=s["ntrain"], ntest=NTEST, candidates=1)
        if over:
            raise ValueError(over)
    except ValueError as e:
        return fail(str(e))
    if not args.quiet:
        print(f"training {density} for {args.steps:,} steps, {args.frames} frames…", file=sys.stderr, flush=True)
    gif, record = training_movie(density, steps=args.steps, frames=args.frames, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    record["command"] = (f"python -m flowlab figure movie --density {density} --steps {args.steps} "
                         f"--frames {args.frames} --seed {seed}")
    gif_path = out / f"{density}.gif"
    gif_path.write_bytes(gif)
    json_path = write_result(out / f"{density}.json", record)
    print(json.dumps({k: record[k] for k in ("density", "steps", "frames", "kl", "seconds")}))
    print(f"wrote {gif_path} ({len(gif) / 2**20:.2f} MB), {Path(json_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
