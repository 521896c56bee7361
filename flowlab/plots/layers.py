"""Figures of the Layers page: points and grid lines followed through the layers (small multiples and an animation
over depth), the per-layer volume change over depth, and the local log-det of one layer over a plane.

Pure builders: arrays in (``flowlab.layerviz.Path``, ``LogdetSplit``, ``Field``), ``go.Figure`` out."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..layerviz.paths import Path
from ..layerviz.views import span, stage_ranges
from ..layerviz.volume import Field, LogdetSplit
from .style import (BLUE, BORDER, DARK, DARK_GREY, DIVERGING_SCALE, FAINT, FONT, GREY, GRID_LINE_COLORS,
                    LABEL_COLORS, LIGHT_GREY, ORANGE, rgba)

POINT_COLOR = BLUE  # points without groups
# The log-det field's colours (DIVERGING_SCALE: red above 0, blue below), said once: log q(x) = log N(z) + Σ_k (layer
# k's log|det|), so a positive log-det (the normalising map stretches a small patch into a larger one) adds to log q.
FIELD_COLORBAR = "log|det|<br>red: raises q(x)<br>blue: lowers it"
FIELD_LEGEND = ("Red (log|det| > 0): the map x → z stretches a small patch there into a larger one, and since "
                "log q(x) = log N(z) + log|det ∂z/∂x| adds each layer's log|det|, this raises the learned density q(x) "
                "there by that many nats. Blue (< 0): the map squeezes the patch and lowers q(x). Dots are the data "
                "points in the same plane.")
W_COLOR, ACT_COLOR, TOTAL_COLOR = BLUE, ORANGE, DARK  # log|det W_k|, Σ log s′, their sum


def _lines_xy(lines) -> tuple[np.ndarray, np.ndarray]:
    """(M, P, 2) polylines -> one x and one y array with NaN breaks between the lines (one trace draws them all)."""
    a = np.asarray(lines, np.float64)
    M, P, _ = a.shape
    gap = np.full((M, 1, 2), np.nan)
    b = np.concatenate([a, gap], axis=1).reshape(M * (P + 1), 2)
    b[~np.all(np.isfinite(b), axis=1)] = np.nan
    return b[:, 0], b[:, 1]


def _groups(labels, n):
    """Index arrays per label (or one group holding everything)."""
    if labels is None:
        return [np.arange(n)]
    lab = np.asarray(labels)
    return [np.flatnonzero(lab == g) for g in range(int(lab.max()) + 1)] if len(lab) else [np.arange(n)]


def _stage_traces(points, lines, n_first, labels, names, show_legend, marker_size=4, line_width=1.0):
    """The traces of one stage: the two grid-line families, then one scatter per point group (fixed order, so frames
    and panels line up trace by trace)."""
    out = []
    fams = (None, None) if lines is None else (lines[:n_first], lines[n_first:])
    for i, ln in enumerate(fams):
        if ln is None or len(ln) == 0:
            x = y = np.array([np.nan])
        else:
            x, y = _lines_xy(ln)
        out.append(go.Scatter(x=x, y=y, mode="lines", hoverinfo="skip", showlegend=False,
                              line=dict(color=GRID_LINE_COLORS[i], width=line_width)))
    pts = np.asarray(points, np.float64)
    groups = _groups(labels, len(pts))
    for g, idx in enumerate(groups):
        color = LABEL_COLORS[g % len(LABEL_COLORS)] if labels is not None else POINT_COLOR
        name = names[g] if names and g < len(names) else "data"
        out.append(go.Scatter(x=pts[idx, 0], y=pts[idx, 1], mode="markers", name=name, legendgroup=name,
                              showlegend=show_legend, hoverinfo="skip",
                              marker=dict(size=marker_size, color=color, opacity=0.75, line=dict(width=0))))
    return out


def _zoom_text(r, r0) -> str:
    """Liao & He Fig. 3's 'N×': the shown width relative to the first panel's."""
    z = span(r) / span(r0) if span(r0) > 0 else 1.0
    return f"{z:.2g}×" if z < 100 else f"{z:.3g}×"


def stages_figure(points_path: Path, lines_path: Path | None, n_first: int = 0, labels=None, label_names=None,
                  follow: bool = True, cols: int = 6, panel_height: int = 230, title: str = "") -> go.Figure:
    """Small multiples: one square panel per stage with the points (coloured by group) and the grid lines.
    With ``follow`` each panel's axes fit that stage's points; the panel title gives the zoom relative to the first
    panel (Liao & He Fig. 3)."""
    n = len(points_path.names)
    rows = math.ceil(n / max(1, cols))
    cols = math.ceil(n / rows)  # balanced rows: 7 panels as 4 + 3, not 6 + 1
    ranges = stage_ranges(points_path, follow)
    titles = [f"{nm}<br><span style='font-size:11px;color:{GREY}'>view {_zoom_text(r, ranges[0])}</span>"
              for nm, r in zip(points_path.names, ranges)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.025,
                        vertical_spacing=0.16 / rows if rows > 1 else 0.1)
    for i in range(n):
        r, c = i // cols + 1, i % cols + 1
        lines = None if lines_path is None else lines_path.values[i]
        for tr in _stage_traces(points_path.values[i], lines, n_first, labels, label_names, show_legend=i == 0,
                                marker_size=3, line_width=0.8):
            fig.add_trace(tr, r, c)
        (x0, x1), (y0, y1) = ranges[i]
        ax = "x" if i == 0 else f"x{i + 1}"
        fig.update_xaxes(range=[x0, x1], showticklabels=False, showgrid=False, zeroline=False, constrain="domain",
                         showline=True, linecolor=BORDER, mirror=True, row=r, col=c)
        fig.update_yaxes(range=[y0, y1], scaleanchor=ax, scaleratio=1, showticklabels=False, showgrid=False,
                         zeroline=False, constrain="domain", showline=True, linecolor=BORDER, mirror=True,
                         row=r, col=c)
    for a in fig.layout.annotations:
        a.font = dict(size=12)
    total = panel_height * rows + 110
    fig.update_layout(height=total, margin=dict(l=10, r=10, t=60 if title else 40, b=60), font=FONT,
                      plot_bgcolor="white", title=dict(text=title, x=0.01) if title else None,
                      legend=dict(orientation="h", y=-12 / total, x=0, xanchor="left", yanchor="top",
                                  itemsizing="constant"))
    return fig


def animation_figure(points_path: Path, lines_path: Path | None, n_first: int = 0, labels=None, label_names=None,
                     follow: bool = True, height: int = 600, frame_ms: int = 700, title_prefix: str = "") -> go.Figure:
    """One square panel animated over depth (plotly frames), with a slider naming each stage and Play / Pause.
    With ``follow`` the axes move to each stage's range."""
    n = len(points_path.names)
    ranges = stage_ranges(points_path, follow)

    def traces(i):
        lines = None if lines_path is None else lines_path.values[i]
        return _stage_traces(points_path.values[i], lines, n_first, labels, label_names, show_legend=True)

    def title(i):
        return (f"{title_prefix}<b>{points_path.names[i]}</b> · stage {i + 1} of {n} · "
                f"<span style='color:{GREY}'>view width {_zoom_text(ranges[i], ranges[0])} stage 1's</span>")

    def axes(i):
        (x0, x1), (y0, y1) = ranges[i]
        return dict(xaxis=dict(range=[x0, x1]), yaxis=dict(range=[y0, y1]))

    frames = [go.Frame(data=traces(i), name=str(i), layout=dict(title=dict(text=title(i)), **axes(i)))
              for i in range(n)]
    fig = go.Figure(data=traces(0), frames=frames)
    play = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=int(frame_ms * 0.6),
                easing="cubic-in-out"), fromcurrent=True, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    steps = [dict(method="animate", label=_short(points_path.names[i]),
                  args=[[str(i)], dict(frame=dict(duration=0, redraw=True), transition=dict(duration=300),
                                       mode="immediate")]) for i in range(n)]
    (x0, x1), (y0, y1) = ranges[0]
    fig.update_layout(
        height=height, font=FONT, plot_bgcolor="white", margin=dict(l=10, r=10, t=50, b=120),
        title=dict(text=title(0), x=0.01),
        xaxis=dict(range=[x0, x1], constrain="domain", showgrid=False, zeroline=False, showline=True,
                   linecolor=BORDER, mirror=True),
        yaxis=dict(range=[y0, y1], scaleanchor="x", scaleratio=1, constrain="domain", showgrid=False,
                   zeroline=False, showline=True, linecolor=BORDER, mirror=True),
        legend=dict(orientation="v", x=1.01, y=1, itemsizing="constant"),
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.2, xanchor="left", yanchor="top",
                          pad=dict(t=0, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="Pause", method="animate", args=[[None], pause])])],
        sliders=[dict(active=0, steps=steps, x=0, len=1, y=-0.06, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(visible=False), ticklen=3, font=dict(size=12),
                      transition=dict(duration=300))],
    )
    return fig


def _short(name: str) -> str:
    """Slider tick label: the symbol before the first space or '=' (h₃, y₂, x, z)."""
    s = str(name).split(" (")[0]
    if s.startswith("z = "):
        return "z"
    return s.split(" = ")[0].split(" ")[0]


def logdet_depth_figure(split: LogdetSplit, height: int = 620) -> go.Figure:
    """Per-layer volume change over depth (Liao & He Fig. 4c; Gresele et al. eq. 9).

    Top: per layer k the data-independent log|det W_k| and the data-dependent Σ_i log s'(y_k,i) (mean over the
    points, whiskers: 10th–90th percentile), stacked, with their sum.  Bottom: the cumulative mean log|det ∂h_k/∂x|
    from the input (k = 0: the standardisation alone) to z (k = L) with its 10–90 % band."""
    L = len(split.weights)
    k = np.arange(1, L + 1)
    act = np.asarray(split.act, np.float64)
    am = act.mean(axis=1)
    lo, hi = np.percentile(act, 10, axis=1), np.percentile(act, 90, axis=1)
    total = split.weights + am
    fig = make_subplots(rows=2, cols=1, shared_xaxes=False, vertical_spacing=0.2, row_heights=[0.55, 0.45],
                        subplot_titles=("volume change of each layer: log|det ∂h<sub>k</sub>/∂h<sub>k−1</sub>|"
                                        " (> 0 expands, < 0 contracts)",
                                        "accumulated: log|det ∂h<sub>k</sub>/∂x| after k layers "
                                        "(k = 0: the standardisation alone)"))
    fig.add_trace(go.Bar(x=k, y=split.weights, name="log|det W<sub>k</sub>|  (data-independent)",
                         marker_color=W_COLOR, opacity=0.85,
                         hovertemplate="layer %{x}<br>log|det W| = %{y:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=k, y=am, name="Σ<sub>i</sub> log s′(y<sub>k,i</sub>)  (data-dependent, mean; whiskers "
                                         "10–90 %)",
                         marker_color=ACT_COLOR, opacity=0.85,
                         error_y=dict(type="data", symmetric=False, array=hi - am, arrayminus=am - lo,
                                      color=DARK_GREY, thickness=1, width=2 if L <= 40 else 0),
                         hovertemplate="layer %{x}<br>mean Σ log s' = %{y:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=k, y=total, name="layer total (mean)", mode="lines+markers" if L <= 60 else "lines",
                             line=dict(color=TOTAL_COLOR, width=1.5), marker=dict(size=5),
                             hovertemplate="layer %{x}<br>total = %{y:.3f}<extra></extra>"), 1, 1)
    per_point = split.norm + np.concatenate([np.zeros((1, act.shape[1])),
                                             np.cumsum(split.weights[:, None] + act, axis=0)])
    kk = np.arange(0, L + 1)
    c_lo, c_hi = np.percentile(per_point, 10, axis=1), np.percentile(per_point, 90, axis=1)
    fig.add_trace(go.Scatter(x=np.concatenate([kk, kk[::-1]]), y=np.concatenate([c_hi, c_lo[::-1]]), fill="toself", mode="lines",
                             fillcolor=rgba(BLUE, 0.15), line=dict(width=0), hoverinfo="skip",
                             name="10–90 % of the points", showlegend=True), 2, 1)
    fig.add_trace(go.Scatter(x=kk, y=per_point.mean(axis=1), mode="lines+markers" if L <= 60 else "lines",
                             name="mean log|det ∂h<sub>k</sub>/∂x|", line=dict(color=W_COLOR, width=2),
                             marker=dict(size=5),
                             hovertemplate="after %{x} layers<br>mean log|det| = %{y:.3f}<extra></extra>"), 2, 1)
    for r in (1, 2):
        fig.add_hline(y=0, line=dict(color=LIGHT_GREY, width=1), row=r, col=1)
    fig.update_layout(barmode="relative", bargap=0.15 if L <= 60 else 0.0, height=height, font=FONT,
                      plot_bgcolor="white", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", x=0, y=-0.13, yanchor="top"))
    fig.update_xaxes(gridcolor=FAINT, title_text="layer k", row=1, col=1)
    fig.update_xaxes(gridcolor=FAINT, row=2, col=1)
    fig.update_yaxes(gridcolor=FAINT, title_text="nats", zeroline=False)
    for a in fig.layout.annotations:
        a.font = dict(size=13)
    return fig


def field_title(k: int, plane: str, cumulative: bool = False) -> str:
    """Title of a ``logdet_field`` figure: which map's log-det (layer k alone, or x -> h_k) over which plane."""
    what = f"log|det ∂h<sub>{k}</sub>/∂x|" if cumulative else f"log|det ∂h<sub>{k}</sub>/∂h<sub>{k - 1}</sub>|"
    where = " over the data plane x" if plane == "x" else f" over layer {k}'s input plane h<sub>{k - 1}</sub>"
    return what + where


def logdet_field_figure(field: Field, title: str = "", height: int = 480, show_points: bool = True) -> go.Figure:
    """Heatmap of a local log-det field, diverging around 0 (``FIELD_LEGEND``: red, log|det| > 0, raises q(x); blue
    lowers it), with the data points (in the same plane) on top."""
    z = np.asarray(field.z, np.float64)
    finite = z[np.isfinite(z)]
    m = float(np.max(np.abs(finite))) if len(finite) else 1.0
    m = m if m > 1e-9 else 1.0
    fig = go.Figure(go.Heatmap(x=field.xs, y=field.ys, z=z, colorscale=DIVERGING_SCALE, zmid=0.0,
                               zmin=-m, zmax=m, colorbar=dict(title=FIELD_COLORBAR, thickness=12),
                               hovertemplate="(%{x:.2f}, %{y:.2f})<br>log|det| = %{z:.3f}<extra></extra>"))
    if show_points and field.points is not None and len(field.points):
        p = np.asarray(field.points)
        fig.add_trace(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", hoverinfo="skip", name="data",
                                 marker=dict(size=3, color=DARK, opacity=0.45)))
    fig.update_layout(title=dict(text=title, x=0.01), height=height, font=FONT, plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=50 if title else 10, b=10), showlegend=False)
    fig.update_xaxes(range=[float(field.xs[0]), float(field.xs[-1])], constrain="domain", showgrid=False,
                     zeroline=False)
    fig.update_yaxes(range=[float(field.ys[0]), float(field.ys[-1])], scaleanchor="x", scaleratio=1,
                     constrain="domain", showgrid=False, zeroline=False)
    return fig


__all__ = ["stages_figure", "animation_figure", "logdet_depth_figure", "logdet_field_figure", "field_title",
           "FIELD_LEGEND", "FIELD_COLORBAR"]
