"""Lesson 2 — linear flows in two dimensions (Zhao §3.3): x = A u, u ~ N(0, I) gives x ~ N(0, A Aᵀ); areas scale by
|det A| and composing maps multiplies determinants."""
from __future__ import annotations

import math

import numpy as np

from ..metrics import LOG2PI, log_normal


def polygon_area(pts) -> float:
    """Signed area of a closed polygon (shoelace formula); pts (n, 2) without the repeated first point."""
    p = np.asarray(pts, np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def linear_map_2d(A, n_circle: int = 256, n_samples: int = 2000, seed: int = 0) -> dict:
    """Image of the unit circle under x = A u, its *signed* area ratio (shoelace areas of the mapped polygon and of
    the polygon itself: exactly det A, since a linear map scales every area by |det A| and reverses the polygon's
    orientation when det A < 0), the ellipse's semi-axes (singular values) and the Gaussian x = A u, u ~ N(0, I)
    induces: N(0, A Aᵀ), with samples."""
    A = np.asarray(A, np.float64)
    if A.shape != (2, 2) or not np.all(np.isfinite(A)):
        raise ValueError("A must be a finite 2 x 2 matrix.")
    t = np.linspace(0.0, 2 * np.pi, int(n_circle), endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    ellipse = circle @ A.T
    det = float(np.linalg.det(A))
    u = np.random.default_rng(seed).standard_normal((int(n_samples), 2))
    return {"A": A, "circle": circle, "ellipse": ellipse, "det": det,
            "signed_area_ratio": polygon_area(ellipse) / polygon_area(circle), "singular_values": np.linalg.svd(A)[1],
            "cov": A @ A.T, "u_samples": u, "x_samples": u @ A.T}


def induced_log_density(A, x):
    """log p_X(x) for x = A u, u ~ N(0, I), by the change of variables: log N(A^{-1} x; 0, I) − log|det A|."""
    A = np.asarray(A, np.float64)
    sign, logdet = np.linalg.slogdet(A)
    if sign == 0 or not np.isfinite(logdet) or np.linalg.cond(A) > 1e12:
        raise ValueError("A is singular: it squashes the plane onto a line, so it has no density.")
    u = np.linalg.solve(A, np.asarray(x, np.float64).T).T
    return log_normal(u, np) - logdet


def gaussian_log_density(cov, x):
    """log N(x; 0, Σ) directly from the covariance (for checking ``induced_log_density``)."""
    cov = np.asarray(cov, np.float64)
    x = np.asarray(x, np.float64)
    q = np.sum(x * np.linalg.solve(cov, x.T).T, axis=1)
    return -0.5 * q - 0.5 * x.shape[1] * LOG2PI - 0.5 * np.linalg.slogdet(cov)[1]


def compose_2d(A, B) -> dict:
    """x = B (A u): the composition is the linear map BA and det(BA) = det(B) det(A) (areas multiply)."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    return {"BA": B @ A, "det_A": float(np.linalg.det(A)), "det_B": float(np.linalg.det(B)),
            "det_BA": float(np.linalg.det(B @ A))}


def rotation(deg: float):
    """The 2 x 2 rotation by ``deg`` degrees (counter-clockwise)."""
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


# the second map B of the lesson's "compose" widget: name -> matrix
COMPOSE_MAPS = {"rotation by 45°": rotation(45), "shear [[1, 0.8], [0, 1]]": np.array([[1, 0.8], [0, 1.0]]),
                "scaling diag(2, 0.5)": np.diag([2.0, 0.5]), "reflection diag(1, −1)": np.diag([1.0, -1.0])}
