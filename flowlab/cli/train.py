"""``python -m flowlab train``: train headless and write the model (.npz), the metrics (CSV + JSON) and a figure of
the learned density (HTML).

The training options are the settings schema's (``flowlab.settings.TRAIN``): the same names as the Playground's
URL.  The density is a registry toy (``--density``), typed text (``--text FLOW``) or a picture (``--image
photo.png [--invert]``: dark pixels dense), each with an exact log-density so the KL is exact.  Options not given
come from FlowLab's tuned preset for the density and method (``--preset paper``: Gresele et al. 2020, Table 2).  ``--budget`` trains for a time and ends the cosine decay with it; ``--steps`` trains for a
number of steps and ends the decay with them (unless ``--decay`` is given)."""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from flowlab import presets
from flowlab.budget import local_budget, training_refusal
from flowlab.cli import Parser, fail
from flowlab.custom_densities import MAX_IMAGE_BYTES, MAX_TEXT, image_density, text_density
from flowlab.densities import Density, get_density
from flowlab.files import save_model
from flowlab.layerviz.grids import plane_grid
from flowlab.plots.core import density_figure
from flowlab.plots.gif import density_picture
from flowlab.plots.raster import density_zmax
from flowlab.settings import TRAIN, shown
from flowlab.train import CHUNK_CHOICES, HEADLESS_CHUNK_SCALE, build_trainer, chunk_steps_for, train_candidates

TRAINING_KEYS = tuple(k for k in TRAIN.keys if k != "density")
NTEST = 5_000  # held-out points evaluated at every chunk end


def build_parser() -> Parser:
    p = Parser(prog="python -m flowlab train", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--density", help=f"one of: {', '.join(TRAIN['density'].options())}")
    src.add_argument("--text", help=f"learn typed text (at most {MAX_TEXT} characters), e.g. FLOW")
    src.add_argument("--image", help=f"learn a PNG or JPEG picture (at most {MAX_IMAGE_BYTES // 2**20} MB): dark "
                                     "pixels are dense")
    p.add_argument("--invert", action="store_true", help="with --image: light pixels are dense")
    p.add_argument("--preset", default="tuned", choices=["tuned", "paper"],
                   help="FlowLab's tuned settings (default) or the paper's Table 2")
    TRAIN.add_arguments(p, TRAINING_KEYS)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--budget", type=float, help="training time budget in seconds (compile included)")
    g.add_argument("--steps", type=int, help="number of optimiser steps (the decay ends with them and the warm-up "
                                             "takes at most a fifth, unless --decay / --warmup are given)")
    p.add_argument("--fixed-schedule", action="store_true",
                   help="keep the preset's decay length instead of ending the cosine decay with the run")
    p.add_argument("--keep-last", action="store_true",
                   help="save the last weights instead of those of the chunk end with the lowest held-out NLL")
    p.add_argument("--candidates", type=int, default=1,
                   help="train this many seeds (seed, seed+1, ...) side by side, one thread each, on the same data, "
                        "and save the one with the lowest held-out NLL (at most one per CPU core)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def density_from_args(args) -> Density:
    """The density to learn: a registry toy, typed text or a picture file; ValueError with one sentence."""
    if args.invert and args.image is None:
        raise ValueError("--invert applies to --image only.")
    if args.text is not None:
        return text_density(args.text)
    if args.image is not None:
        path = Path(args.image)
        if not path.is_file():
            raise ValueError(f"--image: no such file {shown(args.image)}.")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ValueError(f"--image: the picture is {path.stat().st_size / 2**20:.1f} MB; at most "
                             f"{MAX_IMAGE_BYTES // 2**20} MB.")
        try:
            return image_density(path.read_bytes(), invert=args.invert)
        except ValueError as e:
            raise ValueError(f"--image {shown(path.name)}: {e}") from None
    return get_density(TRAIN["density"].check(args.density))


def settings_from_args(args, density: Density) -> tuple[dict, int]:
    """(build_trainer settings, seed) from the arguments; ValueError with one sentence for a bad one."""
    given = TRAIN.from_args(args, TRAINING_KEYS)
    seed = given.pop("seed", presets.PLAYGROUND_EXTRA["seed"])
    if args.preset == "paper" and density.name not in presets.PAPER:
        raise ValueError(f"--preset paper: the paper has settings only for {', '.join(presets.PAPER)}.")
    base = (presets.paper(density.name) if args.preset == "paper"
            else presets.tuned(density.name, given.get("method")))
    s = {**base.settings(), **given}
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget > 0):
        raise ValueError(f"--budget must be a positive number of seconds, got {args.budget}.")
    if args.steps is not None and args.steps <= 0:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}.")
    if args.steps is not None and "decay" not in given and not args.fixed_schedule and s["decay"] > 0:
        # the cosine decay ends with the run, as --budget makes it end with the time; warm-up at most a fifth of it
        s["decay"] = int(args.steps)
        if "warmup" not in given:
            s["warmup"] = min(s["warmup"], int(args.steps) // 5)
    if args.candidates < 1:
        raise ValueError(f"--candidates must be a positive integer, got {args.candidates}.")
    over = training_refusal(local_budget(), method=s["method"], layers=s["layers"], batch=s["batch"],
                            ntrain=s["ntrain"], ntest=NTEST, candidates=args.candidates)
    if over:
        raise ValueError(over)
    return s, seed


def check_out(path: str) -> Path:
    """The output folder: it may exist (as a folder) or be creatable; ValueError otherwise.  Creates nothing."""
    out = Path(path)
    for p in [out, *out.parents]:
        if p.exists():
            if not p.is_dir():
                raise ValueError(f"--out: {str(p)!r} is a file, not a folder.")
            break
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        density = density_from_args(args)
        s, seed = settings_from_args(args, density)
        out = check_out(args.out)
    except ValueError as e:
        return fail(str(e))
    chunk = chunk_steps_for(s["layers"], s["batch"], s["method"], HEADLESS_CHUNK_SCALE)
    if args.steps is not None:  # whole chunks: no more than the steps asked for in one
        chunk = max([c for c in CHUNK_CHOICES if c <= min(chunk, args.steps)] or [CHUNK_CHOICES[0]])
    trainer = build_trainer(density, seed=seed, chunk=chunk, ntest=NTEST, **s)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    total = args.steps if args.steps else args.budget

    def progress(t):
        if args.quiet:
            return
        done = min(1.0, t.step / total if args.steps else t.elapsed / total)
        bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
        sys.stderr.write(f"\r[{bar}] {100 * done:5.1f}%  step {t.step:6d}  test NLL {t.evals['test_nll'][-1]:.4f}"
                         f"  KL {t.evals['kl'][-1]:.4f}  {time.perf_counter() - t0:5.1f}s")
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
    write_outputs(out, density, trainer, cands, s)
    return 1 if trainer.divergences and trainer.stopped else 0


def write_outputs(out: Path, d: Density, trainer, cands, settings: dict):
    """model.npz, metrics.csv (per step), metrics.json (summary; the last evaluation row describes the saved
    weights), density.html and density.png (the learned density, for a slide)."""
    config = {"density": d.name, **trainer.config_dict()}
    save_model(out / "model.npz", trainer.spec, trainer.params, trainer.norm, config, d)
    hist = trainer.history_arrays()
    keys = [k for k in hist if k != "step"]
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + keys)
        for i in range(len(hist.get("step", []))):
            w.writerow([int(hist["step"][i])] + [f"{hist[k][i]:.6g}" for k in keys])
    summary = {"density": d.name, "label": d.label, "seed": trainer.seed, "candidates": len(cands), "steps": trainer.step,
               "kept_step": trainer.kept_step, "train_seconds": trainer.elapsed,
               "test_nll": trainer.evals["test_nll"][-1], "kl": trainer.evals["kl"][-1],
               "entropy": d.entropy(), "diverged": [x.message for x in trainer.divergences],
               "evals": {k: v.tolist() for k, v in trainer.evals.arrays().items()},
               "settings": {k: (v if not isinstance(v, float) or np.isfinite(v) else str(v))
                            for k, v in settings.items()}}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    xs, ys, pts = plane_grid(d.plot_range, 160)
    lp = np.asarray(trainer.log_prob(pts))
    title = f"learned density · {d.label} · {settings['method']} · KL {summary['kl']:.3f} nats"
    density_figure(xs, ys, lp, name="q", title=title).write_html(out / "density.html", include_plotlyjs="cdn")
    (out / "density.png").write_bytes(density_picture(lp.reshape(len(ys), len(xs)), density_zmax(d), title))
    print(f"{d.label if d.source else d.name}: {trainer.step} steps in {trainer.elapsed:.1f}s, test NLL {summary['test_nll']:.4f}, "
          f"KL {summary['kl']:.4f} nats -> {out}")
