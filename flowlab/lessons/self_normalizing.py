"""Lesson 5 — self-normalizing flows (Keller et al. §3.2 eq. 3, §4.1 eqs. 8–11, App. A.1 eqs. 17, 20): a learned
R ≈ W⁻¹ stands in for W⁻ᵀ in the gradient of log|det W|, so no inverse is computed.

Sign conventions.  Keller maximises ℒ = ½ log p_f(x) + ½ log p_g(x) − λ Σ_k ‖R_k W_k h − h‖² (eq. 3); with
δ_z = ∂ log N(z)/∂z = −z their W-gradient is ½(δ_z xᵀ + W⁻ᵀ) − λ ∂E/∂W (eq. 8), approximated by
½(δ_z xᵀ + Rᵀ) − λ ∂E/∂W (eq. 10).  FlowLab descends on the NLL = −mean log q(x) and steps along
mean(z xᵀ) − Rᵀ + 2λ ∂E/∂W = −2 × eq. 10, λ on Keller's scale (``flowlab.gradients``).  Neither the sign nor the
factor 2 changes a direction, so the angles here are Keller's Fig. 3 angle (``gradients.snf_angle``: the likelihood
gradient of W at λ = 0 against the exact one).

The demonstration is a one-layer flow z = W x + b (the last layer is affine) on Gaussian data with sample covariance
Σ, whose optimum is known in closed form (Liao & He App. A.1–A.2): W Σ Wᵀ = I, b = −W μ.  Along the straight path
W(s) = (1 − s) W₀ + s W* from a random W₀ to the nearest optimum W* = Q Σ^{-1/2} (Q the orthogonal polar factor of
W₀ Σ^{1/2}, so W(s) Σ^{1/2} = Q((1 − s) P + s I) stays invertible), with b = −W μ throughout (the bias is optimal, so
only W is off), the exact gradient is G = W Σ − W⁻ᵀ and the SNF gradient is G + (W⁻ᵀ − Rᵀ).  For an error
‖R − W⁻¹‖_F = r the angle θ between them satisfies sin θ ≤ r / ‖G‖_F: a fixed inverse error costs more and more
direction as G shrinks towards the optimum, where G = 0 and the SNF step is the error alone."""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .. import gradients as G
from ..activations import make_activation
from ..flow import FlowSpec
from ..metrics import angle_degrees, inverse_error
from .relative import random_matrix

DATA_SEED_OFFSET = 7  # the data covariance's random matrix uses seed + 7, so it differs from W's
ERROR_SEED_OFFSET = 11  # the direction E of the inverse error
PATH = np.concatenate([np.linspace(0.0, 0.9, 10), [0.95, 0.98, 0.99, 0.995, 0.999]])  # s: 0 start, 1 optimum
LAMBDA_LR, LAMBDA_STEPS = 0.02, 600  # plain gradient descent of the λ demonstration
SNF_LAMBDAS = (0.0, 0.1, 1.0)  # Keller's scale; Table 4 (App. A.5): ≤ 0.1 diverged on MNIST, 1 trained
SNF_ERRORS = (0.01, 0.03, 0.1, 0.3)  # relative errors ε of R offered by the lesson
SNF_BATCH = 256  # data rows of the lesson's problem
NEAR_ZERO = 1e-5  # |NLL − NLL*| below this is float32 rounding


def angle_deg(a, b) -> float:
    """Angle between two arrays (flattened) in degrees, ``metrics.angle_degrees`` in float64 numpy: accurate for
    tiny angles too, where acos of a rounded cosine cannot resolve less than ~1e-6 degrees."""
    return float(angle_degrees(np.asarray(a, np.float64), np.asarray(b, np.float64), np))


def linear_layer_grads(W, H, R=None):
    """Gradient of NLL = mean_b ½‖W h_b‖² − log|det W| (+const) for a one-layer linear flow on rows H.
    With R=None: exact, (1/B) Zᵀ H − W^{-T}  (Gresele eq. 10, Keller eq. 8 × −2).  With R: the self-normalizing
    surrogate (1/B) Zᵀ H − Rᵀ  (Keller eq. 10 × −2).  Z = H Wᵀ."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    Z = H @ W.T
    data = Z.T @ H / H.shape[0]
    return data - (np.linalg.inv(W).T if R is None else np.asarray(R, np.float64).T)


def _sym_power(S, p):
    lam, V = np.linalg.eigh(S)
    return (V * lam**p) @ V.T


def snf_problem(d: int = 8, b: int = SNF_BATCH, seed: int = 0) -> dict:
    """A random layer W₀ (``random_matrix``), B Gaussian rows H with a random covariance, their mean μ and
    covariance Σ (divided by B), the nearest optimum W* = Q Σ^{-1/2} and a unit direction E for inverse errors."""
    d, b = int(d), int(b)
    if d < 1 or b <= d:
        raise ValueError(f"Need a positive dimension and more samples than dimensions, got D={d}, B={b}.")
    rng = np.random.default_rng(seed)
    W0 = random_matrix(d, seed)
    H = rng.standard_normal((b, d)) @ random_matrix(d, seed + DATA_SEED_OFFSET).T
    mu, cov = H.mean(axis=0), np.cov(H.T, bias=True).reshape(d, d)
    u, _, vt = np.linalg.svd(W0 @ _sym_power(cov, 0.5))
    E = np.random.default_rng(seed + ERROR_SEED_OFFSET).standard_normal((d, d))
    return {"W0": W0, "H": H, "mu": mu, "cov": cov, "W_opt": (u @ vt) @ _sym_power(cov, -0.5),
            "E": E / np.linalg.norm(E)}


def path_point(p: dict, s: float) -> np.ndarray:
    """W(s) = (1 − s) W₀ + s W*."""
    return (1.0 - s) * p["W0"] + s * p["W_opt"]


def snf_inverse(W, E, eps: float) -> np.ndarray:
    """R = W⁻¹ + ε ‖W⁻¹‖_F E (‖E‖_F = 1): an inverse off by the relative error ε."""
    Wi = np.linalg.inv(W)
    return Wi + eps * np.linalg.norm(Wi) * E


def _params(W, b, R):
    return {"W": jnp.asarray(W[None], jnp.float32), "b": jnp.asarray(b[None], jnp.float32),
            "R": jnp.asarray(R[None], jnp.float32)}


@lru_cache(maxsize=None)
def _spec(d: int) -> FlowSpec:
    return FlowSpec(int(d), 1, make_activation())  # one layer: affine, the activation is never applied


_snf_angle = jax.jit(G.snf_angle, static_argnums=0)


def snf_angle_path(d: int = 8, b: int = SNF_BATCH, eps: float = 0.1, s=PATH, seed: int = 0) -> dict:
    """Keller's Fig. 3 angle (``gradients.snf_angle``, float32 as in the app) along the path W(s) for the fixed
    relative inverse error R = W⁻¹ + ε‖W⁻¹‖_F E, with the exact gradient's norm ‖G‖_F (float64, G = W Σ − W⁻ᵀ),
    the error ‖R − W⁻¹‖_F and the bound asin(‖R − W⁻¹‖_F / ‖G‖_F) (NaN where the ratio reaches 1: no bound)."""
    p = snf_problem(d, b, seed)
    s = np.asarray(s, np.float64)
    if s.size == 0 or s.min() < 0 or s.max() >= 1:
        raise ValueError("Path positions s must lie in [0, 1): at s = 1 the exact gradient is zero.")
    h = jnp.asarray(p["H"], jnp.float32)
    angle, gnorm, err = [], [], []
    for si in s:
        W = path_point(p, si)
        R = snf_inverse(W, p["E"], eps)
        angle.append(float(_snf_angle(_spec(d), _params(W, -W @ p["mu"], R), h)))
        gnorm.append(float(np.linalg.norm(W @ p["cov"] - np.linalg.inv(W).T)))
        err.append(float(np.linalg.norm(R - np.linalg.inv(W))))
    ratio = np.asarray(err) / np.asarray(gnorm)
    bound = np.where(ratio < 1, np.degrees(np.arcsin(np.minimum(ratio, 1.0))), np.nan)
    return {"s": s, "angle": np.asarray(angle), "grad_norm": np.asarray(gnorm), "error_norm": np.asarray(err),
            "bound": bound, "eps": float(eps), "dim": int(d), **p}


@lru_cache(maxsize=None)
def _descent(d: int, steps: int):
    spec = _spec(d)
    grad_fn = G.make_grad_fn("self_normalizing", spec)

    def run(params, h, lam, lr):
        def step(p, _):
            g, _ = grad_fn(p, h, {"lam": lam})
            row = (inverse_error(p["R"], p["W"]), G.exact_nll(spec, p, h))
            return jax.tree_util.tree_map(lambda a, u: a - lr * u, p, g), row

        return jax.lax.scan(step, params, None, length=steps)

    return jax.jit(run)


def snf_lambda_runs(d: int = 8, b: int = SNF_BATCH, eps: float = 0.1, lams=SNF_LAMBDAS, steps: int = LAMBDA_STEPS,
                    lr: float = LAMBDA_LR, seed: int = 0) -> dict:
    """What λ does: gradient descent with FlowLab's self-normalizing direction (W, b and R together; λ on Keller's
    scale) from W₀, b = −W₀ μ and R = W₀⁻¹ + ε‖W₀⁻¹‖_F E, once per λ.  Per step: ‖RW − I‖_F, NLL − NLL* (NLL* =
    ½ log det(2πe Σ), the closed-form optimum) and Keller's angle.  float32, as in the app."""
    p = snf_problem(d, b, seed)
    if int(steps) < 1 or not lr > 0:
        raise ValueError("Use at least one step and a positive learning rate.")
    W0 = p["W0"]
    params = _params(W0, -W0 @ p["mu"], snf_inverse(W0, p["E"], eps))
    h = jnp.asarray(p["H"], jnp.float32)
    best = 0.5 * float(np.linalg.slogdet(2 * np.pi * np.e * p["cov"])[1])
    run = _descent(int(d), int(steps))
    out = {}
    for lam in lams:
        final, (inv, nll) = run(params, h, jnp.float32(lam), jnp.float32(lr))
        out[float(lam)] = {"inv_err": np.asarray(inv, np.float64), "gap": np.asarray(nll, np.float64) - best,
                           "final_inv_err": float(inverse_error(final["R"], final["W"], jnp)),
                           "final_gap": float(G.exact_nll(_spec(d), final, h)) - best}
    return {"step": np.arange(int(steps)), "runs": out, "eps": float(eps), "lr": float(lr), "best_nll": best}


def _at(r: dict, s: float) -> float:
    return float(r["angle"][int(np.argmin(np.abs(r["s"] - s)))])


def snf_path_summary(r: dict) -> str:
    """The lesson's sentence about ``snf_angle_path``, every number read from ``r``."""
    out = (f"With R off by {r['eps']:.0%}, the angle is {_at(r, 0.0):.1f}° at the random start, {_at(r, 0.5):.1f}° "
           f"halfway, {_at(r, 0.9):.1f}° at 90 % and {_at(r, 0.99):.0f}° at 99 % of the way to the optimum.")
    ratio = r["error_norm"] / r["grad_norm"]
    if np.any(ratio >= 1):
        out += (f" From s = {float(r['s'][np.argmax(ratio >= 1)]):g} on the error is larger than the gradient itself"
                " and no bound below 180° remains.")
    return out + (" At s = 1 the exact gradient is zero: the SNF step is the error W⁻ᵀ − Rᵀ alone and moves W off "
                  "the optimum.")


def snf_lambda_summary(r: dict) -> list[str]:
    """One sentence per λ of ``snf_lambda_runs``: where ‖RW − I‖ and NLL − NLL* went, or where the run diverged."""
    lines = []
    for lam, run in r["runs"].items():
        inv, gap = run["inv_err"], run["gap"]
        bad = np.flatnonzero(~(np.isfinite(inv) & np.isfinite(gap)))
        if bad.size:
            lines.append(f"λ = {lam:g}: ‖RW − I‖ grew from {inv[0]:.2f} to {np.nanmax(inv[:bad[0]]):.3g} and the run "
                         f"diverged at step {int(bad[0])} (values no longer finite).")
            continue
        end = (f"is within {NEAR_ZERO:g} nats of NLL*" if abs(run["final_gap"]) < NEAR_ZERO else
               f"went from {gap[0]:.3g} to {run['final_gap']:.3g} nats")
        lines.append(f"λ = {lam:g}: ‖RW − I‖ went from {inv[0]:.2f} to {run['final_inv_err']:.2g} (largest "
                     f"{np.max(inv):.3g}); after {len(r['step'])} steps NLL − NLL* {end}.")
    return lines
