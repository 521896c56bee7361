"""Figures for the Learn page: pure functions from the dicts of ``flowlab.lessons`` / ``flowlab.theory`` to go.Figure."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import BLUE, FAINT, FONT, GREEN, GREY, GRID, LABEL_COLORS, LIGHT_GREY, ORANGE, PURPLE, RED, rgba


LEGEND_ON_TOP = dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom")  # clear of the x-axis title
LEGEND_INSIDE = dict(orientation="v", x=0.01, y=0.99, xanchor="left", yanchor="top", bgcolor=rgba(FAINT, 0.85))


def _style(fig, height, legend=True, at: str = "top", y: float = 1.02, top: int = 40):
    """Shared layout.  The legend sits above the plot area (``at="top"``, raised to ``y`` over subplot titles, with
    ``top`` pixels of margin) or inside its top-left corner (``"inside"``, for figures with a title and curves that
    rise to the right): never over an x-axis title."""
    leg = dict(LEGEND_ON_TOP, y=y) if at == "top" else dict(LEGEND_INSIDE)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=top, b=10), font=FONT, plot_bgcolor="white",
                      showlegend=legend, legend=leg)
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


# ---- lesson 1 ---------------------------------------------------------------------------------------------------------
def change_of_variables_figure(r: dict, map_label: str = "f", height: int = 380) -> go.Figure:
    """Left: p_X with a histogram of samples.  Middle: the map z = f(x).  Right: p_Z = p_X |dx/dz| with a histogram
    of f(samples), and the factor |dx/dz| (dashed, right axis)."""
    fig = make_subplots(rows=1, cols=3, specs=[[{}, {}, {"secondary_y": True}]], horizontal_spacing=0.08,
                        subplot_titles=("input density p_X(x)", f"map z = f(x): {map_label}",
                                        "output density p_Z(z) = p_X(x)·|dx/dz|"))
    xs = r["x_samples"]
    fig.add_trace(go.Histogram(x=xs, histnorm="probability density", nbinsx=60, marker_color=LIGHT_GREY, opacity=0.6,
                               name="histogram of samples"), 1, 1)
    fig.add_trace(go.Scatter(x=r["x"], y=r["px"], line=dict(color=BLUE, width=2.5), name="formula"), 1, 1)
    fig.add_trace(go.Scatter(x=r["x"], y=r["z"], line=dict(color=PURPLE, width=2.5), name="z = f(x)",
                             showlegend=False), 1, 2)
    e = r["edges"]
    fig.add_trace(go.Bar(x=0.5 * (e[1:] + e[:-1]), y=r["hist_density"], width=np.diff(e), marker_color=LIGHT_GREY,
                         opacity=0.6, showlegend=False, name="histogram of f(samples)"), 1, 3)
    lo, hi = e[0] - 0.05 * (e[-1] - e[0]), e[-1] + 0.05 * (e[-1] - e[0])
    keep = (r["z"] >= lo) & (r["z"] <= hi)
    fig.add_trace(go.Scatter(x=r["z"][keep], y=r["pz"][keep], line=dict(color=BLUE, width=2.5), showlegend=False,
                             name="p_Z"), 1, 3)
    fig.add_trace(go.Scatter(x=r["z"][keep], y=r["dxdz"][keep], line=dict(color=ORANGE, dash="dash"),
                             name="|dx/dz| (right axis)"), 1, 3, secondary_y=True)
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_xaxes(title_text="x", row=1, col=2)
    fig.update_yaxes(title_text="z", row=1, col=2)
    fig.update_xaxes(title_text="z", range=[lo, hi], row=1, col=3)
    top = 1.15 * float(np.max(r["dxdz"][keep])) if keep.any() else 1.0
    fig.update_yaxes(title_text="|dx/dz|", range=[0, top], tickmode="auto", nticks=5, row=1, col=3, secondary_y=True,
                     showgrid=False,
                     title_font=dict(color=ORANGE), tickfont=dict(color=ORANGE))
    fig.update_layout(bargap=0)
    fig.update_annotations(font_size=13)
    return _style(fig, height, y=1.14, top=80)


# ---- lesson 2 ---------------------------------------------------------------------------------------------------------
def _ellipse(cov, k, n=200):
    lam, V = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, n)
    c = np.stack([np.cos(t), np.sin(t)], axis=1)
    return k * c @ (V * np.sqrt(np.maximum(lam, 0))).T


def linear_map_figure(r: dict, height: int = 430) -> go.Figure:
    """Left: the unit circle and its image under A (the ellipse), with the images of e1, e2.  Right: samples of the
    Gaussian x = A u, u ~ N(0, I), with its 1σ and 2σ contours of N(0, A Aᵀ)."""
    A, el = r["A"], r["ellipse"]
    lim = max(1.3, 1.15 * float(np.abs(el).max()))
    lim2 = max(lim, 3.0 * float(np.sqrt(np.linalg.eigvalsh(r["cov"]).max())))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"unit circle → ellipse: area × {abs(r['det']):.3f} = |det A|",
                                        "induced Gaussian  x = A u ~ N(0, A Aᵀ)"))
    c = np.vstack([r["circle"], r["circle"][:1]])
    e = np.vstack([el, el[:1]])
    fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], fill="toself", fillcolor=rgba(LIGHT_GREY, 0.25),
                             line=dict(color=LIGHT_GREY, width=2), name="unit circle (area π)"), 1, 1)
    fig.add_trace(go.Scatter(x=e[:, 0], y=e[:, 1], fill="toself",
                             fillcolor=rgba(BLUE, 0.18) if r["det"] >= 0 else rgba(RED, 0.18),
                             line=dict(color=BLUE if r["det"] >= 0 else RED, width=2.5),
                             name="image A·circle" + (" (orientation flipped: det < 0)" if r["det"] < 0 else "")), 1, 1)
    for j, (col, lab) in enumerate(((ORANGE, "A e₁"), (GREEN, "A e₂"))):
        fig.add_trace(go.Scatter(x=[0, A[0, j]], y=[0, A[1, j]], mode="lines+markers+text", text=["", lab],
                                 textposition="top center", line=dict(color=col, width=3),
                                 marker=dict(size=[0, 9], color=col, symbol="arrow", angleref="previous"),
                                 showlegend=False), 1, 1)
    s = r["x_samples"]
    fig.add_trace(go.Scattergl(x=s[:, 0], y=s[:, 1], mode="markers", marker=dict(size=3, color=BLUE, opacity=0.35),
                               name="samples of x"), 1, 2)
    for k, dash in ((1, "solid"), (2, "dash")):
        q = _ellipse(r["cov"], k)
        fig.add_trace(go.Scatter(x=q[:, 0], y=q[:, 1], line=dict(color=ORANGE, width=2, dash=dash),
                                 name=f"{k}σ contour", showlegend=True), 1, 2)
    fig.update_xaxes(range=[-lim, lim], row=1, col=1, constrain="domain")
    fig.update_yaxes(range=[-lim, lim], row=1, col=1, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_xaxes(range=[-lim2, lim2], row=1, col=2, constrain="domain")
    fig.update_yaxes(range=[-lim2, lim2], row=1, col=2, scaleanchor="x2", scaleratio=1, constrain="domain")
    fig.update_annotations(font_size=13)
    return _style(fig, height, y=1.1, top=80)


# ---- lesson 3 ---------------------------------------------------------------------------------------------------------
def timing_figure(r: dict, labels: dict, height: int = 380) -> go.Figure:
    """Seconds per call against D on log-log axes (slope = the exponent of the cost)."""
    colors = [RED, ORANGE, BLUE, GREEN]
    fig = go.Figure()
    d = r["dims"]
    for (op, t), col in zip(r["times"].items(), colors):
        fig.add_trace(go.Scatter(x=d, y=t * 1e6, mode="lines+markers", line=dict(color=col, width=2.5),
                                 name=f"{labels.get(op, op)}  (slope {r['slopes'][op]:.1f})"))
    fig.update_xaxes(type="log", title_text="dimension D", tickvals=list(d), ticktext=[str(int(v)) for v in d])
    fig.update_yaxes(type="log", title_text="time per call (µs)")
    fig.update_layout(title=dict(text="measured cost on this machine (numpy, float64" +
                      (", one BLAS thread)" if r.get("single_thread") else ")"), x=0.02))
    return _style(fig, height, at="inside", top=50)


def dependence_figure(dense, tri, height: int = 260) -> go.Figure:
    """Which output depends on which input: a dense W versus a lower-triangular one."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("dense W: every zᵢ sees every xⱼ",
                                                        "triangular: z₁ sees x₁ only"), horizontal_spacing=0.12)
    for k, M in enumerate((dense, tri), start=1):
        M = np.abs(np.asarray(M)) > 0
        n = M.shape[0]
        fig.add_trace(go.Heatmap(z=M.astype(float), x=[f"x{j + 1}" for j in range(n)],
                                 y=[f"z{i + 1}" for i in range(n)], colorscale=[[0, FAINT], [1, BLUE]],
                                 showscale=False, xgap=2, ygap=2, hovertemplate="%{y} depends on %{x}: %{z}<extra></extra>"),
                      1, k)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{k if k > 1 else ''}", row=1, col=k)
    fig.update_annotations(font_size=13)
    return _style(fig, height, legend=False)


# ---- lesson 4 ---------------------------------------------------------------------------------------------------------
def flops_figure(dims, batch: int, flops_fn, height: int = 340) -> go.Figure:
    """Multiply-adds of the relative update: naive (δᵀH)WᵀW versus eq. 15 δᵀ((HWᵀ)W) with HWᵀ reused from the forward
    pass, for a batch of ``batch``."""
    dims = np.asarray(dims)
    f = [flops_fn(int(d), int(batch)) for d in dims]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=dims, y=[v["naive"] for v in f], mode="lines+markers", line=dict(color=RED, width=2.5),
                             name="naive: (δᵀH) · Wᵀ · W   ~ 2D³"))
    fig.add_trace(go.Scatter(x=dims, y=[v["fast"] for v in f], mode="lines+markers", line=dict(color=GREEN, width=2.5),
                             name="eq. 15: δᵀ((H Wᵀ) W)   ~ 2BD², H Wᵀ from the forward pass"))
    fig.update_xaxes(type="log", title_text="dimension D", tickvals=list(dims), ticktext=[str(int(v)) for v in dims])
    fig.update_yaxes(type="log", title_text="multiply-adds per layer")
    fig.update_layout(title=dict(text=f"cost of the relative update, batch B = {batch}", x=0.02))
    return _style(fig, height, at="inside", top=50)


# ---- lesson 5 ---------------------------------------------------------------------------------------------------------
def snf_path_figure(r: dict, height: int = 380) -> go.Figure:
    """Keller's angle between the SNF and the exact W-gradient along the path from a random W₀ (s = 0) to the
    optimum (s → 1) for a fixed relative inverse error, with the bound asin(‖R − W⁻¹‖ / ‖G‖) and ‖G‖ (right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    s = r["s"]
    fig.add_trace(go.Scatter(x=s, y=r["angle"], mode="lines+markers", line=dict(color=BLUE, width=2.5),
                             name="angle(SNF gradient, exact gradient)"))
    fig.add_trace(go.Scatter(x=s, y=r["bound"], mode="lines", line=dict(color=PURPLE, dash="dot"),
                             name="bound asin(‖R − W⁻¹‖ / ‖G‖)"))
    fig.add_trace(go.Scatter(x=s, y=r["grad_norm"], mode="lines", line=dict(color=ORANGE, dash="dash"),
                             name="‖G‖ exact gradient (right axis)"), secondary_y=True)
    fig.update_xaxes(title_text="s: fraction of the way from the random W₀ (0) to the optimum W* (1)", range=[0, 1])
    fig.update_yaxes(title_text="angle (degrees)", rangemode="tozero")
    fig.update_yaxes(title_text="‖G‖ (Frobenius)", secondary_y=True, rangemode="tozero", showgrid=False,
                     title_font=dict(color=ORANGE), tickfont=dict(color=ORANGE))
    return _style(fig, height)


def snf_lambda_figure(r: dict, height: int = 340, top: float = 1e3) -> go.Figure:
    """Gradient descent with the SNF direction for several λ: ‖RW − I‖_F (left) and NLL − NLL* (right) per step on
    log scales cut at ``top`` (below: float32's floor); a run that diverged gets an ✕ where its values stop being
    finite."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("‖RW − I‖_F: how far R is from W⁻¹", "NLL − NLL*: distance to the optimum"))
    colors = [RED, ORANGE, GREEN, BLUE, PURPLE]
    floors = {"inv_err": 1e-8, "gap": 1e-6}
    for (lam, run), col in zip(r["runs"].items(), colors):
        bad = np.flatnonzero(~(np.isfinite(run["inv_err"]) & np.isfinite(run["gap"])))
        for k, key in enumerate(("inv_err", "gap"), start=1):
            v = np.asarray(run[key], np.float64)
            y = np.where(np.isfinite(v), np.clip(v, floors[key], top), np.nan)
            fig.add_trace(go.Scatter(x=r["step"], y=y, mode="lines", line=dict(color=col, width=2.5),
                                     name=f"λ = {lam:g}", legendgroup=f"{lam:g}", showlegend=k == 1), 1, k)
            if bad.size:
                fig.add_trace(go.Scatter(x=[int(r["step"][bad[0]])], y=[top], mode="markers+text", text=["diverged"],
                                         textposition="bottom right", marker=dict(symbol="x", size=11, color=col),
                                         legendgroup=f"{lam:g}", showlegend=False, hoverinfo="skip"), 1, k)
        fig.update_yaxes(range=[math.log10(floors["inv_err"]), math.log10(top)], row=1, col=1)
        fig.update_yaxes(range=[math.log10(floors["gap"]), math.log10(top)], row=1, col=2)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="gradient-descent step")
    fig.update_annotations(font_size=13)
    return _style(fig, height, y=1.12, top=70)


# ---- lesson 6 ---------------------------------------------------------------------------------------------------------
def linear_training_figure(steps, train_nll, bound: float, entropy: float | None = None, test_steps=None,
                           test_nll=None, height: int = 360) -> go.Figure:
    """Training-set NLL of the affine flow per evaluation against Liao & He's closed-form optimum (and the true
    entropy, when known: the gap between the two lines is what no linear flow can learn)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=train_nll, mode="lines+markers", line=dict(color=BLUE, width=2.5),
                             marker=dict(size=5), name="training NLL of the linear flow"))
    if test_steps is not None and len(test_steps):
        fig.add_trace(go.Scatter(x=test_steps, y=test_nll, mode="lines", line=dict(color=LIGHT_GREY, width=1.5),
                                 name="held-out NLL"))
    fig.add_hline(y=bound, line=dict(color=GREEN, dash="dash", width=2))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=GREEN, dash="dash"),
                             name=f"closed-form optimum ½ log det(2πeΣ) = {bound:.4f}"))
    if entropy is not None:
        fig.add_hline(y=entropy, line=dict(color=ORANGE, dash="dot", width=2))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=ORANGE, dash="dot"),
                                 name=f"true entropy H(p) = {entropy:.4f}"))
    vals = np.concatenate([np.asarray(train_nll, float), [bound] + ([entropy] if entropy is not None else [])])
    lo, hi = float(np.min(vals)), float(np.max(vals))
    pad = 0.08 * max(hi - lo, 0.05)
    fig.update_yaxes(title_text="NLL (nats)", range=[lo - pad, hi + pad])
    fig.update_xaxes(title_text="optimiser step")
    return _style(fig, height)


def scale_profile_figure(p: dict, height: int = 340) -> go.Figure:
    """NLL along W → sW: contraction ½s²E‖z‖² (+const) rises, expansion −d log s − log|det W| falls; their sum is
    smallest where they balance, s* = sqrt(d / E‖z‖²)."""
    s = p["scales"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=s, y=p["contraction"], line=dict(color=ORANGE, dash="dash"),
                             name="contraction ½s²E‖z‖² + (d/2)log 2π"))
    fig.add_trace(go.Scatter(x=s, y=p["expansion"], line=dict(color=PURPLE, dash="dot"),
                             name="expansion −log|det(sW)|"))
    fig.add_trace(go.Scatter(x=s, y=p["nll"], line=dict(color=BLUE, width=3), name="NLL (sum)"))
    fig.add_vline(x=p["best_scale"], line=dict(color=GREEN, width=1.5))
    fig.add_annotation(x=p["best_scale"], y=float(np.min(p["nll"])), text=f"balance s* = {p['best_scale']:.3f}",
                       showarrow=True, arrowhead=2, ay=-40, font=dict(color=GREEN))
    fig.update_xaxes(title_text="global scale s of the map (z = s·(Wx + b))")
    fig.update_yaxes(title_text="nats")
    return _style(fig, height)


# ---- lesson 7 ---------------------------------------------------------------------------------------------------------
def learned_activation_figure(r: dict, height: int = 380) -> go.Figure:
    """``flowlab.lessons.learned_activation`` results.  Left: s(x) for the start θ⁰ (grey, dashed) and for each unit's
    trained θ of the layer shown.  Middle: log s'(x), with each unit's floor ρ (log s' ≥ ρ, dotted).  Right, after
    training: ‖θ_k − θ_k⁰‖ per layer, the layer shown highlighted."""
    trained, moved = r.get("trained"), r.get("movement")
    cols = 2 if moved is None else 3
    titles = ("activation s(x)", "log s′(x), floor ρ (dotted)", "‖θ_k − θ_k⁰‖ per layer")
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.08, subplot_titles=titles[:cols])
    x, init = r["x"], r["initial"]
    for k, key in enumerate(("s", "log_deriv"), start=1):
        fig.add_trace(go.Scatter(x=x, y=init[key][0], mode="lines", line=dict(color=GREY, dash="dash", width=2),
                                 name="start θ⁰ (near s_T)", legendgroup="start", showlegend=k == 1), 1, k)
    if trained is not None:
        for i in range(trained["s"].shape[0]):
            col, group = LABEL_COLORS[i % len(LABEL_COLORS)], f"unit {i + 1}"
            name = f"trained, layer {r['layer']}, unit {i + 1}"
            fig.add_trace(go.Scatter(x=x, y=trained["s"][i], mode="lines", line=dict(color=col, width=2.5),
                                     name=name, legendgroup=group), 1, 1)
            fig.add_trace(go.Scatter(x=x, y=trained["log_deriv"][i], mode="lines", line=dict(color=col, width=2.5),
                                     name=name, legendgroup=group, showlegend=False), 1, 2)
            rho = float(trained["rho"][i])
            fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[rho, rho], mode="lines", line=dict(color=col, dash="dot"),
                                     name=f"ρ of unit {i + 1}", legendgroup=group, showlegend=False), 1, 2)
    if moved is not None:
        layers = np.arange(1, len(moved) + 1)
        fig.add_trace(go.Bar(x=layers, y=moved, marker_color=[BLUE if k == r["layer"] else LIGHT_GREY for k in layers],
                             name="‖θ_k − θ_k⁰‖", showlegend=False), 1, 3)
        fig.update_xaxes(title_text="layer k", dtick=1, row=1, col=3)
    fig.update_xaxes(title_text="x (pre-activation)", row=1, col=1)
    fig.update_xaxes(title_text="x (pre-activation)", row=1, col=2)
    fig.update_annotations(font_size=13)
    return _style(fig, height, y=1.12, top=70)
