"""Lesson 4 — the relative gradient (Gresele et al. §4, eqs. 10–15): perturb W multiplicatively, W → (I + ε)W; the
steepest direction becomes ∇f WᵀW, the log-det term's W^{-T} cancels (eq. 14) and the data term needs only
(B, D) × (D, D) products (eq. 15)."""
from __future__ import annotations

import math

import numpy as np

from ..metrics import random_orthogonal

SINGULAR_RANGE = 2.0  # random_matrix: singular values log-uniform in [1/2, 2], so the condition number is at most 4


def random_matrix(d: int, seed: int = 0):
    """A random D x D matrix with controlled conditioning, as used in the numerical checks: Q₁ diag(s) Q₂ᵀ with
    Haar-random orthogonal Q₁, Q₂ and singular values s log-uniform in [1/2, 2] (condition number ≤ 4)."""
    if int(d) < 1:
        raise ValueError(f"Dimension must be a positive integer, got {d}.")
    d = int(d)
    rng = np.random.default_rng(seed)
    q1, q2 = random_orthogonal(rng, (d, d)), random_orthogonal(rng, (d, d))
    s = np.exp(rng.uniform(-math.log(SINGULAR_RANGE), math.log(SINGULAR_RANGE), d))
    return (q1 * s) @ q2.T


def logabsdet(W) -> float:
    """log|det W| (LU, float64)."""
    return float(np.linalg.slogdet(np.asarray(W, np.float64))[1])


def fd_grad_logdet(W, h: float = 1e-6):
    """∂ log|det W| / ∂W by central finite differences (independent of any formula)."""
    W = np.asarray(W, np.float64)
    G = np.zeros_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            E = np.zeros_like(W)
            E[i, j] = h
            G[i, j] = (logabsdet(W + E) - logabsdet(W - E)) / (2 * h)
    return G


def relative_gradient_check(d: int = 5, seed: int = 0, eps: float = 1e-4) -> dict:
    """Numerical check of Gresele eqs. 10–14 on a random W.

    * ``err_eq10``: ‖G − W^{-T}‖/‖W^{-T}‖ with G the finite-difference gradient of log|det W|;
    * ``err_eq14``: ‖G WᵀW − W‖/‖W‖  (the relative gradient of the log-det term is W itself);
    * multiplicative perturbation W → (I + εE)W: log|det((I+εE)W)| − log|det W| against the first-order
      prediction ⟨G Wᵀ, εE⟩ = ε tr E  (eq. 12), relative error ``err_eq12`` = O(ε).
    """
    W = random_matrix(d, seed)
    G = fd_grad_logdet(W)
    Winv_T = np.linalg.inv(W).T
    rel = G @ W.T @ W
    E = np.random.default_rng(seed + 1).standard_normal(W.shape)
    actual = logabsdet((np.eye(len(W)) + eps * E) @ W) - logabsdet(W)
    predicted = float(np.sum((G @ W.T) * (eps * E)))
    return {"W": W, "G": G, "relative": rel,
            "err_eq10": float(np.linalg.norm(G - Winv_T) / np.linalg.norm(Winv_T)),
            "err_eq14": float(np.linalg.norm(rel - W) / np.linalg.norm(W)),
            "perturb_actual": actual, "perturb_predicted": predicted, "trace_E": float(np.trace(E)) * eps,
            "err_eq12": abs(actual - predicted) / abs(predicted)}


def relative_update_naive(delta, H, W):
    """(δᵀH) WᵀW with explicit D×D matrix products: O(B D² + D³)."""
    return (delta.T @ H) @ W.T @ W


def relative_update_fast(delta, H, W):
    """Eq. 15 for a batch: δᵀ((H Wᵀ) W) — only (B,D)×(D,D) products, O(B D²), no D×D×D product.
    H Wᵀ is the layer's pre-activation (minus bias), already available from the forward pass."""
    return delta.T @ ((H @ W.T) @ W)


def relative_update_flops(d: int, b: int) -> dict:
    """Multiply-add counts: naive δᵀH (B D²) + two D×D products (2 D³); eq. 15 (HWᵀ)W (B D²) and δᵀ(·) (B D²),
    with H Wᵀ taken from the forward pass (it is the pre-activation minus the bias), or ``fast_with_forward`` = 3 B D²
    when H Wᵀ has to be computed again."""
    return {"naive": b * d * d + 2 * d ** 3, "fast": 2 * b * d * d, "fast_with_forward": 3 * b * d * d}


def relative_update_crossover(b: int, reuse: bool = True) -> int:
    """The smallest D at which eq. 15 needs fewer multiply-adds than the naive product for a batch of b: D > B/2
    when H Wᵀ comes from the forward pass (2BD² < BD² + 2D³), D > B when it is recomputed (3BD² < BD² + 2D³)."""
    key = "fast" if reuse else "fast_with_forward"
    counts = (relative_update_flops(d, b) for d in range(1, 2 * int(b) + 2))
    return next(d for d, c in enumerate(counts, start=1) if c[key] < c["naive"])


def relative_update_check(d: int, b: int, seed: int = 0) -> dict:
    """Eq. 15 on random δ, H (B, D) and W: relative difference between the fast and the naive product."""
    rng = np.random.default_rng(seed)
    W, H, delta = random_matrix(d, seed), rng.standard_normal((int(b), int(d))), rng.standard_normal((int(b), int(d)))
    naive, fast = relative_update_naive(delta, H, W), relative_update_fast(delta, H, W)
    return {"rel_diff": float(np.linalg.norm(fast - naive) / np.linalg.norm(naive)),
            "flops": relative_update_flops(d, b)}
