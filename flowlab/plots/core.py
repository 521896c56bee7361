"""Figures shared by pages and the CLI: density heatmaps, sample scatters, training curves."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DENSITY_SCALE = "Viridis"
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def grid(plot_range, n: int = 160):
    """Regular n x n grid over ((x0, x1), (y0, y1)): returns xs (n,), ys (n,), points (n*n, 2) row-major in y."""
    (x0, x1), (y0, y1) = plot_range
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], axis=1)


def density_figure(xs, ys, logp, title: str = "", contour: bool = False, samples=None, height: int = 420,
                   zmax=None) -> go.Figure:
    """Heatmap of p = exp(log p) on the grid (log p given as (len(ys), len(xs)) or flat), optional contours and
    sample overlay.  Non-finite log p (outside the support) shows as zero density."""
    lp = np.asarray(logp, dtype=np.float64).reshape(len(ys), len(xs))
    p = np.where(np.isfinite(lp), np.exp(np.clip(lp, -700, 50)), 0.0)
    zmax = float(np.nanmax(p)) if zmax is None else zmax
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=p, colorscale=DENSITY_SCALE, zmin=0.0, zmax=zmax or 1.0,
                               colorbar=dict(title="p(x)", thickness=12), hovertemplate="x=%{x:.2f}<br>y=%{y:.2f}"
                               "<br>p=%{z:.3g}<extra></extra>"))
    if contour:
        fig.add_trace(go.Contour(x=xs, y=ys, z=p, showscale=False, contours_coloring="none", ncontours=8,
                                 line=dict(color="white", width=1), hoverinfo="skip"))
    if samples is not None:
        s = np.asarray(samples)
        fig.add_trace(go.Scattergl(x=s[:, 0], y=s[:, 1], mode="markers", marker=dict(size=3, color="white",
                                   opacity=0.6), name="samples", hoverinfo="skip"))
    return _square(fig, xs, ys, title, height)


def scatter_figure(points, plot_range, title: str = "", color: str = "#3b5bdb", height: int = 420,
                   name: str = "samples") -> go.Figure:
    s = np.asarray(points)
    fig = go.Figure(go.Scattergl(x=s[:, 0], y=s[:, 1], mode="markers", name=name,
                                 marker=dict(size=3, color=color, opacity=0.5)))
    (x0, x1), (y0, y1) = plot_range
    return _square(fig, np.array([x0, x1]), np.array([y0, y1]), title, height)


def _square(fig, xs, ys, title, height):
    fig.update_layout(title=dict(text=title, x=0.02), height=height, margin=dict(l=10, r=10, t=40 if title else 10,
                      b=10), font=FONT, showlegend=False, plot_bgcolor="white")
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False, zeroline=False)
    return fig


def curves_figure(history: dict, evals: dict, entropy: float | None = None, height: int = 360,
                  smooth: int = 50) -> go.Figure:
    """Training loss (per step, smoothed), test NLL and KL (per chunk) against step; true entropy H(p) as a line
    (the NLL floor: NLL = H(p) + KL)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("negative log-likelihood (nats)", "KL(p‖q) (nats, log)"))
    step = np.asarray(history.get("step", []))
    loss = np.asarray(history.get("loss", []))
    if len(loss):
        k = max(1, min(smooth, len(loss) // 5 or 1))
        sm = np.convolve(loss, np.ones(k) / k, mode="valid")
        fig.add_trace(go.Scatter(x=step[k - 1:], y=sm, name="train loss", line=dict(color="#adb5bd")), 1, 1)
    es = np.asarray(evals.get("step", []))
    if len(es):
        fig.add_trace(go.Scatter(x=es, y=evals["test_nll"], name="test NLL", mode="lines+markers",
                                 line=dict(color="#3b5bdb"), marker=dict(size=4)), 1, 1)
        kl = np.asarray(evals.get("kl", []), dtype=float)
        if np.any(np.isfinite(kl)):
            fig.add_trace(go.Scatter(x=es, y=np.maximum(kl, 1e-4), name="KL", mode="lines+markers",
                                     line=dict(color="#e8590c"), marker=dict(size=4)), 1, 2)
            fig.update_yaxes(type="log", row=1, col=2)
    if entropy is not None:
        fig.add_hline(y=entropy, line=dict(color="#2b8a3e", dash="dash"), annotation_text=f"entropy H(p) = "
                      f"{entropy:.3f}", annotation_position="top right", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT,
                      legend=dict(orientation="h", y=-0.2), plot_bgcolor="white")
    fig.update_xaxes(title_text="step", gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    return fig
