"""Lesson 5 — self-normalizing flows (Keller et al. §4.1, eqs. 8–11): a learned R ≈ W⁻¹ stands in for W^{-1} in
the gradient of log|det W|, so no inverse is ever computed.  Angles use the one definition of ``flowlab.metrics``
(Keller Fig. 3); ‖RW − I‖_F is ``metrics.inverse_error``."""
from __future__ import annotations

import numpy as np

from ..metrics import angle_degrees, inverse_error
from .relative import random_matrix

MOMENTUM = 0.9  # Nesterov momentum of snf_learn_inverse: plain descent crawls when YᵀY is ill-conditioned
DATA_SEED_OFFSET = 7  # the data covariance's random matrix uses seed + 7, so it differs from W's


def angle_deg(a, b) -> float:
    """Angle between two arrays (flattened) in degrees, ``metrics.angle_degrees`` in float64 numpy: accurate for
    tiny angles too, where acos of a rounded cosine cannot resolve less than ~1e-6 degrees."""
    return float(angle_degrees(np.asarray(a, np.float64), np.asarray(b, np.float64), np))


def linear_layer_grads(W, H, R=None):
    """Gradient of NLL = mean_b ½‖W h_b‖² − log|det W| (+const) for a one-layer linear flow on rows H.
    With R=None: exact, (1/B) Zᵀ H − W^{-T}  (Gresele eq. 10, Keller eq. 8).  With R: the self-normalizing
    surrogate (1/B) Zᵀ H − Rᵀ  (Keller eq. 10).  Z = H Wᵀ."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    Z = H @ W.T
    data = Z.T @ H / H.shape[0]
    return data - (np.linalg.inv(W).T if R is None else np.asarray(R, np.float64).T)


def _snf_problem(d: int, b: int, seed: int):
    """A random layer W and data rows H with a random covariance (so W is not already optimal)."""
    if int(d) < 1 or int(b) < int(d):
        raise ValueError(f"Need a positive dimension and at least as many samples as dimensions, got D={d}, B={b}.")
    rng = np.random.default_rng(seed)
    W = random_matrix(d, seed)
    H = rng.standard_normal((int(b), int(d))) @ random_matrix(d, seed + DATA_SEED_OFFSET).T
    return W, H, rng


def snf_learn_inverse(d: int = 8, b: int = 256, steps: int = 200, seed: int = 0) -> dict:
    """Learn R ≈ W^{-1} the SNF way: gradient descent on the reconstruction loss mean_b ‖R W h_b − h_b‖² from
    Keller's initialisation R = Wᵀ (App. A.3), recording after every step the angle between the exact gradient of
    the layer's NLL and the SNF gradient that uses Rᵀ, and ‖RW − I‖_F.  Step size 1/L with L the loss's curvature
    bound 2 λ_max(YᵀY/B), Y = H Wᵀ, and Nesterov momentum 0.9 (plain descent crawls when YᵀY is ill-conditioned)."""
    W, H, _ = _snf_problem(d, b, seed)
    Y = H @ W.T
    C = Y.T @ Y / len(Y)
    lr = 1.0 / (2.0 * np.linalg.eigvalsh(C).max())
    R = W.T.copy()
    V = np.zeros_like(R)
    g_exact = linear_layer_grads(W, H)
    angles, recon, loss = [], [], []
    for _ in range(int(steps) + 1):
        angles.append(angle_deg(g_exact, linear_layer_grads(W, H, R)))
        recon.append(float(inverse_error(R, W, np)))
        E = Y @ R.T - H  # reconstruction residuals (B, D)
        loss.append(float(np.mean(np.sum(E * E, axis=1))))
        ahead = R + MOMENTUM * V
        V = MOMENTUM * V - lr * 2.0 * (Y @ ahead.T - H).T @ Y / len(Y)
        R = R + V
    return {"step": np.arange(int(steps) + 1), "angle": np.asarray(angles), "recon": np.asarray(recon),
            "loss": np.asarray(loss), "R": R, "W": W}


def snf_angle_curve(d: int = 8, b: int = 256, rel_errors=None, seed: int = 0) -> dict:
    """Angle between the exact gradient and the SNF gradient as R moves away from W^{-1}:
    R = W^{-1} + t·E, E random with ‖E‖_F = ‖W^{-1}‖_F, for each t in ``rel_errors``.
    Also reports the reconstruction error ‖RW − I‖_F the SNF penalty keeps small.  Data: Gaussian rows with a random
    covariance, so W is not already optimal (the exact gradient is not zero)."""
    rel_errors = np.linspace(0.0, 1.0, 21) if rel_errors is None else np.asarray(rel_errors, np.float64)
    W, H, rng = _snf_problem(d, b, seed)
    Winv = np.linalg.inv(W)
    E = rng.standard_normal((d, d))
    E *= np.linalg.norm(Winv) / np.linalg.norm(E)
    g_exact = linear_layer_grads(W, H)
    angles, recon, logdet_angles = [], [], []
    for t in rel_errors:
        R = Winv + t * E
        angles.append(angle_deg(g_exact, linear_layer_grads(W, H, R)))
        logdet_angles.append(angle_deg(Winv.T, R.T))
        recon.append(float(inverse_error(R, W, np)))
    return {"rel_error": rel_errors, "angle": np.asarray(angles), "logdet_angle": np.asarray(logdet_angles),
            "recon": np.asarray(recon), "W": W, "H": H, "E": E, "grad_norm": float(np.linalg.norm(g_exact))}
