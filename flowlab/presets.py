"""Every default of FlowLab, as data: the training presets (FlowLab's tuned ones and the paper's, Gresele et al.
2020, App. H.2, Table 2) and the defaults of each page.

A tuned preset is ``DEFAULT`` with the changes of every ``Tuning`` that applies to the (density, method) pair; each
``Tuning`` says why in one line and names the file in ``assets/benchmarks/`` that holds its evidence.  The settings
schema (``flowlab.settings``) takes its defaults from here; the names are the schema's keys."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

ADAM_B2 = 0.999  # Adam's (and the paper's) decay rate of the second-moment average


@dataclass(frozen=True)
class Preset:
    """Training settings of the Playground and the command line."""

    layers: int = 50
    method: str = "relative"
    activation: str = "smooth_leaky_relu"
    lr: float = 1e-2
    batch: int = 1024
    ntrain: int = 100_000
    clip: float = 10.0
    warmup: int = 500
    decay: int = 18_000  # cosine decay of open-ended training; budget runs fit it to the budget
    lam: float = 0.5  # Keller et al.'s λ (eq. 3); 1.0 on the scale FlowLab used before (2λ)
    b2: float = ADAM_B2
    init: str = "orthogonal"
    standardize: bool = True
    why: str = field(default="", compare=False)

    def settings(self) -> dict:
        """The training settings alone (no ``why``)."""
        out = asdict(self)
        out.pop("why")
        return out


SETTING_KEYS = tuple(f.name for f in fields(Preset) if f.name != "why")

DEFAULT = Preset(why="Depth 50 with warm-up and a cosine decay beat the paper's L = 100, batch 100, constant 1e-3 "
                     "within a 60 s budget; lr 1e-2 never diverged in 80 seed-sweep runs "
                     "(assets/benchmarks/seed_sweep_devicecpu_30k.jsonl, seed_sweep_devicecpu_lr_steps.jsonl).")


@dataclass(frozen=True)
class Tuning:
    """Changes to ``DEFAULT`` for one density (None: all), one method (None: all), with the reason and evidence."""

    density: str | None
    method: str | None
    changes: dict
    why: str


TUNINGS: tuple[Tuning, ...] = (
    Tuning(None, None, dict(activation="learned_steps", layers=10, batch=256),
           "Ten layers with learned tanh steps per unit beat fifty fixed smooth leaky ReLU layers in 60 s on one core on "
           "every density tried, though each step costs ~10x more: KL 0.004 / 0.007 / 0.002 on trimodal, moons, sine "
           "and 0.04 / 0.22 / 0.29 / 0.20 / 0.08 on eight Gaussians, rings, checkerboard, two spirals, pinwheel "
           "(relative; 0.012 / 0.27 on eight Gaussians and rings self-normalizing), against 0.04-0.60 with the "
           "fixed activation (assets/benchmarks/learned_activation_cpu.jsonl, quality_cpu.jsonl); twenty layers got "
           "half the steps and did worse (activation_cpu.json: per step, learned steps lower the KL on every "
           "multimodal density). Batch 256 (about twice the steps of 1024) lowered the relative gradient's median KL "
           "on two spirals 0.28 -> 0.14, pinwheel 0.12 -> 0.07, checkerboard 0.27 -> 0.21, eight Gaussians "
           "0.054 -> 0.050 (seeds 0, 1; quality_cpu.jsonl, preset 'tuned batch=256'); sixteen layers did not help "
           "rings or checkerboard ('tuned batch=256 layers=16')."),
    Tuning(None, "self_normalizing", dict(lam=5.0, decay=30_000),
           "With λ = 0.5, 3 of 24 runs lost their learned inverses late (‖RW − I‖ 1e-2 → 30); λ = 5 kept it near "
           "1e-3 (Keller's λ; the file records 1 and 10, twice these, on FlowLab's former scale), and small batches with more steps suit SNF (assets/benchmarks/seed_sweep_devicecpu_30k.jsonl); "
           "open-ended runs reach a lower KL at 30 000 steps with a 30 000-step decay than with 60 000 on trimodal, "
           "moons and sine (assets/benchmarks/live_schedule_cpu.jsonl)."),
    Tuning("moons", None, dict(warmup=1000, init="data"),
           "The data-dependent start lowered the seed spread on moons (KL 0.044–0.095 vs 0.047–0.243 over four "
           "seeds; assets/benchmarks/init_sweep_cpu.jsonl)."),
    Tuning("moons", "relative", dict(decay=25_000),
           "With Adam's β₂ = 0.99 open-ended runs spiked to KL 6 after 15 000 steps, with the default 0.999 and a "
           "25 000-step decay they stayed steady, KL 0.06–0.14 at 30 000 steps on three of four seeds "
           "(assets/benchmarks/live_schedule_cpu.jsonl)."),
    Tuning("sine", "self_normalizing", dict(lam=10.0),
           "Trained open-ended in the Playground, seed 0 with λ = 5 spiked to KL 6 after 10 000 steps (2.7 at 30 s in "
           "the browser; assets/benchmarks/playground_browser_cpu.jsonl); λ = 10 kept both seeds below 0.07 from "
           "10 000 steps on, lr 0.005 did not (assets/benchmarks/live_schedule_cpu.jsonl)."),
    Tuning("rings", "relative", dict(batch=1024),
           "Rings is the one density where batch 256 did worse than 1024 (median KL 0.28 vs 0.23 over seeds 0, 1; "
           "assets/benchmarks/quality_cpu.jsonl)."),
)


def _applies(t: Tuning, density: str | None, method: str) -> bool:
    return (t.density is None or t.density == density) and (t.method is None or t.method == method)


def tunings(density: str | None, method: str | None = None) -> list[Tuning]:
    """The tunings that make ``tuned(density, method)``, in the order they apply: per density, then per method,
    then per (density, method) pair (the more specific one wins)."""
    method = method or DEFAULT.method
    found = [t for t in TUNINGS if _applies(t, density, method)]
    return sorted(found, key=lambda t: (t.method is not None, t.density is not None and t.method is not None))


def tuned(density: str | None, method: str | None = None) -> Preset:
    """FlowLab's tuned settings for ``density`` with ``method`` (the default method when None)."""
    p = replace(DEFAULT, method=method or DEFAULT.method)
    applied = tunings(density, p.method)
    for t in applied:
        p = replace(p, **t.changes)
    return replace(p, why=" ".join(t.why for t in applied) or DEFAULT.why)


_KINDS = {int: "a whole number", float: "a number", str: "a name"}


def changes(pairs) -> dict:
    """``KEY=VALUE`` strings (a benchmark's sweep) as changes to a preset, each value of the type of ``DEFAULT``'s;
    ValueError naming the pair for an unknown key or a value of the wrong type."""
    out = {}
    for pair in pairs or ():
        key, _, value = str(pair).partition("=")
        if key not in SETTING_KEYS or not value:
            raise ValueError(f"A change is KEY=VALUE with KEY one of {', '.join(SETTING_KEYS)}; got {pair!r}.")
        kind = type(getattr(DEFAULT, key))
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{key} is true or false; got {value!r}.")
            out[key] = value.lower() == "true"
        else:
            try:
                out[key] = kind(value)
            except ValueError:
                raise ValueError(f"{key} is {_KINDS.get(kind, kind.__name__)}; got {value!r}.") from None
    return out


def defaults(density: str | None, method: str | None = None) -> dict:
    """``tuned(density, method).settings()``: build_trainer keyword arguments."""
    return tuned(density, method).settings()


# ---- the paper's settings (Gresele et al. 2020, App. H.2, Table 2) ---------------------------------------------------
@dataclass(frozen=True)
class PaperRow:
    lr: float
    epochs: int


PAPER: dict[str, PaperRow] = {"trimodal": PaperRow(1e-3, 2000), "moons": PaperRow(1e-3, 1300),
                              "sine": PaperRow(5e-3, 4000)}
PAPER_LAYERS, PAPER_BATCH, PAPER_TRAIN_SIZE = 100, 100, 5000


def paper(density: str) -> Preset:
    """The paper's settings taken literally: Table 2's depth, batch and learning rate, 5000 training points, a
    constant learning rate, no clipping, no warm-up, no standardisation, Adam's default β₂, the relative gradient
    and orthogonal weights.  ValueError for a density the paper does not use."""
    if density not in PAPER:
        raise ValueError(f"The paper gives settings only for {', '.join(PAPER)}; {density!r} has none.")
    return replace(DEFAULT, layers=PAPER_LAYERS, batch=PAPER_BATCH, lr=PAPER[density].lr, ntrain=PAPER_TRAIN_SIZE,
                   clip=math.inf, warmup=0, decay=0, b2=ADAM_B2, init="orthogonal", method="relative",
                   standardize=False, why=f"Gresele et al. 2020, Table 2 ({density}).")


def paper_steps(density: str) -> int:
    """Optimiser steps of the paper's run: epochs × training points / batch."""
    return PAPER[density].epochs * PAPER_TRAIN_SIZE // PAPER_BATCH


# ---- small models trained by other pages ---------------------------------------------------------------------------
LAYERS_SMALL = replace(tuned(None, "relative"), ntrain=5000, init="orthogonal",
                       why="The Layers page's own model: the tuned preset (learned tanh steps) on 5 000 points for a few "
                           "seconds, enough to show the layers' deformations (its KL is printed next to it). On moons, "
                           "10 layers, 3 000 steps: KL 0.28 in 5 s, against 1.19 in 2 s with the fixed smooth leaky "
                           "ReLU it used before (100 layers, 600 steps: 1.21 vs 1.64).")
LAYERS_SMALL_STEPS = 3000  # optimiser steps up to 12 layers; deeper flows get fewer (layerviz.models.small_steps)
LINEAR_LESSON = replace(DEFAULT, layers=1, standardize=False, warmup=0, clip=10.0, init="orthogonal", b2=ADAM_B2,
                        lam=0.5, lr=0.05, batch=256,
                        why="Lesson 6's affine flow on raw data, Adam with a cosine decay over the chosen steps.")

# ---- defaults of the other pages -------------------------------------------------------------------------------------
PLAYGROUND_DENSITY = "moons"
PLAYGROUND_EXTRA = dict(seed=0, contour=False, source="toy", text="FLOW", invert=False, bandwidth=0.15)  # Playground settings beyond training

COMPARE_LR = {"sgd": 0.02, "adam": 0.005}  # a stable rate for each optimiser on the toy densities
# the learning-rate sweep of each optimiser, ×2 apart: brackets every method's best rate on trimodal and moons with
# gradient descent (500 iterations, 10 inits; the run of `python -m flowlab figure convergence`); Adam's ordinary
# gradient on moons still improves at its largest rate, and the page says so
COMPARE_RATES = {"sgd": (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64), "adam": (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16)}
COMPARE = dict(density="trimodal", dim=2, layers=2, optimizer="sgd", lr=COMPARE_LR["sgd"],
               rates=COMPARE_RATES["sgd"], inits=10, iters=500,
               points=1000, methods=("inverse", "relative", "self_normalizing"), lam=0.5, seed=0,
               activation="smooth_leaky_relu", init="orthogonal", eval_every=0, curves="best")
LAMBDA_SWEEP = (0.0, 0.005, 0.05, 0.5, 5.0, 50.0)  # Keller's λ; the former 2λ scale's 0, 0.01, ..., 100

LAYERS = dict(density="moons", layers=10, points=600, split=False, follow=True)

# The page's live grid: the recorded CPU grid's D inside the slope window (from 512; on 1024 – 2896 alone the recorded
# CPU slopes are 2.37 relative vs 2.30 exact, on 512 – 2896 1.99 vs 2.56: timing_cpu.json), up to the largest D at
# which the exact gradient fits a 512 MB session (flowlab.budget; its estimate: at most about 70 s).
TIMING_LIVE_DIMS = (512, 728, 1024, 1448, 2048, 2896)
# When a live run may replace the recorded headline (flowlab.benchmark.stability): repeats per point, D in the slope
# window, the speed-up's range factor and each slope's range width over the middle half of the repeats, and the load
# average at the start per core (a busy machine times the other work too).
TIMING_STABLE = dict(repeats=5, dims=3, ratio=1.5, slope=0.5, load_per_core=1.0)
TIMING_FIT_RANGE = (512, 4096)  # D window of the headline slope: past the fixed call overheads of small D
TIMING_MAX_DIM = {"cpu": 4096, "accelerator": 16384}  # largest D of the full grid (the CLI's default)
TIMING = dict(dims=TIMING_LIVE_DIMS, methods=("relative", "exact"), batch=100,
              layers=2, repeats=5, cap=30.0, seed=0)
