"""What the Layers page shows of a path: which stages and depths (deep flows are subsampled by layer), square plot
ranges, point subsets, and the legend names of the point groups."""
from __future__ import annotations

import math

import numpy as np

from .paths import Path

SUBSAMPLE_FROM = 50  # from this depth on, the views show a subset of the layers
MAX_PANELS = 12  # small multiples: at most this many depths (x and z included)
MAX_PANELS_SPLIT = 6  # small multiples with the affine step shown separately: each depth gives two panels
MAX_FRAMES = SUBSAMPLE_FROM  # animation: all depths of flows with fewer than SUBSAMPLE_FROM layers
MAX_FRAMES_SPLIT = 26  # animation with y_k and h_k as separate stages (two frames per layer)


# ---- stages and depths -------------------------------------------------------------------------------------------
def pick_stages(n_stages: int, max_shown: int) -> list[int]:
    """Indices of at most ``max_shown`` stages out of ``n_stages``, evenly spread, always with the first and last."""
    n, m = int(n_stages), int(max_shown)
    if n < 1:
        raise ValueError("Need at least one stage.")
    if m < 2:
        raise ValueError("Show at least 2 stages (the first and the last).")
    if n <= m:
        return list(range(n))
    idx = np.unique(np.round(np.linspace(0, n - 1, m)).astype(int))
    return [int(i) for i in idx]


def pick_depths(layers: int, max_shown: int) -> list[int]:
    """Depths j in 0..L (h_j after j layers; 0 = the input) to show: all of them when there are at most
    ``max_shown``, otherwise every s-th layer with the smallest stride s that fits, plus always the output (L)."""
    L, m = int(layers), int(max_shown)
    if m < 2:
        raise ValueError("Show at least 2 depths (the input and the output).")
    if L + 1 <= m:
        return list(range(L + 1))
    stride = max(1, math.ceil(L / (m - 1)))
    d = list(range(0, L + 1, stride))
    if d[-1] != L:
        if len(d) >= m:
            d = d[:m - 1]
        d.append(L)
    return d


def take(path: Path, idx) -> Path:
    """The stages idx of a path."""
    idx = [int(i) for i in idx]
    return Path(path.values[idx], tuple(path.names[i] for i in idx), tuple(path.layer[i] for i in idx),
                tuple(path.kind[i] for i in idx), tuple(path.depth[i] for i in idx))


def select_stages(path: Path, depths) -> Path:
    """The stages of ``path`` that belong to the given depths (y_k travels with h_k; x with h_0), in path order."""
    keep = set(int(d) for d in depths)
    return take(path, [i for i, d in enumerate(path.depth) if d in keep])


def without_kind(path: Path, kind: str) -> Path:
    """The path without the stages of one kind (e.g. "h0": the standardised input looks just like x)."""
    return take(path, [i for i, k in enumerate(path.kind) if k != kind])


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def view_depths(layers: int, max_shown: int) -> tuple[list[int], str | None]:
    """Depths to show and, when layers were left out, one sentence saying which."""
    L = int(layers)
    d = pick_depths(L, max_shown)
    if len(d) == L + 1:
        return d, None
    s = d[1] - d[0]
    return d, (f"{L} layers: showing every {s}{_ordinal_suffix(s)} layer and the last one ({len(d) - 1} of {L}); "
               "the volume-change chart has all layers.")


# ---- ranges and point subsets ---------------------------------------------------------------------------------------
def square_range(points, q: float = 1.0, margin: float = 0.12):
    """A square plot range around the central (100 - 2q) % of the points, widened by ``margin`` of its size:
    ((x0, x1), (y0, y1)) with x1 - x0 == y1 - y0 (the plane is drawn with equal scales)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = np.percentile(p, q, axis=0), np.percentile(p, 100 - q, axis=0)
    c = 0.5 * (lo + hi)
    half = 0.5 * max(float(np.max(hi - lo)), 1e-6) * (1.0 + 2.0 * margin)
    return (float(c[0] - half), float(c[0] + half)), (float(c[1] - half), float(c[1] + half))


def stage_ranges(points_path: Path, follow: bool) -> list:
    """Square plot range per stage: around each stage's own points (``follow``) or the first stage's for all."""
    vals = points_path.values
    if follow:
        return [square_range(v, q=1.0, margin=0.15) for v in vals]
    return [square_range(vals[0], q=1.0, margin=0.15)] * len(vals)


def span(r) -> float:
    """Width of a plot range ((x0, x1), (y0, y1))."""
    return float(r[0][1] - r[0][0])


def subsample(n: int, max_n: int, seed: int = 0) -> np.ndarray:
    """Indices of at most max_n of n rows, a fixed random subset (same seed -> same rows), in increasing order."""
    if n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_n, replace=False))


def count_nonfinite(points) -> int:
    """How many rows of ``points`` (N, D) hold a NaN or an infinity (e.g. where a flow's inverse overflowed)."""
    return int(np.sum(~np.all(np.isfinite(np.asarray(points)), axis=1)))


# ---- legend names ---------------------------------------------------------------------------------------------------
LABEL_NOUN = {"trimodal": "mode", "moons": "moon", "sine": "quarter of x₁", "eight_gaussians": "mode",
              "rings": "ring", "two_spirals": "spiral", "checkerboard": "square", "pinwheel": "arm",
              "banana": "quarter of x₁"}  # what densities.sample_labeled's label counts, per density
ANGLE_NOUN = "angle of z"  # points sampled from the flow: coloured by the angle sector of their base point


def sector_names(n: int = 8) -> list[str]:
    """Legend names of the angle sectors of angle_sectors(z, n): 'z at 0–45°', ..."""
    w = 360 / n
    return [f"z at {i * w:.0f}–{(i + 1) * w:.0f}°" for i in range(n)]


def label_names(density: str | None, labels, noun: str | None = None) -> list[str]:
    """Legend names for integer labels 0..max: e.g. 'moon 1', 'moon 2' (or the angle sectors of z)."""
    if noun == ANGLE_NOUN:
        return sector_names()
    noun = noun or LABEL_NOUN.get(density or "", "group")
    n = int(np.max(labels)) + 1 if labels is not None and len(labels) else 0
    return [f"{noun} {i + 1}" for i in range(n)]
