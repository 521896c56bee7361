"""Figures for the Timing page: pure functions from ``flowlab.benchmark.BenchResult`` objects to go.Figure.

Every figure takes a list of runs; the first is drawn solid (the live run, or the one in focus), the others dotted and
lighter (recorded runs), with each gradient method in its registry colour and short name throughout."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..benchmark.config import FIT_RANGE
from ..benchmark.result import HEADLINE
from ..benchmark.stability import quartiles
from ..gradients import REGISTRY, by_cost
from .style import AMBER, DARK_GREY, FONT, GREY, GRID, RULE

DASHES = ("solid", "dot", "dash", "dashdot", "longdash")
DASH_NAMES = {"solid": "solid", "dot": "dotted", "dash": "dashed", "dashdot": "dash-dot", "longdash": "long dashes"}


def _color(method: str) -> str:
    """The registry's colour of a method; grey for a name a recorded file has and this version does not know."""
    return REGISTRY[method].color if method in REGISTRY else GREY


def _short(method: str) -> str:
    return REGISTRY[method].short if method in REGISTRY else method


def _style(fig: go.Figure, height: int, title: str) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=44, b=10), font=FONT, plot_bgcolor="white",
                      title=dict(text=title, x=0.01, font=dict(size=15)), hovermode="closest",
                      legend=dict(font=dict(size=12), bgcolor="rgba(255,255,255,0.85)", tracegroupgap=2))
    fig.update_xaxes(gridcolor=GRID, zeroline=False, showline=True, linecolor=RULE)
    fig.update_yaxes(gridcolor=GRID, zeroline=False, showline=True, linecolor=RULE)
    return fig


def _dim_ticks(fig: go.Figure, dims) -> None:
    dims = sorted({int(d) for d in dims})
    if not dims:
        return
    lo, hi = math.log2(dims[0]), math.log2(dims[-1])
    ticks = [2 ** k for k in range(int(math.floor(lo)), int(math.ceil(hi)) + 1)]
    fig.update_xaxes(type="log", title_text="dimension D", tickvals=ticks, ticktext=[str(t) for t in ticks])


def _line(i: int):
    """(width, opacity, dash) of run i: the focus run solid, the others thinner, lighter and dotted/dashed."""
    return (2.6, 1.0, "solid") if i == 0 else (1.6, 0.6, DASHES[1 + (i - 1) % 4])


def _run_name(run) -> str:
    return "live run" if run.meta.get("live") else f"recorded: {run.label}"


def _run_legend(fig: go.Figure, runs) -> None:
    """With several runs, one legend entry per run explains its line style; the per-method entries (colours) are
    the focus run's only, so the legend stays short."""
    if len(runs) < 2:
        return
    for i, run in enumerate(runs):
        width, _, dash = _line(i)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{DASH_NAMES[dash]}: {_run_name(run)}",
                                 line=dict(color=DARK_GREY, width=width, dash=dash), legendgroup="runs",
                                 hoverinfo="skip"))


def _method_trace(i: int, run, m: str, x, y, name: str, hover: str, legend: bool = True) -> go.Scatter:
    width, opacity, dash = _line(i)
    tag = f" ({_run_name(run)})"
    return go.Scatter(x=x, y=y, mode="lines+markers", name=name, opacity=opacity, showlegend=legend,
                      line=dict(color=_color(m), width=width, dash=dash),
                      marker=dict(size=6 if i == 0 else 4), legendgroup=m,
                      hovertemplate=f"{_short(m)}{tag}<br>D=%{{x}}<br>{hover}<extra></extra>")


def _first(fig: go.Figure, method: str) -> bool:
    """True if no trace of ``method`` has a legend entry in ``fig`` yet (one entry per colour)."""
    return not any(t.legendgroup == method and t.showlegend is not False for t in fig.data)


def _bottom_legend(fig: go.Figure) -> None:
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0, xanchor="left"),
                      margin=dict(b=10))


def _empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color=GREY))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _slope_text(run, method: str, fit_range) -> str:
    s = run.slopes(fit_range)[method]
    lo, hi = s["window_range"]
    if np.isfinite(s["window"]):
        return f"slope {s['window']:.2f} on D∈[{lo:g}, {hi:g}]"
    if np.isfinite(s["upper"]):
        return f"slope {s['upper']:.2f} (larger half of D)"
    return "one point"


def time_figure(runs, fit_range=None, height: int = 560, reference_lines: bool = True) -> go.Figure:
    """Milliseconds per gradient evaluation against D on log-log axes, fitted slope in each legend entry, a cross
    where a method was stopped, and grey reference lines ∝ D² and ∝ D³ through the focus run's data."""
    runs = [r for r in runs if r is not None]
    fig = go.Figure()
    title = "time of one gradient evaluation (forward + backward)"
    if not runs or not any(len(r.series(m)[0]) for r in runs for m in r.methods):
        return _style(_empty(fig, "no measured points yet — press Run, or pick a recorded run"), height, title)
    all_d, all_t = [], []
    for i, run in enumerate(runs):
        opacity = _line(i)[1]
        stopped = run.stopped()
        for m in run.methods:
            d, t = run.series(m)
            if not len(d):
                continue
            all_d += d.tolist()
            all_t += t.tolist()
            col = _color(m)
            slope = _slope_text(run, m, fit_range)
            name = f"{_short(m)} — {slope}" if i == 0 else _short(m)
            fig.add_trace(_method_trace(i, run, m, d, t * 1e3, name, f"%{{y:.3g}} ms<br>{slope}",
                                        _first(fig, m)))
            if m in stopped:
                s_ = stopped[m]
                fig.add_trace(go.Scatter(x=[d[-1]], y=[t[-1] * 1e3], mode="markers", showlegend=False,
                                         opacity=opacity, legendgroup=m,
                                         marker=dict(symbol="x-thin", size=14, line=dict(width=3, color=col)),
                                         hovertemplate=f"{_short(m)} stopped after D={int(d[-1])}: "
                                                       f"{s_['note']}<extra></extra>"))
    _run_legend(fig, runs)
    if reference_lines and all_d:
        _reference_lines(fig, runs[0], all_d)
    _dim_ticks(fig, all_d)
    fig.update_yaxes(type="log", title_text="milliseconds per evaluation (median)",
                     range=_log_range(np.asarray(all_t) * 1e3))
    _style(fig, height, title)
    _bottom_legend(fig)  # up to a dozen entries: beside the plot they would squeeze it on a narrow screen
    return fig


def _reference_lines(fig: go.Figure, run, all_d) -> None:
    """∝ D² through the last point of the first measured method of cost order 2 in run order (relative, else
    self-normalizing; else the cheapest method), ∝ D³ through the last point of the first of order 3 (exact, else
    inverse, ...; else the dearest method), over the whole D range (orders from the method registry)."""
    ends = {}
    for m in run.methods:
        d, t = run.series(m)
        if len(d):
            ends[m] = (d[-1], t[-1])
    if not ends:
        return
    x = np.array([min(all_d), max(all_d)], dtype=float)
    known = by_cost(m for m in ends if m in REGISTRY)
    cheap = next((ends[m] for m in known if REGISTRY[m].order == 2),
                 min(ends.values(), key=lambda e: e[1] / e[0] ** 2))
    dear = next((ends[m] for m in known if REGISTRY[m].order == 3),
                max(ends.values(), key=lambda e: e[1] / e[0] ** 3))
    for power, (d0, t0), label in ((2, cheap, "∝ D² (reference)"), (3, dear, "∝ D³ (reference)")):
        fig.add_trace(go.Scatter(x=x, y=t0 * 1e3 * (x / d0) ** power, mode="lines", name=label,
                                 line=dict(color=GREY if power == 2 else DARK_GREY, width=1.2,
                                           dash="dash" if power == 2 else "dot"),
                                 hoverinfo="skip", legendgroup="ref", opacity=0.8))


def guide_anchor(run, methods=HEADLINE, fit_range=None) -> int | None:
    """The D through which the guides of ``pair_figure`` pass: the smallest D inside the fit window where every one of
    ``methods`` was measured, else the smallest such D anywhere; None when they share none."""
    common = sorted(set.intersection(*(set(run.series(m)[0].tolist()) for m in methods)))
    if not common:
        return None
    lo, hi = fit_range or run.meta.get("fit_range") or FIT_RANGE
    inside = [d for d in common if lo <= d <= hi]
    return int((inside or common)[0])


def pair_figure(runs, methods=HEADLINE, fit_range=None, height: int = 440) -> go.Figure:
    """The lesson in two lines: milliseconds per gradient evaluation of the relative and the exact gradient against D
    (log-log), each point the median with the middle half of its repeats (25th–75th percentile) as an error bar, and
    dashed guides ∝ D² and ∝ D³ through the first run's relative and exact points at ``guide_anchor``'s D, so the
    measured lines can be read against the cost orders O(B·D²) and O(D³).  Further runs are drawn dotted and
    lighter, without guides."""
    runs = [r for r in runs if r is not None]
    fig = go.Figure()
    title = f"{' vs '.join(_short(m) for m in methods)}: time of one gradient evaluation"
    drawn = [(i, r) for i, r in enumerate(runs) if any(len(r.series(m)[0]) for m in methods)]
    if not drawn:
        return _style(_empty(fig, f"no {' or '.join(_short(m) for m in methods)} points yet"), height, title)
    all_d, all_t = [], []
    for i, run in drawn:
        for m in methods:
            pts = run.ok(m)
            if not pts:
                continue
            d = np.array([p.dim for p in pts], dtype=float)
            t = np.array([p.time_s for p in pts]) * 1e3
            q = np.array([quartiles(p.times_s or [p.time_s]) for p in pts]) * 1e3
            all_d += d.tolist()
            all_t += q.ravel().tolist()
            tr = _method_trace(i, run, m, d, t, _short(m), "%{y:.3g} ms (median)", _first(fig, m))
            tr.update(error_y=dict(type="data", symmetric=False, array=q[:, 1] - t, arrayminus=t - q[:, 0],
                                   color=_color(m), thickness=1.2, width=4))
            fig.add_trace(tr)
    _run_legend(fig, [r for _, r in drawn])
    focus = drawn[0][1]
    anchor = guide_anchor(focus, methods, fit_range)
    y_range = _log_range(all_t)
    if anchor is not None:
        x = np.array([min(all_d), max(all_d)], dtype=float)
        for m, power, color in ((methods[0], 2, GREY), (methods[-1], 3, DARK_GREY)):
            d, t = focus.series(m)
            t0 = float(t[d.tolist().index(anchor)]) * 1e3
            sup = "²" if power == 2 else "³"
            fig.add_trace(go.Scatter(x=x, y=t0 * (x / anchor) ** power, mode="lines", legendgroup="guides",
                                     name=f"∝ D{sup} through {_short(m)} at D = {anchor}",
                                     line=dict(color=color, width=1.3, dash="dash"), hoverinfo="skip"))
            # the guide's name on the line itself, at its right end or where it leaves the top of the axis
            x_end = min(x[1], anchor * 10 ** ((y_range[1] - math.log10(t0)) / power) / 1.15)
            fig.add_annotation(x=math.log10(x_end), y=math.log10(t0 * (x_end / anchor) ** power), text=f"∝ D{sup}",
                               showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=13, color=color))
    _dim_ticks(fig, all_d)
    fig.update_yaxes(type="log", title_text="milliseconds per evaluation", range=y_range)
    _style(fig, height, f"{title}<br><span style='font-size:12px;color:{DARK_GREY}'>{_run_name(focus)}</span>")
    # the legend in the empty upper left (both lines rise to the right), so the plot keeps the full width
    fig.update_layout(margin=dict(t=60), legend=dict(x=0.01, y=0.99, xanchor="left", yanchor="top",
                                                     bordercolor=RULE, borderwidth=1))
    return fig


def _log_range(values, pad: float = 0.15):
    """y-axis range (log10 units) that fits the measured values, so reference lines are clipped, not followed."""
    v = np.log10(np.asarray([x for x in values if x > 0], dtype=float))
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, 0.5)
    return [lo - pad * span, hi + pad * span]


def speedup_figure(runs, reference: str = "exact", height: int = 380, goal: tuple | None = None) -> go.Figure:
    """How many times faster than ``reference`` each method is, against D (log-log); 1× drawn as a line.
    ``goal`` = (D, ratio) marks a target."""
    runs = [r for r in runs if r is not None]
    fig = go.Figure()
    title = f"speed-up over the {_short(reference)} gradient"
    dims = []
    for i, run in enumerate(runs):
        for m, (d, r) in run.speedups(reference).items():
            if m == reference or not len(d):
                continue
            dims += d.tolist()
            fig.add_trace(_method_trace(i, run, m, d, r, _short(m), "%{y:.3g}× faster", _first(fig, m)))
    _run_legend(fig, runs)
    if not dims:
        return _style(_empty(fig, f"needs the {_short(reference)} method and one other, measured at "
                                  "the same D"), height, title)
    fig.add_hline(y=1.0, line=dict(color=GREY, width=1, dash="dash"))
    if goal is not None:
        fig.add_trace(go.Scatter(x=[goal[0]], y=[goal[1]], mode="markers", name=f"goal: {goal[1]:g}× at D={goal[0]}",
                                 marker=dict(symbol="star", size=13, color=AMBER, line=dict(width=1, color=DARK_GREY))))
        dims.append(goal[0])
    _dim_ticks(fig, dims)
    fig.update_yaxes(type="log", title_text=f"t({reference}) / t(method)")
    _style(fig, height, title)
    _bottom_legend(fig)
    return fig


def memory_figure(runs, height: int = 380) -> go.Figure:
    """Compiled memory footprint (arguments + outputs + temporaries) of one evaluation against D (log-log)."""
    runs = [r for r in runs if r is not None]
    fig = go.Figure()
    title = "memory of one evaluation (compiled footprint)"
    dims = []
    for i, run in enumerate(runs):
        for m in run.methods:
            d, b = run.memory_series(m)
            if not len(d):
                continue
            dims += d.tolist()
            fig.add_trace(_method_trace(i, run, m, d, b / 2 ** 20, _short(m), "%{y:.4g} MiB", _first(fig, m)))
    _run_legend(fig, runs)
    if not dims:
        return _style(_empty(fig, "no memory figures (this backend gives no memory analysis)"), height, title)
    _dim_ticks(fig, dims)
    fig.update_yaxes(type="log", title_text="MiB")
    _style(fig, height, title)
    _bottom_legend(fig)
    return fig


def results_table(run) -> list:
    """Rows for a table: one per (method, D) with time, speed-up, memory and status (plain dicts, for st.dataframe)."""
    sp = {m: dict(zip(d.tolist(), r.tolist())) for m, (d, r) in run.speedups().items()}
    rows = []
    for p in sorted(run.points, key=lambda p: (p.dim, run.methods.index(p.method))):
        r = sp.get(p.method, {}).get(float(p.dim))
        rows.append({"D": p.dim, "method": _short(p.method), "status": p.status,
                     "ms / evaluation": None if p.time_s is None else round(p.time_s * 1e3, 4),
                     "× faster than exact": None if r is None else round(r, 2),
                     "memory (MiB)": None if not p.mem_bytes else round(p.mem_bytes / 2 ** 20, 2),
                     "repeats": len(p.times_s) or None, "note": p.note})
    return rows
