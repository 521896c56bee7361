"""Figures shared by pages and the CLI: density heatmaps, sample scatters, training curves."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .style import DENSITY_SCALE, FONT


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
    return square_layout(fig, xs, ys, title, height)


def square_layout(fig, xs, ys, title, height):
    """Equal-aspect axes over the grid's range, a small title and tight margins."""
    fig.update_layout(title=dict(text=title, x=0.02), height=height, margin=dict(l=10, r=10, t=40 if title else 10,
                      b=10), font=FONT, showlegend=False, plot_bgcolor="white")
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False, zeroline=False)
    return fig


MANTISSAS = ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


def log_ticks(values):
    """Tick values and labels for a log axis spanning ``values``: the coarsest of 1-2-5, 1-1.5-2-3-5-7 or a finer
    series that puts at least three ticks inside the data's range, written as plain numbers (plotly's own minor
    labels on short log ranges are single digits that read as the wrong numbers).  ([], []) when even the finest
    series gives fewer than two ticks: leave the axis to plotly."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return [], []
    vmin, vmax = float(v.min()), float(v.max())
    lo, hi = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
    ticks = []
    for mantissas in MANTISSAS:
        ticks = [float(f"{m * 10.0 ** e:.6g}") for e in range(lo, hi + 1) for m in mantissas
                 if vmin * 0.999 <= m * 10.0 ** e <= vmax * 1.001]
        if len(ticks) >= 3:
            break
    if len(ticks) < 2:
        return [], []
    return ticks, [f"{t:g}" for t in ticks]
