"""Named training settings: FlowLab's tuned defaults and the paper's (Gresele et al. 2020, App. H.2, Table 2).

The paper's toy experiments: Adam, batch 100, L = 100, s_L with alpha = 0.3, biases, 5000 training samples;
learning rate 1e-3 (MoG, moons) or 5e-3 (sine), 2000 / 1300 / 4000 epochs.  FlowLab's defaults were found by the
sweep in ``benchmarks/tune_defaults.py``; see the README for the measured KL within a 60 s budget.
"""
from __future__ import annotations

PAPER = {
    "trimodal": dict(layers=100, batch_size=100, lr=1e-3, activation="smooth_leaky_relu", alpha=0.3, epochs=2000),
    "moons": dict(layers=100, batch_size=100, lr=1e-3, activation="smooth_leaky_relu", alpha=0.3, epochs=1300),
    "sine": dict(layers=100, batch_size=100, lr=5e-3, activation="smooth_leaky_relu", alpha=0.3, epochs=4000),
}
PAPER_TRAIN_SIZE = 5000

# Shared FlowLab defaults (overridden per density below where the sweep found better settings).
DEFAULT = dict(layers=20, batch_size=256, lr=3e-3, activation="smooth_leaky_relu", alpha=0.3, clip=10.0, warmup=200,
               lam=1.0, method="relative")
TUNED: dict[str, dict] = {}


def defaults(density: str) -> dict:
    """FlowLab's tuned settings for ``density`` (shared defaults where none were tuned)."""
    return {**DEFAULT, **TUNED.get(density, {})}


def paper(density: str) -> dict:
    """The paper's settings for one of its three densities; ValueError for the others."""
    if density not in PAPER:
        raise ValueError(f"The paper gives settings only for {', '.join(PAPER)}; {density!r} has none.")
    return dict(PAPER[density])
