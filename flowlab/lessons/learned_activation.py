"""Lesson 7 — learned activations.  A layer is y = h Wᵀ + b followed by an elementwise s; its log-det splits into
Σ_i log s'(y_i) + log|det W| (Gresele eq. 9), the elementwise part costing O(D) (Zhao §3.5.1).  The paper fixes s
(App. H.2, eqs. 35–36); FlowLab's tuned preset learns it per unit (``flowlab.activations``, the learned steps):

    s(x; θ) = e^ρ x + Σ_{m=1..M} e^{ω_m} tanh(e^{κ_m}(x − c_m)),   s'(x; θ) = e^ρ + Σ_m e^{ω_m+κ_m} sech²(·) ≥ e^ρ > 0.

θ enters log q only through z and the Σ log s' term, never through log|det W|, so every gradient method gives θ its
ordinary gradient (a VJP of (y, θ) ↦ (s, log s'), O(B·D·n) per layer: ``flowlab.gradients``) while W keeps the
method's direction (relative: O(B·D²), no inverse).  This module trains a small flow with the tuned preset, and
measures what the page shows: the curves before and after, the parameter counts, a float64 check of θ's gradient
and the monotonicity bound."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import budget, presets
from .. import gradients as G
from ..activations import Activation, make_activation
from ..densities import REGISTRY as DENSITIES
from ..flow import FlowSpec, forward
from ..train import build_trainer

LESSON_DENSITIES = tuple(DENSITIES)  # every registry toy density (all 2-D, each with its exact log-density)
LESSON_STEPS = 2000
LESSON_SEED = 0
LESSON_NTEST = 2000
LESSON_CHECK_ROWS = 256  # standardised training rows in the float64 gradient check
# The tuned preset (presets.tuned) with a smaller batch and training set, and the cosine decay over the lesson's
# steps: a fixed-size run of a few seconds on one core, whatever density is picked.
LESSON_OVERRIDES = {"batch": 256, "ntrain": 20_000, "decay": LESSON_STEPS}
GRADIENT_TOL = 1e-8  # float64: the same gradient up to rounding
CURVE_POINTS = 241
CURVE_QUANTILE = 0.005  # curves span the middle 99 % of the shown layer's pre-activations (widened by a quarter)
DIMS_SHOWN = (2, 16, 128, 1024)
_exact_grads = jax.jit(G.exact_grads, static_argnums=0)  # compiled once per FlowSpec and dtype


def lesson_settings(density: str) -> dict:
    """build_trainer settings of the lesson: ``presets.tuned(density)`` with ``LESSON_OVERRIDES``."""
    return {**presets.defaults(density), **LESSON_OVERRIDES}


def lesson_activation(density: str | None = None) -> Activation:
    """The tuned preset's activation (the learned steps since FlowLab adopted them)."""
    return make_activation(presets.tuned(density).activation)


def _shapes(density: str) -> dict:
    """What ``budget.training_cost`` needs of the lesson's run (its length is fixed at ``LESSON_STEPS``)."""
    s = lesson_settings(density)
    return dict(method=s["method"], layers=s["layers"], batch=s["batch"], ntrain=s["ntrain"], ntest=LESSON_NTEST)


def lesson_cost(density: str) -> budget.Cost:
    """Memory of the lesson's run (``budget.training_cost``)."""
    return budget.training_cost(**_shapes(density))


def lesson_refusal(density: str, limits: budget.Budget) -> str | None:
    """None when the lesson's run fits ``limits``, else one sentence (``budget.training_refusal``)."""
    return budget.training_refusal(limits, **_shapes(density))


# ---- the numbers ---------------------------------------------------------------------------------------------------
def activation_curves(act: Activation, theta, x) -> dict:
    """s(x; θ_i) and log s'(x; θ_i) per unit i of one layer's θ (D, n) on the grid x, and ρ_i = log e^ρ, the
    lower bound of log s'."""
    th = jnp.asarray(theta, jnp.float32)
    xs = jnp.asarray(x, jnp.float32)[:, None]  # (X, 1) against θ (D, n): (X, D)
    return {"s": np.asarray(act(xs, th)).T, "log_deriv": np.asarray(act.log_deriv(xs, th)).T,
            "rho": np.asarray(th[:, 0], np.float64)}


def theta_movement(theta0, theta) -> np.ndarray:
    """‖θ_k − θ_k⁰‖_F per layer k (over its units and parameters)."""
    d = np.asarray(theta, np.float64) - np.asarray(theta0, np.float64)
    return np.sqrt(np.sum(d * d, axis=(1, 2)))


def monotonicity(act: Activation, thetas, x) -> dict:
    """min over the grid x of s'(x; θ) / e^ρ for every unit of every layer (≥ 1 by construction), and the smallest
    s' and e^ρ found: s' ≥ e^ρ > 0, so each learned s is strictly increasing."""
    th = jnp.asarray(thetas, jnp.float32)  # (L-1, D, n)
    xs = jnp.asarray(x, jnp.float32)[:, None, None]
    deriv = np.asarray(act.deriv(xs, th), np.float64)  # (X, L-1, D)
    slope = np.asarray(jnp.exp(th[..., 0]), np.float64)  # e^ρ as s' computes it: s' = e^ρ + (terms ≥ 0)
    return {"min_deriv": float(deriv.min()), "min_slope": float(slope.min()),
            "min_ratio": float((deriv.min(axis=0) / slope).min()), "x_lo": float(np.min(x)), "x_hi": float(np.max(x))}


def parameter_counts(act: Activation, dims=DIMS_SHOWN) -> list[dict]:
    """Per layer: D² weights, D biases and D·n activation parameters (n = 1 + 3M for the learned steps), and θ's
    share of the layer's parameters, which falls like n / D."""
    rows = []
    for d in dims:
        w, b, t = d * d, d, d * act.n_params
        rows.append({"D": d, "W": w, "b": b, "theta": t, "share": t / (w + b + t)})
    return rows


def step_cost_ratio(act: Activation) -> float:
    """A training step's measured cost with ``act`` over that with the default preset's fixed activation
    (``Activation.step_cost``)."""
    return act.step_cost / make_activation(presets.DEFAULT.activation).step_cost


def theta_gradient_check(spec: FlowSpec, params: dict, h0, methods=G.PLAYGROUND_METHODS, grad_fn=None,
                         lam: float = presets.DEFAULT.lam) -> dict:
    """max |g_θ − ∇_θ NLL| / max |∇_θ NLL| in float64 for each method (default: the Playground's).  g_θ is the
    θ-direction the training chunk takes (``jitted_grad_fn(method, spec)``: the chunk's ``make_grad_fn``, compiled;
    or ``grad_fn``, to test a wrong one); ∇_θ NLL is autodiff of the exact NLL with slogdet
    (``gradients.exact_grads``).  Methods with learned inverses get R = W⁻¹ (θ's gradient does not depend on R).
    Scoped x64: the global configuration stays float32."""
    with jax.enable_x64(True):
        p = {k: jnp.asarray(np.asarray(params[k]), jnp.float64) for k in ("W", "b", "A")}
        x = jnp.asarray(np.asarray(h0), jnp.float64)
        ref = np.asarray(_exact_grads(spec, p, x)["A"])
        out = {}
        for m in methods:
            q = {**p, "R": jnp.linalg.inv(p["W"])} if G.REGISTRY[m].learned_inverse else p
            fn = grad_fn or G.jitted_grad_fn(m, spec)
            g = np.asarray(fn(q, x, {"lam": jnp.asarray(lam, jnp.float64)})[0]["A"])
            out[m] = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
    return out


def initial_view(density: str | None = None, lo: float = -4.0, hi: float = 4.0) -> dict:
    """The start θ⁰ (the same in every unit and layer) on a fixed grid, before any training."""
    act = lesson_activation(density)
    x = np.linspace(lo, hi, CURVE_POINTS)
    return {"x": x, "initial": activation_curves(act, act.init_params(1), x), "trained": None, "movement": None,
            "layer": None, "activation": act.name, "label": act.label}


def learned_activation_lesson(density: str, steps: int = LESSON_STEPS, seed: int = LESSON_SEED) -> dict:
    """Train the lesson's flow (``lesson_settings``) for ``steps`` steps and measure: the layer whose θ moved most
    from θ⁰, its units' curves against θ⁰'s over the middle of that layer's pre-activations, the movement of every
    layer, the held-out KL, the float64 gradient check and the monotonicity bound on a wide grid."""
    if density not in LESSON_DENSITIES:
        raise ValueError(f"Unknown density {density!r}; choose one of {', '.join(LESSON_DENSITIES)}.")
    s = lesson_settings(density)
    trainer = build_trainer(density, seed=seed, ntest=LESSON_NTEST, **s)
    act = trainer.spec.activation
    theta0 = np.asarray(trainer.initial_params["A"])
    trainer.train(steps=int(steps))
    params = {k: np.asarray(v) for k, v in trainer.params.items()}
    moved = theta_movement(theta0, params["A"])
    k = int(np.argmax(moved))
    h0 = trainer.norm.apply(jnp.asarray(trainer.x_train[:LESSON_CHECK_ROWS], jnp.float32))
    ys = np.asarray(forward(trainer.spec, trainer.params, h0).ys[k])  # layer k+1's pre-activations (B, D)
    lo, hi = np.quantile(ys, [CURVE_QUANTILE, 1.0 - CURVE_QUANTILE])
    pad = 0.25 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, CURVE_POINTS)
    wide = float(max(abs(lo), abs(hi), 1.0)) * 10.0
    latest = trainer.evals.latest or {}
    return {"density": density, "steps": trainer.step, "settings": s, "activation": act.name, "label": act.label,
            "layers": trainer.spec.layers, "dim": trainer.spec.dim, "x": x,
            "initial": activation_curves(act, theta0[k], x), "trained": activation_curves(act, params["A"][k], x),
            "layer": k + 1, "movement": moved, "kl": float(latest.get("kl", np.nan)),
            "test_nll": float(latest.get("test_nll", np.nan)),
            "diverged": [d.message for d in trainer.divergences],
            "gradient_check": theta_gradient_check(trainer.spec, params, h0),
            "monotonicity": monotonicity(act, params["A"], np.linspace(-wide, wide, 4001))}


def gradient_summary(check: dict, tol: float = GRADIENT_TOL) -> str:
    """One sentence: the largest relative error over the methods, and whether it is at rounding level."""
    worst = max(check, key=check.get)
    verdict = "the same gradient up to rounding" if check[worst] <= tol else "NOT the same gradient"
    return (f"Largest relative difference over {len(check)} methods: {check[worst]:.1e} "
            f"({G.REGISTRY[worst].short}) — {verdict} (tolerance {tol:.0e}).")


__all__ = ["LESSON_DENSITIES", "LESSON_STEPS", "LESSON_SEED", "LESSON_OVERRIDES", "GRADIENT_TOL", "DIMS_SHOWN",
           "lesson_settings", "lesson_activation", "lesson_cost", "lesson_refusal", "activation_curves",
           "theta_movement", "monotonicity", "parameter_counts", "step_cost_ratio", "theta_gradient_check",
           "initial_view", "learned_activation_lesson", "gradient_summary"]
