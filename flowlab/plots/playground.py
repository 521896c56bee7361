"""Figures of the Playground page: target samples, learned density, flow samples, live curves, truth comparison."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .core import density_figure, log_ticks, square_layout
from .style import BLUE, DENSITY_SCALE, DIVERGING_SCALE, FONT, GREEN, GRID, LABEL_COLORS, LIGHT_GREY, ORANGE


def points_figure(points, plot_range, title: str = "", labels=None, color: str = BLUE,
                  height: int = 340) -> go.Figure:
    """Scatter of 2-D points on ``plot_range``; with integer ``labels`` each mode/arm gets its own colour."""
    s = np.asarray(points, np.float64)
    # one trace per mode/arm with a single colour: a per-point colour list is slow to serialise on every redraw.
    # SVG, not WebGL: a live page redraws these several times a second and browsers cap WebGL contexts (~16).
    groups = [(s, color)] if labels is None else [
        (s[np.asarray(labels) == i], LABEL_COLORS[int(i) % len(LABEL_COLORS)]) for i in np.unique(labels)]
    fig = go.Figure([go.Scatter(x=g[:, 0], y=g[:, 1], mode="markers", hoverinfo="skip",
                                marker=dict(size=3, color=c, opacity=0.55)) for g, c in groups])
    (x0, x1), (y0, y1) = plot_range
    return square_layout(fig, np.array([x0, x1]), np.array([y0, y1]), title, height)


def learned_figure(xs, ys, logp, title: str = "", contour: bool = False, height: int = 340,
                   zmax: float | None = None) -> go.Figure:
    """Heatmap of the learned density exp(log q) on the grid (optionally with contour lines); ``zmax`` fixes the top
    of the colour scale, so it does not jump from redraw to redraw."""
    return density_figure(xs, ys, logp, title=title, contour=contour, height=height, name="q", zmax=zmax)


def live_curves_figure(history: dict, evals: dict, entropy: float | None = None, show_kl: bool = True,
                       height: int = 300, smooth: int = 50) -> go.Figure:
    """Training loss (smoothed per step), test NLL (per chunk) with the true entropy H(p) marked (the NLL floor)
    and, when the truth is known, KL(p‖q) on a log axis.  Without ``show_kl`` a single NLL panel is drawn."""
    cols = 2 if show_kl else 1
    titles = ("negative log-likelihood (nats)", "KL(p‖q) to the truth (nats)")[:cols]
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.1)
    step = np.asarray(history.get("step", []), np.float64)
    loss = np.asarray(history.get("loss", []), np.float64)
    if len(loss):
        k = max(1, min(smooth, len(loss) // 5 or 1))
        sm = np.convolve(loss, np.ones(k) / k, mode="valid")
        # at most ~600 points to keep redraws cheap
        idx = np.unique(np.linspace(0, len(sm) - 1, min(len(sm), 600)).astype(int))
        fig.add_trace(go.Scatter(x=step[k - 1:][idx], y=sm[idx], name="train loss (smoothed)",
                                 line=dict(color=LIGHT_GREY)), 1, 1)
    es = np.asarray(evals.get("step", []), np.float64)
    if len(es):
        mode = "lines+markers" if len(es) < 3 else "lines"  # one evaluation is a point, not a line: mark it
        nll = np.asarray(evals.get("test_nll", []), np.float64)
        fig.add_trace(go.Scatter(x=es, y=nll, name="test NLL", mode=mode, line=dict(color=BLUE)), 1, 1)
        kl = np.asarray(evals.get("kl", []), np.float64)
        if show_kl and np.any(np.isfinite(kl)):
            kv = np.maximum(kl, 1e-4)
            fig.add_trace(go.Scatter(x=es, y=kv, name="KL(p‖q)", mode=mode, line=dict(color=ORANGE)), 1, 2)
            tv, tt = log_ticks(kv)
            if not tv:  # one value or a very narrow span (first chunks): show a factor of 2 either side, labelled
                fin = kv[np.isfinite(kv)]
                lo, hi = float(fin.min()) / 2, float(fin.max()) * 2
                tv, tt = log_ticks([lo, hi])
                fig.update_yaxes(range=[math.log10(lo), math.log10(hi)], row=1, col=2)
            if tv:
                fig.update_yaxes(tickvals=tv, ticktext=tt, row=1, col=2)
        # keep the NLL axis on the interesting part: from the floor to a bit above the median of recent values
        vals = np.concatenate([nll[np.isfinite(nll)], [entropy] if entropy is not None else []])
        if len(vals):
            lo = float(np.min(vals))
            hi = float(np.percentile(nll[np.isfinite(nll)], 90)) if np.any(np.isfinite(nll)) else lo + 1
            pad = max(0.1, 0.08 * (hi - lo))
            fig.update_yaxes(range=[lo - pad, hi + pad], row=1, col=1)
    if show_kl:
        fig.update_yaxes(type="log", row=1, col=2)
    if entropy is not None:
        fig.add_hline(y=entropy, line=dict(color=GREEN, dash="dash"), row=1, col=1,
                      annotation_text=f"true entropy H(p) = {entropy:.3f}", annotation_position="bottom right",
                      annotation_font=dict(color=GREEN, size=12))
    # the legend sits in the NLL panel's top right corner, where the falling curves leave room
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, plot_bgcolor="white",
                      legend=dict(x=0.45 if show_kl else 1.0, y=1.0, xanchor="right", yanchor="top",
                                  bgcolor="rgba(255,255,255,0.75)", font=dict(size=11)), uirevision="curves")
    fig.update_xaxes(title_text="optimiser step", gridcolor=GRID)
    if show_kl:  # both panels over the same steps (and zoom together)
        fig.update_xaxes(matches="x", row=1, col=2)
    fig.update_yaxes(gridcolor=GRID)
    return fig


def compare_figure(xs, ys, true_logp, learned_logp, kl: float | None = None, height: int = 420,
                   integrand: bool = False) -> go.Figure:
    """True density and learned density side by side, on one colour scale (the larger of the two maxima); with
    ``integrand``, a third panel of p(x)·(log p(x) − log q(x)), whose integral is KL(p‖q): red where q puts too little
    mass, blue where too much (on a symmetric scale)."""
    def grid(lp):
        return np.asarray(lp, np.float64).reshape(len(ys), len(xs))

    def dens(lp):
        lp = grid(lp)
        return np.where(np.isfinite(lp), np.exp(np.clip(lp, -700, 50)), 0.0)

    pt, pq = dens(true_logp), dens(learned_logp)
    zmax = float(max(np.max(pt), np.max(pq))) or 1.0
    right = "learned q(x)" + (f" · KL(p‖q) = {kl:.3f} nats" if kl is not None and np.isfinite(kl) else "")
    titles = ("true p(x)", right) + (("p·(log p − log q): where the KL comes from",) if integrand else ())
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    bar = dict(title="density", thickness=12, **({"x": 0.655} if integrand else {}))  # left of the third panel
    shared = dict(zmin=0, zmax=zmax, colorscale=DENSITY_SCALE, colorbar=bar)
    panels = [(1, pt, dict(shared, showscale=False)), (2, pq, dict(shared, showscale=True))]
    if integrand:
        with np.errstate(invalid="ignore"):  # p = 0 where log p = -inf: no contribution
            gap = np.where(pt > 0, pt * (grid(true_logp) - np.clip(grid(learned_logp), -700, 50)), 0.0)
        top = float(np.max(np.abs(gap))) or 1.0
        panels.append((3, gap, dict(zmin=-top, zmax=top, colorscale=DIVERGING_SCALE, showscale=True,
                                    colorbar=dict(title="nats·density", thickness=12))))
    for col, z, style in panels:
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, hovertemplate="x=%{x:.2f}<br>y=%{y:.2f}<br>%{z:.3g}<extra></extra>",
                                 **style), 1, col)
        fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], constrain="domain", showgrid=False, row=1, col=col)
        fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], scaleanchor="x" if col == 1 else f"x{col}",
                         scaleratio=1, showgrid=False, row=1, col=col)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT, plot_bgcolor="white")
    return fig
