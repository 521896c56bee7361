"""Closed-form results for linear (affine) flows — Liao & He, *Jacobian Determinant of Normalizing Flows*, §2.1.2
and App. A.1–A.2 — and KL helpers.

An affine flow in the normalising direction, z = W x + b (rows: ``z = x W^T + b``), with base N(0, I) has

    NLL(W, b) = E_p[ ½‖W x + b‖² ] + (d/2) log 2π − log|det W|                                (Liao & He eq. 5 / 21)

Setting the gradient −E[z xᵀ] + W^{-T} to zero (their eq. 20) gives E[z zᵀ] = I, i.e. W Σ Wᵀ = I with Σ the
covariance of x and b = −W μ.  Every solution is W* = U Λ^{-1/2} Vᵀ (Σ = V Λ Vᵀ, U any orthogonal matrix), and the
optimum value does not depend on U:

    NLL* = ½ [ d log 2π + d + Σ_i log λ_i ] = ½ log det(2πe Σ)                                 (Liao & He eq. 6, negated)

which is exactly the entropy of the Gaussian N(μ, Σ) and the NLL of the Gaussian maximum-likelihood fit — the PPCA
link of their App. A.2.  For any data density p,  NLL* − H(p) = KL(p ‖ N(μ, Σ)) ≥ 0: the part of p that no linear
flow can capture (zero only for Gaussian data).

Expansion/contraction balance (Liao & He §2.2): along the ray W → s W, b → s b the NLL is
½ s² E‖z‖² − d log s + const.  The log-det term pushes s up (expansion), the Gaussian term pulls it down
(contraction); they balance at s² = d / E‖z‖², so at any optimum E‖z‖² = d.
All functions are numpy (float64); none touches global JAX configuration.
"""
from __future__ import annotations

import math

import numpy as np

from .metrics import LOG2PI


def _as_data(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"Data must be an (N, d) array with N >= 2, got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("Data contains NaN or infinite values.")
    return x


def _as_cov(cov) -> np.ndarray:
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"A covariance must be a square matrix, got shape {cov.shape}.")
    if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, float(np.abs(cov).max()))):
        raise ValueError("A covariance must be symmetric.")
    lam = np.linalg.eigvalsh(cov)
    if lam.min() <= 0:
        raise ValueError("The covariance is singular (an eigenvalue is <= 0): no full-rank linear flow fits it.")
    return cov


# ---- Gaussian maximum likelihood ------------------------------------------------------------------------------------
def gaussian_mle(x) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood mean and covariance (divided by N, not N−1) of the rows of x."""
    x = _as_data(x)
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / x.shape[0]


def gaussian_nll(x, mu, cov) -> float:
    """Average −log N(x; μ, Σ) over the rows of x."""
    x, cov = _as_data(x), _as_cov(cov)
    d = x.shape[1]
    L = np.linalg.cholesky(cov)
    u = np.linalg.solve(L, (x - np.asarray(mu, np.float64)).T)
    return float(0.5 * np.mean(np.sum(u * u, axis=0)) + 0.5 * d * LOG2PI + np.sum(np.log(np.diag(L))))


def gaussian_entropy(cov) -> float:
    """H(N(μ, Σ)) = ½ log det(2πe Σ)."""
    cov = _as_cov(cov)
    d = cov.shape[0]
    return float(0.5 * (d * (LOG2PI + 1.0) + np.linalg.slogdet(cov)[1]))


# ---- Liao & He eq. 6 -------------------------------------------------------------------------------------------------
def optimal_nll(cov) -> float:
    """Liao & He eq. 6 (as a loss): the smallest NLL any full-rank affine flow z = W x + b with base N(0, I) reaches
    on data with (ML) covariance Σ:  ½ [d log 2π + d + Σ_i log λ_i(Σ)]  = ½ log det(2πe Σ)."""
    lam = np.linalg.eigvalsh(_as_cov(cov))
    d = lam.size
    return float(0.5 * (d * LOG2PI + d + np.sum(np.log(lam))))


def optimal_linear_flow(x, rotation=None) -> tuple[np.ndarray, np.ndarray]:
    """A maximiser (W*, b*) of the affine-flow likelihood on data x (Liao & He App. A.1):
    W* = U Λ^{-1/2} Vᵀ with Σ = V Λ Vᵀ the ML covariance, U = ``rotation`` (default I; any orthogonal matrix gives the
    same likelihood), b* = −W* μ.  Convention z = W x + b (rows: z = x Wᵀ + b), as in flowlab.flow."""
    mu, cov = gaussian_mle(x)
    lam, V = np.linalg.eigh(_as_cov(cov))
    W = np.diag(lam ** -0.5) @ V.T
    if rotation is not None:
        U = np.asarray(rotation, np.float64)
        if U.shape != W.shape or not np.allclose(U @ U.T, np.eye(len(U)), atol=1e-8):
            raise ValueError("The rotation U must be an orthogonal d x d matrix.")
        W = U @ W
    return W, -W @ mu


def linear_flow_nll(W, b, x) -> float:
    """Average NLL of the affine flow z = W x + b (base N(0, I)) on the rows of x  (Liao & He eq. 21, negated)."""
    x = _as_data(x)
    W = np.asarray(W, np.float64)
    if W.shape != (x.shape[1], x.shape[1]):
        raise ValueError(f"W must be {x.shape[1]} x {x.shape[1]} for {x.shape[1]}-dimensional data, got {W.shape}.")
    z = x @ W.T + np.asarray(b, np.float64)
    sign, logdet = np.linalg.slogdet(W)
    if sign == 0:
        raise ValueError("W is singular: an affine flow needs an invertible matrix.")
    return float(0.5 * np.mean(np.sum(z * z, axis=1)) + 0.5 * x.shape[1] * LOG2PI - logdet)


def linear_flow_nll_grad(W, b, x) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of ``linear_flow_nll`` (Liao & He eq. 20, negated): (E[z xᵀ] − W^{-T}, E[z])."""
    x = _as_data(x)
    W = np.asarray(W, np.float64)
    z = x @ W.T + np.asarray(b, np.float64)
    return z.T @ x / x.shape[0] - np.linalg.inv(W).T, z.mean(0)


# ---- expansion / contraction balance (Liao & He §2.2) ---------------------------------------------------------------
def scale_profile(W, b, x, scales) -> dict:
    """NLL of the scaled flow z = s (W x + b) for each s, split into its contraction part ½ s² E‖z‖² and its
    expansion part −log|det sW| = −d log s − log|det W|; plus the balancing scale s* = sqrt(d / E‖z‖²)."""
    x = _as_data(x)
    s = np.asarray(scales, np.float64)
    if np.any(s <= 0):
        raise ValueError("Scales must be positive.")
    W = np.asarray(W, np.float64)
    d = x.shape[1]
    z = x @ W.T + np.asarray(b, np.float64)
    m2 = float(np.mean(np.sum(z * z, axis=1)))
    logdet = float(np.linalg.slogdet(W)[1])
    contraction = 0.5 * s**2 * m2 + 0.5 * d * LOG2PI
    expansion = -(d * np.log(s) + logdet)
    return {"scales": s, "contraction": contraction, "expansion": expansion, "nll": contraction + expansion,
            "mean_sq_norm": m2, "best_scale": math.sqrt(d / m2), "dim": d}


# ---- KL helpers ------------------------------------------------------------------------------------------------------
def kl_gaussians(mu0, cov0, mu1, cov1) -> float:
    """KL(N(μ0, Σ0) ‖ N(μ1, Σ1)) in nats."""
    cov0, cov1 = _as_cov(cov0), _as_cov(cov1)
    d = cov0.shape[0]
    dm = np.asarray(mu1, np.float64) - np.asarray(mu0, np.float64)
    S1inv = np.linalg.inv(cov1)
    return float(0.5 * (np.trace(S1inv @ cov0) + dm @ S1inv @ dm - d
                        + np.linalg.slogdet(cov1)[1] - np.linalg.slogdet(cov0)[1]))


def kl_from_nll(nll: float, entropy: float) -> float:
    """KL(p ‖ q) = E_p[−log q] − H(p): a model's NLL minus the data entropy."""
    return float(nll - entropy)


def linear_flow_gap(cov, entropy: float) -> float:
    """KL(p ‖ N(μ, Σ)) = NLL* − H(p): what the best linear flow still misses on a density with entropy H(p)."""
    return kl_from_nll(optimal_nll(cov), entropy)


def correlated_gaussian(n: int, std=(1.5, 0.5), angle_deg: float = 30.0, mean=(0.5, -1.0), seed: int = 0):
    """n samples of a 2-D Gaussian with axis standard deviations ``std`` rotated by ``angle_deg``, and its exact
    (μ, Σ).  Data for the linear-flow lesson."""
    if int(n) < 2:
        raise ValueError(f"Need at least 2 samples, got {n}.")
    s = np.asarray(std, np.float64)
    if s.shape != (2,) or np.any(s <= 0):
        raise ValueError("Standard deviations must be two positive numbers.")
    t = math.radians(angle_deg)
    Rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    A = Rot @ np.diag(s)
    mu = np.asarray(mean, np.float64)
    x = np.random.default_rng(seed).standard_normal((int(n), 2)) @ A.T + mu
    return x, mu, A @ A.T
