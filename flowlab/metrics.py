"""Numerics shared by the model, training, the experiments and the lessons — each defined once here.

Functions that take an ``xp`` argument work on numpy arrays (``xp=np``, float64 where the lessons need it) and on
jax arrays (``xp=jnp``, inside jitted code)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

LOG2PI = math.log(2.0 * math.pi)


def log_normal(z, xp=jnp):
    """log N(z; 0, I) per row: −½‖z‖² − (D/2) log 2π."""
    return -0.5 * xp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * LOG2PI


def angle_degrees(a, b, xp=jnp):
    """Angle in degrees between two arrays (flattened), θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖) for the unit vectors â, b̂:
    accurate near 0° and 180°, where acos of a rounded cosine cannot resolve less than ~1e-6 degrees."""
    a, b = xp.ravel(xp.asarray(a)), xp.ravel(xp.asarray(b))
    a, b = a / (xp.linalg.norm(a) + 1e-30), b / (xp.linalg.norm(b) + 1e-30)
    return xp.degrees(2.0 * xp.arctan2(xp.linalg.norm(a - b), xp.linalg.norm(a + b)))


def paired_kl(log_p, log_q, xp=np):
    """KL(p‖q) = E_p[log p(x) − log q(x)] estimated on samples x ~ p, paired (both log-densities at the same points):
    (mean of log p − log q, its standard error std / √n).  Unbiased like test NLL − H(p), with the exact entropy H(p),
    but the sampling noise of −log p(x) that both terms share cancels point by point, so the error is far smaller
    wherever q is close to p.  ``xp=jnp`` inside jitted code (the pair is then two jax scalars)."""
    d = xp.ravel(xp.asarray(log_p)) - xp.ravel(xp.asarray(log_q))
    n = d.shape[0]
    if xp is np:
        if n == 0:
            raise ValueError("The paired KL needs at least one point.")
        return float(np.mean(d)), float(np.std(d) / math.sqrt(n))
    return xp.mean(d), xp.std(d) / math.sqrt(n)


def flat(tree: dict, keys=("W", "b")):
    """The entries ``keys`` of a parameter (or gradient) dict, flattened into one vector."""
    return jnp.concatenate([jnp.ravel(tree[k]) for k in keys])


def inverse_error(R, W, xp=jnp):
    """How far learned inverses are from the weights' inverses: mean over layers of ‖R_k W_k − I‖_F, for stacks
    (L, D, D) or single (D, D) matrices.  0 exactly when every R_k = W_k⁻¹."""
    R, W = xp.asarray(R), xp.asarray(W)
    rw = xp.matmul(R, W) - xp.eye(W.shape[-1], dtype=W.dtype)
    return xp.mean(xp.sqrt(xp.sum(rw * rw, axis=(-1, -2))))


def all_finite(tree):
    """True when every leaf of a pytree is finite (a jax boolean scalar, usable under jit)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def tree_where(cond, a, b):
    """Leaf-wise ``where(cond, a, b)`` for two pytrees of the same structure."""
    return jax.tree_util.tree_map(lambda u, v: jnp.where(cond, u, v), a, b)


def global_norm(tree):
    """‖tree‖₂ over all leaves."""
    return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(tree)))


def loglog_slope(dims, times) -> float:
    """Least-squares slope of log t against log D (t ∝ D^slope); ValueError with fewer than two sizes."""
    d, t = np.log(np.asarray(dims, np.float64)), np.log(np.asarray(times, np.float64))
    if d.size < 2:
        raise ValueError("Need at least two sizes to fit a slope.")
    return float(np.polyfit(d, t, 1)[0])


def fit_slope(dims, times) -> float:
    """``loglog_slope``, or NaN with fewer than two distinct sizes (for tables that may be sparse)."""
    dims, times = np.asarray(dims, float), np.asarray(times, float)
    if dims.size < 2 or np.unique(dims).size < 2:
        return float("nan")
    return loglog_slope(dims, times)


def orthogonal_from(a, xp=np):
    """A random orthogonal matrix (or stack) from Gaussian draws ``a`` (..., D, D): Q of a = QR with the signs of
    R's diagonal moved into Q, so the result is Haar-distributed."""
    q, r = xp.linalg.qr(a)
    return q * xp.sign(xp.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def random_orthogonal(rng: np.random.Generator, shape) -> np.ndarray:
    """Haar-random orthogonal matrices of ``shape`` (..., D, D), float64, from a numpy Generator."""
    return orthogonal_from(rng.standard_normal(tuple(shape)), np)
