"""Compact pictures for the live panels: a density on a grid as a small PNG in the palette's colour scale, and point
sets as packed float32.  A browser draws these on a canvas in a millisecond or two, where a plotly heatmap and SVG
scatter of the same data take a large part of a CPU core at several redraws a second (assets/benchmarks/RESULTS.md)."""
from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
from PIL import Image
from plotly.colors import sample_colorscale, unlabel_rgb

from ..densities import get_density
from ..layerviz.grids import plane_grid
from .style import DENSITY_SCALE


@lru_cache(maxsize=8)
def colour_table(scale: str = DENSITY_SCALE, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB: the plotly colour scale ``scale`` sampled at n evenly spaced points."""
    cols = sample_colorscale(scale, [i / (n - 1) for i in range(n)], colortype="rgb")
    return np.array([unlabel_rgb(c) for c in cols], dtype=np.float64).round().astype(np.uint8)


def density_png(logp, zmax: float, scale: str = DENSITY_SCALE) -> str:
    """A data URI of a PNG of p = exp(log p) (rows = y ascending, as on a grid from ``plane_grid``), coloured from 0
    (the scale's first colour) to ``zmax`` (its last; larger values saturate).  The image's first row is the top, so
    y is flipped."""
    lp = np.asarray(logp, np.float64)
    p = np.where(np.isfinite(lp), np.exp(np.clip(lp, -700.0, 50.0)), 0.0)
    idx = np.clip(np.round(p / max(float(zmax), 1e-300) * 255.0), 0, 255).astype(np.uint8)
    rgb = colour_table(scale)[idx[::-1]]
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pack_points(points, max_points: int | None = None) -> str:
    """(N, 2) points as base64 of little-endian float32 x0, y0, x1, y1, ... (non-finite rows dropped; at most
    ``max_points``, the first ones)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if max_points is not None:
        p = p[:max_points]
    return base64.b64encode(p.astype("<f4").tobytes()).decode("ascii")


def pack_labels(labels) -> str:
    """Integer group labels (0..255) as base64 bytes, one per point."""
    return base64.b64encode(np.asarray(labels, np.uint8).tobytes()).decode("ascii")


@lru_cache(maxsize=32)
def density_zmax(density, n: int = 64) -> float:
    """The top of a density's fixed colour scale: 1.15 × the largest value of the true p on the plot grid (the
    learned density is drawn on the same scale at every redraw, so the colours do not jump)."""
    d = get_density(density)
    _, _, pts = plane_grid(d.plot_range, n)
    lp = np.asarray(d.log_prob(pts.astype(np.float32)), np.float64)
    return 1.15 * float(np.exp(np.max(lp[np.isfinite(lp)])))
