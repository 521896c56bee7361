"""Figures of the Compare page (and of ``python -m flowlab figure``): pure functions of the numpy ``curves`` dicts
made by ``flowlab.compare.ConvergenceRun.curves()`` (``rate_figure``: the learning-rate sweep; ``convergence_figure``:
the curves cut at one rate per method, ``flowlab.compare.rates.at_rates``) and ``LambdaSweep.curves()``.  Method
colours and labels come from the method registry, every other colour from ``flowlab.plots.style``."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ..compare.rates import best_rates, sweep_rows
from ..compare.summary import band, rate_of
from ..gradients import REGISTRY
from ..settings import COMPARE, OPTIMIZER_LABELS
from .style import ALARM, DENSITY_SCALE, FAINT, FONT, GREY, rgba

TRUTH_COLOR = GREY  # the true density's NLL on the same points
SNF = "self_normalizing"


def _density_label(name: str) -> str:
    return COMPARE["density"].label_of(name)


def _add_band(fig, x, values, color, name, row, col, band_kind, show_legend, group, log=False):
    """Mean line and shaded spread over the inits (NaN = diverged inits, left out).  On a log axis a lower edge at or
    below 0 (mean − std of a skewed quantity) is drawn at the smallest init instead."""
    mean, lo, hi = band(values, band_kind)
    if log:
        lo = np.where(lo > 0, lo, band(values, "minmax")[1])
    x = np.asarray(x, np.float64)
    ok = np.isfinite(mean)
    if not ok.any():
        return
    xs, lo_, hi_ = x[ok], lo[ok], hi[ok]
    fig.add_trace(go.Scatter(x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([hi_, lo_[::-1]]), fill="toself",
                             fillcolor=rgba(color, 0.18), line=dict(width=0), hoverinfo="skip", showlegend=False,
                             legendgroup=group, name=name), row, col)
    fig.add_trace(go.Scatter(x=xs, y=mean[ok], mode="lines", line=dict(color=color, width=2.2), name=name,
                             legendgroup=group, showlegend=show_legend,
                             hovertemplate=f"{name}<br>%{{x:.4g}}: %{{y:.4g}}<extra></extra>"), row, col)


def _add_runs(fig, x, values, color, row, col, group):
    for j in range(values.shape[1]):
        fig.add_trace(go.Scatter(x=x, y=values[:, j], mode="lines", line=dict(color=rgba(color, 0.35), width=0.8),
                                 hoverinfo="skip", showlegend=False, legendgroup=group), row, col)


def _mark_divergence(fig, x_of_iter, d, color, row, col, group, y_top):
    """A red ✕ at the top of the loss panel where an init diverged."""
    div = d["diverged_at"]
    its = div[div >= 0]
    if not len(its):
        return
    xs = [x_of_iter(int(i)) for i in its]
    fig.add_trace(go.Scatter(x=xs, y=[y_top] * len(xs), mode="markers", marker=dict(symbol="x", size=9,
                             color=ALARM, line=dict(width=1, color=color)), legendgroup=group, showlegend=False,
                             hovertemplate="diverged at %{x:.4g}<extra></extra>"), row, col)


def _loss_range(curves) -> tuple[float, float]:
    """y-range of the loss panels: from below the best value (or the truth) to the initial loss, so that an
    exploding init does not flatten everything."""
    vals = np.concatenate([d["loss"].ravel() for d in curves["methods"].values()] if "methods" in curves else
                          [d["loss"].ravel() for d in curves["per_lambda"].values()])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return 0.0, 1.0
    start = max(float(np.nanmedian([d["loss"][0] for d in (curves.get("methods") or curves["per_lambda"]).values()])),
                float(np.percentile(vals, 50)))
    lo = float(vals.min())  # the truth line is drawn only if it falls inside: it must not squash the curves
    hi = max(start, lo + 1e-3)
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + 2 * pad


def convergence_figure(curves: dict, band_kind: str = "std", show_runs: bool = False, height: int | None = None,
                       title: str | None = None) -> go.Figure:
    """Gresele et al. Fig. 1 right, extended.  Top: loss (exact NLL, nats) of every method against the iteration and
    against the wall-clock time of the optimiser steps (all its runs together, compilation excluded), mean and spread
    over the inits; the true density's NLL on the same points as a dashed line.  Bottom (with the self-normalizing
    flow): the angle between its likelihood gradient of W and the exact one (Keller Fig. 3, ``gradients.snf_angle``)
    and ‖R W − I‖, log scale.  Curves cut at one rate per method (``at_rates``) name their rate in the legend."""
    s = curves["settings"]
    methods = curves["methods"]
    snf = SNF in methods
    rows = 2 if snf else 1
    spread = "± 1 std" if band_kind == "std" else "min–max"
    titles = [f"loss per iteration (mean, band {spread} over {s['inits']} inits)",
              "loss vs wall-clock time of the steps"]
    if snf:
        titles += ["self-normalizing: angle to the exact likelihood gradient of W",
                   "self-normalizing: inverse error ‖R W − I‖ (mean over layers)"]
    fig = make_subplots(rows=rows, cols=2, subplot_titles=titles, horizontal_spacing=0.09, vertical_spacing=0.14)
    y0, y1 = _loss_range(curves)
    for m, d in methods.items():
        color, name = REGISTRY[m].color, REGISTRY[m].short
        n_div = int(np.sum(d["diverged_at"] >= 0))
        lr = rate_of(d)  # ValueError for curves of several rates: cut them first (at_rates)
        label = name + (f" · lr {lr:g}" if np.isfinite(lr) else "") + \
            (f" ({n_div}/{len(d['diverged_at'])} diverged)" if n_div else "")
        it, t = d["iteration"].astype(np.float64), d["time"]
        if show_runs:
            _add_runs(fig, it, d["loss"], color, 1, 1, m)
            _add_runs(fig, t, d["loss"], color, 1, 2, m)
        _add_band(fig, it, d["loss"], color, label, 1, 1, band_kind, True, m)
        _add_band(fig, t, d["loss"], color, label, 1, 2, band_kind, False, m)
        _mark_divergence(fig, lambda i: i, d, color, 1, 1, m, y1)
        _mark_divergence(fig, lambda i, d=d: float(np.interp(i, d["iteration"], d["time"])), d, color, 1, 2, m, y1)
        if m == SNF:
            _add_band(fig, it, np.maximum(d["angle"], 1e-4), color, label, 2, 1, band_kind, False, m, log=True)
            _add_band(fig, it[1:], np.maximum(d["inv_err"][1:], 1e-8), color, label, 2, 2, band_kind, False, m,
                      log=True)
    tn = curves.get("true_nll")
    if tn is not None and np.isfinite(tn):
        inside = y0 <= tn <= y1
        if inside:
            for col in (1, 2):
                fig.add_hline(y=tn, line=dict(color=TRUTH_COLOR, dash="dash", width=1.2), row=1, col=col)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=TRUTH_COLOR, dash="dash"),
                                 name=f"true density on these points: {tn:.3f} nats"
                                      + ("" if inside else " (below the axis)")), 1, 1)
    fig.update_yaxes(range=[y0, y1], title_text="NLL (nats)", row=1, col=1)
    fig.update_yaxes(range=[y0, y1], row=1, col=2)
    fig.update_xaxes(title_text="iteration", row=1, col=1)
    fig.update_xaxes(title_text="seconds (optimiser steps only)", row=1, col=2)
    if snf:
        fig.update_yaxes(type="log", dtick=1, title_text="degrees", row=2, col=1)
        fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=2, col=2)
        fig.update_xaxes(title_text="iteration", row=2, col=1)
        fig.update_xaxes(title_text="iteration", row=2, col=2)
    opt = OPTIMIZER_LABELS[s["optimizer"]]
    lam = f", SNF λ = {s['lam']:g} (Keller eq. 3)" if snf else ""
    rate = f"lr {s['lr']:g}" if curves.get("view") != "best" else "each at its best rate (legend)"
    head = title if title is not None else (
        f"{_density_label(s['density'])}, D = {s['dim']}, {s['layers']} layers, {s['points']:,} points (full batch)"
        f"<br><sup>{opt} {rate}{lam} — same {s['inits']} initial weights for every method</sup>")
    fig.update_layout(height=height or (760 if snf else 420), font=FONT, plot_bgcolor="white",
                      title=dict(text=head, x=0.01, font=dict(size=14)),
                      margin=dict(l=60, r=20, t=95, b=90),
                      legend=dict(orientation="h", yanchor="top", y=-0.09 if snf else -0.2, x=0.0))
    fig.update_xaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    return fig


def _lam_label(v: float) -> str:
    return "0" if v == 0 else f"{v:g}"


def lambda_figure(curves: dict, height: int = 420) -> go.Figure:
    """Keller et al. App. A.5 / Table 4 trend on a toy density.  Left: final exact NLL against λ (mean ± std over the
    inits that survived; ✕ and a count k/n where inits failed: diverged, or ended above their starting loss).
    Middle: mean loss per iteration for each λ.  Right: the inverse error ‖R W − I‖ per iteration for each λ (log
    scale)."""
    s = curves["settings"]
    lams = curves["lams"]
    per = curves["per_lambda"]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08,
                        subplot_titles=("final NLL vs λ (✕ k/n: failed inits)", "loss per iteration (mean over inits)",
                                        "‖R W − I‖ per iteration"))
    cols = sample_colorscale(DENSITY_SCALE, [0.9 * i / max(1, len(lams) - 1) for i in range(len(lams))])
    xs, ys, es, div_x, div_text = [], [], [], [], []
    for lam, color in zip(lams, cols):
        d = per[lam]
        final = d["loss"][-1]
        ok = np.isfinite(final)
        lab = _lam_label(lam)
        n_div = int(np.sum(d["diverged_at"] >= 0))
        n_worse = int(np.sum(ok & (final > d["loss"][0])))
        if ok.any():
            xs.append(lab)
            ys.append(float(np.mean(final[ok])))
            es.append(float(np.std(final[ok])))
        if n_div or n_worse:
            div_x.append(lab)
            div_text.append(f"{n_div + n_worse}/{len(final)}")
        mean = band(d["loss"])[0]
        name = f"λ = {lab}" + (f" ({n_div} diverged)" if n_div else "")
        fig.add_trace(go.Scatter(x=d["iteration"], y=mean, mode="lines", line=dict(color=color, width=2), name=name,
                                 legendgroup=lab), 1, 2)
        inv = band(np.maximum(d["inv_err"][1:], 1e-8))[0]
        fig.add_trace(go.Scatter(x=d["iteration"][1:], y=inv, mode="lines", line=dict(color=color, width=2),
                                 name=name, legendgroup=lab, showlegend=False), 1, 3)
    fig.add_trace(go.Scatter(x=xs, y=ys, error_y=dict(type="data", array=es, visible=True), mode="lines+markers",
                             line=dict(color=REGISTRY[SNF].color), marker=dict(size=9), name="final NLL (survivors)",
                             showlegend=False, hovertemplate="λ = %{x}<br>NLL %{y:.4f}<extra></extra>"), 1, 1)
    if div_x:
        top = (max(ys) + max(es) if ys else 1.0)
        fig.add_trace(go.Scatter(x=div_x, y=[top] * len(div_x), mode="markers+text", text=div_text,
                                 textposition="top center", marker=dict(symbol="x", size=12, color=ALARM),
                                 showlegend=False, hoverinfo="skip", textfont=dict(color=ALARM, size=11)), 1, 1)
    tn = curves.get("true_nll")
    y0, y1 = _loss_range(curves)
    if tn is not None and np.isfinite(tn):
        if y0 <= tn <= y1:
            fig.add_hline(y=tn, line=dict(color=TRUTH_COLOR, dash="dash", width=1.2), row=1, col=2,
                          annotation_text=f"true density {tn:.3f}", annotation_position="top right")
        else:
            fig.add_annotation(text=f"true density: {tn:.3f} nats (below the axis)", xref="x2 domain",
                               yref="y2 domain", x=1, y=0.02, showarrow=False, xanchor="right",
                               font=dict(color=TRUTH_COLOR, size=11))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=[_lam_label(v) for v in lams],
                     title_text="λ (Keller eq. 3)", row=1, col=1)
    fig.update_yaxes(title_text="NLL (nats)", row=1, col=1)
    fig.update_xaxes(title_text="iteration", row=1, col=2)
    fig.update_xaxes(title_text="iteration", row=1, col=3)
    fig.update_yaxes(range=[y0, y1], row=1, col=2)
    fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=1, col=3)
    opt = OPTIMIZER_LABELS[s["optimizer"]]
    fig.update_layout(height=height, font=FONT, plot_bgcolor="white", margin=dict(l=60, r=20, t=80, b=100),
                      title=dict(text=f"Self-normalizing flow, λ sweep (Keller's λ, eq. 3): "
                                      f"{_density_label(s['density'])}, {s['layers']} layers, {opt} lr {s['lr']:g}, {s['inits']} shared inits",
                                 x=0.01, font=dict(size=14)),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.0))
    fig.update_xaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    return fig


def _offsets(n: int) -> list[float]:
    """Multipliers that set n methods' markers side by side around a rate on the log axis (±0.12 of a factor 2)."""
    return [2.0 ** (0.12 * (k - (n - 1) / 2)) for k in range(n)]


def rate_figure(curves: dict, height: int = 400) -> go.Figure:
    """The learning-rate sweep of a convergence run: each method's final loss against the learning rate (log axis),
    from the same inits at every rate.  Median over the inits (line; a diverged init counts as +∞, so a rate where
    half of them diverged has none), interquartile range of the others (bars), every init (dots; ▲ above the axis),
    ◯ the best rate (``flowlab.compare.RULE``), ✕ k/n the inits that diverged, the shared rate as a dashed line."""
    s, grid = curves["settings"], [float(r) for r in curves["rates"]]
    rows, best = sweep_rows(curves), best_rates(curves)
    start = float(np.nanmedian([d["loss"][0] for d in curves["methods"].values()]))
    ok = [v for rs in rows.values() for r in rs for v in (r["median"], r["q25"], r["q75"]) if np.isfinite(v)]
    low = min([v for rs in rows.values() for r in rs for v in r["final"] if np.isfinite(v)] + ok + [start])
    hi = min(max(ok), start) if ok else start  # a rate that ends above the start is worse than not training
    pad = 0.06 * max(hi - low, 1e-3)
    methods = list(rows)
    top = hi + pad  # dots above it are drawn on it as ▲; the ✕ rows sit above
    step = 1.3 * pad
    fig = go.Figure()
    for m, off in zip(methods, _offsets(len(methods))):
        color, name = REGISTRY[m].color, REGISTRY[m].short
        xs = [r["rate"] * off for r in rows[m]]
        for x, r in zip(xs, rows[m]):
            f = r["final"][np.isfinite(r["final"])]
            if len(f):
                fig.add_trace(go.Scatter(x=[x] * len(f), y=np.minimum(f, top), mode="markers", showlegend=False,
                                         marker=dict(size=5, color=rgba(color, 0.45),
                                                     symbol=["triangle-up" if v > top else "circle" for v in f]),
                                         legendgroup=m, hovertemplate=f"{name}, lr {r['rate']:g}<br>init final NLL "
                                                                      "%{customdata:.4f}<extra></extra>",
                                         customdata=f))
        med = [r["median"] if np.isfinite(r["median"]) else None for r in rows[m]]
        plus = [r["q75"] - r["median"] if np.isfinite(r["median"]) and np.isfinite(r["q75"]) else 0 for r in rows[m]]
        minus = [r["median"] - r["q25"] if np.isfinite(r["median"]) and np.isfinite(r["q25"]) else 0
                 for r in rows[m]]
        b = best[m]
        label = f"{name}: best lr {b:g}" if b is not None else f"{name}: no rate kept half of the inits"
        fig.add_trace(go.Scatter(x=xs, y=med, mode="lines+markers", line=dict(color=color, width=2.2),
                                 marker=dict(size=7, color=color), name=label, legendgroup=m,
                                 error_y=dict(type="data", array=plus, arrayminus=minus, color=color, thickness=1.2,
                                              width=3),
                                 hovertemplate=f"{name}, lr %{{customdata:g}}<br>median final NLL %{{y:.4f}}"
                                               "<extra></extra>", customdata=[r["rate"] for r in rows[m]]))
        if b is not None:
            r = next(r for r in rows[m] if r["rate"] == b)
            fig.add_trace(go.Scatter(x=[b * off], y=[r["median"]], mode="markers", showlegend=False, legendgroup=m,
                                     marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=color, width=2.5)),
                                     hovertemplate=f"{name}: best lr {b:g}<extra></extra>"))
        k = methods.index(m)
        bad = [(x, r) for x, r in zip(xs, rows[m]) if r["diverged"]]
        if bad:
            fig.add_trace(go.Scatter(x=[x for x, _ in bad], y=[top + step * (k + 1)] * len(bad), mode="markers+text",
                                     text=[f"{r['diverged']}/{r['n']}" for _, r in bad], textposition="middle right",
                                     textfont=dict(color=color, size=10), showlegend=False, legendgroup=m,
                                     marker=dict(symbol="x", size=8, color=ALARM, line=dict(width=1, color=color)),
                                     hovertemplate=f"{name}: %{{text}} inits diverged<extra></extra>"))
    lr = float(s["lr"])
    fig.add_vline(x=lr, line=dict(color=TRUTH_COLOR, dash="dash", width=1.2))
    fig.add_annotation(x=np.log10(lr), y=0, yref="paper", yanchor="bottom", text=f"shared lr {lr:g}",
                       showarrow=False, xanchor="left", xshift=4, font=dict(color=TRUTH_COLOR, size=11))
    it = int(curves.get("iteration", 0))
    fig.update_xaxes(type="log", tickvals=grid, ticktext=[f"{r:g}" for r in grid], title_text="learning rate",
                     range=[np.log10(grid[0]) - 0.2, np.log10(grid[-1]) + 0.3])
    fig.update_yaxes(range=[low - pad, top + step * (len(methods) + 0.8)], title_text="final NLL (nats)")
    fig.update_layout(height=height, font=FONT, plot_bgcolor="white", margin=dict(l=60, r=20, t=75, b=80),
                      title=dict(text=f"Final loss after {it:,} iterations against the learning rate, the same "
                                      f"{s['inits']} inits at every rate<br><sup>median (line) · interquartile range "
                                      "(bars) · each init (dots, ▲ above the axis) · ◯ best rate · ✕ k/n inits "
                                      "diverged</sup>", x=0.01, font=dict(size=14)),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.0))
    fig.update_xaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor=FAINT, zeroline=False)
    return fig
