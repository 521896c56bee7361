"""Fully connected invertible flow (Gresele et al. 2020, §2–3 and App. H.2).

Data rows are samples.  With h_0 = (x - shift) / scale (optional fixed standardisation),

    y_k = h_{k-1} W_k^T + b_k,   h_k = s(y_k) for k < L,   z = h_L = y_L (the last layer is affine),

and with a standard normal base (eq. 9, summed over layers):

    log q(x) = log N(z; 0, I) + sum_{k<L} sum_i log s'(y_{k,i}) + sum_k log|det W_k| - sum_i log scale_i.

Parameters are a dict of stacked arrays: W (L, D, D), b (L, D), for self-normalizing flows R (L, D, D), and for a
learned activation A (L-1, D, n_params): layer k's s is s(·; A_k) (``flowlab.activations``).
Layers run under `jax.lax.scan`, so tracing and compile time do not grow with depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .activations import Activation
from .metrics import LOG2PI, log_normal, orthogonal_from  # noqa: F401  (LOG2PI, log_normal: part of the model)

INITS = ("orthogonal", "identity_noise")
TRAINER_INITS = INITS + ("data",)  # "data": orthogonal, then data_init on the training data


@dataclass(frozen=True)
class FlowSpec:
    """Structural settings (static under jit): dimension, number of layers, activation."""

    dim: int = 2
    layers: int = 8
    activation: Activation = Activation()

    def __post_init__(self):
        if int(self.dim) < 1:
            raise ValueError(f"Dimension must be a positive integer, got {self.dim}.")
        if int(self.layers) < 1:
            raise ValueError(f"Number of layers must be a positive integer, got {self.layers}.")


class Norm(NamedTuple):
    """Fixed input standardisation h_0 = (x - shift) / scale; its log-det -sum(log scale) is counted."""

    shift: jax.Array
    scale: jax.Array

    @staticmethod
    def identity(dim: int) -> "Norm":
        return Norm(jnp.zeros(dim, jnp.float32), jnp.ones(dim, jnp.float32))

    @staticmethod
    def like(norm: "Norm | None", dim: int, dtype=jnp.float32) -> "Norm":
        """``norm`` in ``dtype``, or the identity standardisation when there is none."""
        if norm is None:
            return Norm(jnp.zeros(dim, dtype), jnp.ones(dim, dtype))
        return Norm(jnp.asarray(norm.shift, dtype), jnp.asarray(norm.scale, dtype))

    @staticmethod
    def fit(x) -> "Norm":
        x = np.asarray(x, dtype=np.float64)
        return Norm(jnp.asarray(x.mean(0), jnp.float32), jnp.asarray(np.maximum(x.std(0), 1e-6), jnp.float32))

    def apply(self, x):
        return (x - self.shift) / self.scale

    def undo(self, h):
        return h * self.scale + self.shift

    def logdet(self):
        return -jnp.sum(jnp.log(self.scale))


# ---- initialisation --------------------------------------------------------------------------------------------
def init_params(spec: FlowSpec, key, init: str = "orthogonal", noise: float = 0.01, with_R: bool = False,
                dtype=jnp.float32) -> dict:
    """Initial parameters.

    * ``orthogonal``: each W_k a random orthogonal matrix (|det| = 1), b = 0.
    * ``identity_noise``: W_k = I + Xavier-normal noise with gain ``noise`` (SNF App. A.3: gain 0.01), b = 0.
    With ``with_R`` the learned inverses R_k = W_k^T are added (SNF App. A.3): W_k⁻¹ for orthogonal W_k, only close to
    it for identity + noise.  A learned activation gets A_k = its ``init_params`` in every layer.
    """
    if init not in INITS:
        raise ValueError(f"Unknown initialisation {init!r}; choose one of {', '.join(INITS)}.")
    L, D = int(spec.layers), int(spec.dim)
    if init == "orthogonal":
        W = orthogonal_from(jax.random.normal(key, (L, D, D), dtype), jnp)
    else:
        std = noise * math.sqrt(2.0 / (D + D))
        W = jnp.eye(D, dtype=dtype)[None] + std * jax.random.normal(key, (L, D, D), dtype)
    params = {"W": W.astype(dtype), "b": jnp.zeros((L, D), dtype)}
    if with_R:
        params["R"] = jnp.swapaxes(params["W"], -1, -2)
    act = spec.activation
    if act.learnable:
        params["A"] = jnp.broadcast_to(act.init_params(D, dtype), (L - 1, D, act.n_params)).astype(dtype)
    return params


def activation_params(spec: FlowSpec, params: dict, dtype=None):
    """Per-layer activation parameters as an (L, D, n_params) stack for ``lax.scan``: A (L-1, D, n_params) with a
    zero row for the affine last layer (never used), or an (L, D, 0) stack for a fixed activation."""
    act = spec.activation
    L, D = params["W"].shape[:2]
    dtype = params["W"].dtype if dtype is None else dtype
    if not act.learnable:
        return jnp.zeros((L, D, 0), dtype)
    if "A" not in params:
        raise ValueError(f"The {act.label} activation needs its parameters: the flow has no params['A'].")
    return jnp.concatenate([jnp.asarray(params["A"], dtype), jnp.zeros((1, D, act.n_params), dtype)], axis=0)


DATA_INIT_MIN_STD = 1e-2  # floor on the batch std in data_init: nearly degenerate data must not blow W up


def data_init(spec: FlowSpec, params: dict, x) -> dict:
    """Data-dependent initialisation (the idea of Glow's ActNorm, Kingma & Dhariwal 2018, applied to W_k and b_k).

    Layer by layer on a batch ``x`` of standardised inputs, with u = h_{k-1} W_kᵀ and its per-unit batch mean μ_k and
    standard deviation σ_k (floored at ``DATA_INIT_MIN_STD``):

        W_k ← diag(1/σ_k) W_k,   b_k ← −μ_k / σ_k,   so every pre-activation y_k has mean 0 and variance 1 on x.

    Why: orthogonal W with b = 0 leaves each layer's activation to shrink the data (s_L' < 1 on average), so an
    untrained deep flow maps the data close to a point and training starts at a very high NLL; here every layer
    starts in the activation's curved range (measurements: assets/benchmarks/RESULTS.md).  The rows of an
    orthogonal W only get rescaled, so W_k⁻¹ = W_k,origᵀ diag(σ_k) stays free: ``R`` (if present) is set to it.
    Deterministic given ``params`` and ``x``."""
    act = spec.activation
    L = params["W"].shape[0]
    last = jnp.arange(L) == L - 1

    def layer(h, inp):
        Q, theta, is_last = inp
        u = h @ Q.T
        mu, sd = jnp.mean(u, axis=0), jnp.maximum(jnp.std(u, axis=0), DATA_INIT_MIN_STD)
        W, b = Q / sd[:, None], -mu / sd
        y = u / sd + b
        return jnp.where(is_last, y, act(y, theta)), (W, b, jnp.swapaxes(Q, -1, -2) * sd[None, :])

    thetas = activation_params(spec, params)
    _, (W, b, R) = jax.lax.scan(layer, jnp.asarray(x, params["W"].dtype), (params["W"], thetas, last))
    out = {**params, "W": W, "b": b}
    if "R" in params:
        out["R"] = R  # exact inverse when the W given were orthogonal (init_params' default)
    return out


# ---- forward ---------------------------------------------------------------------------------------------------
class Forward(NamedTuple):
    """Every intermediate of one forward pass (normalising direction x -> z)."""

    h0: jax.Array  # (B, D) standardised input
    ys: jax.Array  # (L, B, D) pre-activations y_k
    hs: jax.Array  # (L, B, D) layer outputs h_k (h_L = z)
    logdet_act: jax.Array  # (L, B) sum_i log s'(y_k,i); 0 for the last (affine) layer
    z: jax.Array  # (B, D)


def forward(spec: FlowSpec, params: dict, x, norm: Norm | None = None, acc=None) -> Forward:
    """Forward pass with intermediates.  ``acc`` (L, B, D), if given, is added to every pre-activation: the
    accumulator trick of App. D — zero in value, its gradient is the backpropagated error delta_k = dLoss/dy_k."""
    act = spec.activation
    h0 = x if norm is None else norm.apply(x)
    L = params["W"].shape[0]
    last = jnp.arange(L) == L - 1
    if acc is None:
        acc = jnp.zeros((L,) + h0.shape, h0.dtype)

    def layer(h, inp):
        W, b, a, theta, is_last = inp
        y = h @ W.T + b + a
        h_new = jnp.where(is_last, y, act(y, theta))
        lda = jnp.where(is_last, 0.0, jnp.sum(act.log_deriv(y, theta), axis=-1))
        return h_new, (y, h_new, lda)

    thetas = activation_params(spec, params)
    z, (ys, hs, lda) = jax.lax.scan(layer, h0, (params["W"], params["b"], acc, thetas, last))
    return Forward(h0, ys, hs, lda, z)


def logdet_weights(params: dict):
    """log|det W_k| per layer, shape (L,), by LU (slogdet): O(L D^3), done once per parameter update."""
    return jnp.linalg.slogdet(params["W"])[1]


def log_prob(spec: FlowSpec, params: dict, x, norm: Norm | None = None):
    """Exact log q(x) per row (slogdet for the weight terms)."""
    f = forward(spec, params, x, norm)
    lp = log_normal(f.z) + jnp.sum(f.logdet_act, axis=0) + jnp.sum(logdet_weights(params))
    if norm is not None:
        lp = lp + norm.logdet()
    return lp


def layer_logdets(spec: FlowSpec, params: dict, x, norm: Norm | None = None):
    """Per-layer contributions to log|det dz/dx|: (data-independent log|det W_k| (L,), data-dependent
    sum_i log s'(y_k,i) (L, B)).  Their total plus the standardisation term is the model's log|det J|."""
    f = forward(spec, params, x, norm)
    return logdet_weights(params), f.logdet_act


# ---- inverse and sampling ---------------------------------------------------------------------------------------
def inverse(spec: FlowSpec, params: dict, z, norm: Norm | None = None, return_all: bool = False):
    """x = f^{-1}(z): layers in reverse, h_{k-1} = (s^{-1}(h_k) - b_k) W_k^{-T} (no activation to undo on layer L).

    With ``return_all`` also returns the (L, B, D) stack of h_{k-1} produced by undoing layers L..1."""
    act = spec.activation
    L = params["W"].shape[0]
    last = jnp.arange(L) == L - 1

    def layer(h, inp):
        W, b, theta, is_last = inp
        y = jnp.where(is_last, h, act.inverse(h, theta))
        h_prev = jnp.linalg.solve(W, (y - b).T).T  # (y - b) W^{-T}
        return h_prev, h_prev

    thetas = activation_params(spec, params)
    h0, hs = jax.lax.scan(layer, z, (params["W"], params["b"], thetas, last), reverse=True)
    x = h0 if norm is None else norm.undo(h0)
    return (x, hs) if return_all else x


def sample(spec: FlowSpec, params: dict, key, n: int, norm: Norm | None = None):
    """n samples from the flow: z ~ N(0, I), x = f^{-1}(z)."""
    z = jax.random.normal(key, (int(n), int(spec.dim)), params["W"].dtype)
    return inverse(spec, params, z, norm)


def num_params(params: dict) -> int:
    return int(sum(np.prod(v.shape) for v in jax.tree_util.tree_leaves(params)))


# ---- evaluation on many points ------------------------------------------------------------------------------------
BLOCK = 4096  # points per jitted call: inputs are zero-padded to a multiple, so each FlowSpec compiles once


def blocks(x, size: int = BLOCK):
    """(n, fixed-size blocks of the rows of ``x``, the last zero-padded): jitted functions of a block compile once."""
    n = x.shape[0]
    pad = (-n) % size
    if pad:
        x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
    return n, [x[i:i + size] for i in range(0, x.shape[0], size)]


@lru_cache(maxsize=32)
def _jit_log_prob(spec: FlowSpec):
    return jax.jit(lambda params, norm, x: log_prob(spec, params, x, norm))


def model_log_prob(spec: FlowSpec, params: dict, norm: Norm | None, x) -> np.ndarray:
    """log q(x) per row of ``x`` (float64 out), in the parameters' dtype; jitted once per FlowSpec."""
    dt = params["W"].dtype
    n, parts = blocks(jnp.asarray(np.asarray(x), dt))
    nm = Norm.like(norm, spec.dim, dt)
    return np.concatenate([np.asarray(_jit_log_prob(spec)(params, nm, b)) for b in parts])[:n].astype(np.float64)


@lru_cache(maxsize=32)
def _jit_sample(spec: FlowSpec, n: int):
    return jax.jit(lambda params, norm, key: sample(spec, params, key, n, norm))


def model_samples(spec: FlowSpec, params: dict, norm: Norm | None, n: int = 1000, seed: int = 0) -> np.ndarray:
    """``n`` samples from the flow (jitted once per FlowSpec and n)."""
    nm = Norm.like(norm, spec.dim, params["W"].dtype)
    return np.asarray(_jit_sample(spec, int(n))(params, nm, jax.random.PRNGKey(int(seed))))
