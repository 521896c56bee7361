"""Figures shared by pages and the CLI: density heatmaps, sample scatters, training curves."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

DENSITY_SCALE = "Viridis"
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def grid(plot_range, n: int = 160):
    """Regular n x n grid over ((x0, x1), (y0, y1)): returns xs (n,), ys (n,), points (n*n, 2) row-major in y."""
    (x0, x1), (y0, y1) = plot_range
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], axis=1)


def density_figure(xs, ys, logp, title: str = "", contour: bool = False, samples=None, height: int = 420,
                   zmax=None, name: str = "p") -> go.Figure:
    """Heatmap of p = exp(log p) on the grid (log p given as (len(ys), len(xs)) or flat), optional contours and
    sample overlay.  Non-finite log p (outside the support) shows as zero density; ``name`` labels the colour bar
    and hover ("q" for a learned density)."""
    lp = np.asarray(logp, dtype=np.float64).reshape(len(ys), len(xs))
    p = np.where(np.isfinite(lp), np.exp(np.clip(lp, -700, 50)), 0.0)
    zmax = float(np.nanmax(p)) if zmax is None else zmax
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=p, colorscale=DENSITY_SCALE, zmin=0.0, zmax=zmax or 1.0,
                               colorbar=dict(title=f"{name}(x)", thickness=12),
                               hovertemplate=f"x=%{{x:.2f}}<br>y=%{{y:.2f}}<br>{name}=%{{z:.3g}}<extra></extra>"))
    if contour:
        fig.add_trace(go.Contour(x=xs, y=ys, z=p, showscale=False, contours_coloring="none", ncontours=8,
                                 line=dict(color="white", width=1), hoverinfo="skip"))
    if samples is not None:
        s = np.asarray(samples)
        fig.add_trace(go.Scattergl(x=s[:, 0], y=s[:, 1], mode="markers", marker=dict(size=3, color="white",
                                   opacity=0.6), name="samples", hoverinfo="skip"))
    return _square(fig, xs, ys, title, height)


def _square(fig, xs, ys, title, height):
    fig.update_layout(title=dict(text=title, x=0.02), height=height, margin=dict(l=10, r=10, t=40 if title else 10,
                      b=10), font=FONT, showlegend=False, plot_bgcolor="white")
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False, zeroline=False)
    return fig


def log_ticks(values, per_decade=(1, 2, 5)):
    """Tick values and labels for a log axis covering ``values``: 1-2-5 steps per decade, written as plain numbers
    (plotly's own minor labels on short log ranges are single digits that read as the wrong numbers)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return [], []
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    ticks = [m * 10.0 ** e for e in range(lo, hi + 1) for m in per_decade if v.min() / 1.5 <= m * 10.0 ** e <= v.max() * 1.5]
    if len(ticks) < 2:
        ticks = [10.0 ** lo, 10.0 ** hi] if hi > lo else [10.0 ** lo, 10.0 ** (lo + 1)]
    return ticks, [f"{t:g}" for t in ticks]
