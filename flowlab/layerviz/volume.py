"""Volume change of a fully connected flow, layer by layer (Gresele et al. eq. 9; Liao & He §3.2, Fig. 4c).

    log|det ∂z/∂x| = −Σ_i log scale_i + Σ_k [ log|det W_k| + Σ_i log s′(y_k,i) ]

split per layer into the data-independent part log|det W_k| and the data-dependent part Σ_i log s′(y_k,i) (0 on the
affine last layer), and the local log-det of one layer (or of layers 1..k) as a field over a plane."""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..flow import FlowSpec, Norm, blocks, logdet_weights, model_log_prob
from ..metrics import log_normal
from .grids import plane_grid
from .paths import as_points, forward_all, param_dtype
from .views import square_range


class LogdetSplit(NamedTuple):
    """Per-layer pieces of log|det dz/dx|: weights (L,) = log|det W_k| (data-independent); act (L, N) =
    sum_i log s'(y_k,i) per point (data-dependent, 0 on the affine last layer); norm: -sum_i log scale_i."""

    weights: np.ndarray
    act: np.ndarray
    norm: float

    @property
    def per_layer(self) -> np.ndarray:
        """(L, N): the whole log-det of layer k at each point."""
        return self.weights[:, None] + self.act

    @property
    def total(self) -> np.ndarray:
        """(N,): log|det dz/dx| of the whole map at each point."""
        return self.norm + np.sum(self.weights) + np.sum(self.act, axis=0)

    def mean_per_layer(self) -> np.ndarray:
        return self.weights + self.act.mean(axis=1)

    def cumulative_mean(self) -> np.ndarray:
        """(L + 1,): mean log|det| of x -> h_k for k = 0..L (k = 0: the standardisation alone)."""
        return self.norm + np.concatenate([[0.0], np.cumsum(self.mean_per_layer())])


_jit_logdet_weights = jax.jit(logdet_weights)


def _check_layer(params: dict, k: int) -> int:
    L = int(params["W"].shape[0])
    if not 1 <= int(k) <= L:
        raise ValueError(f"Layer must be between 1 and {L}, got {k}.")
    return L


def logdet_split(spec: FlowSpec, params: dict, norm: Norm | None, x) -> LogdetSplit:
    """Per-layer log-det split at the points x (raw data coordinates)."""
    f = forward_all(spec, params, norm, as_points(x, param_dtype(params)))
    w = np.asarray(_jit_logdet_weights({"W": params["W"]}), np.float64)
    nt = 0.0 if norm is None else float(norm.logdet())
    return LogdetSplit(w, np.asarray(f.logdet_act, np.float64), nt)


@lru_cache(maxsize=32)
def _jit_layer_logdet(spec: FlowSpec):
    def fn(params, k, h):  # k: 1-based layer index as a traced integer (one compilation for every layer)
        L = params["W"].shape[0]
        W, b = params["W"][k - 1], params["b"][k - 1]
        y = h @ W.T + b
        act = jnp.sum(spec.activation.log_deriv(y), axis=-1)
        return jnp.linalg.slogdet(W)[1] + jnp.where(k == L, 0.0, act)

    return jax.jit(fn)


def layer_logdet_at_input(spec: FlowSpec, params: dict, k: int, h) -> np.ndarray:
    """Local log|det| of layer k alone, h_{k-1} -> h_k, at points h given in the layer's own input coordinates."""
    _check_layer(params, k)
    n, parts = blocks(as_points(h, param_dtype(params)))
    kk = jnp.asarray(int(k), jnp.int32)
    fn = _jit_layer_logdet(spec)
    return np.concatenate([np.asarray(fn(params, kk, b)) for b in parts])[:n].astype(np.float64)


def local_logdet(spec: FlowSpec, params: dict, norm: Norm | None, x, k: int, cumulative: bool = False) -> np.ndarray:
    """Local log-det at data points x: of layer k alone (h_{k-1} -> h_k), or with ``cumulative`` of the map
    x -> h_k (standardisation and layers 1..k; at k = L this is the model's log|det dz/dx|)."""
    _check_layer(params, k)
    s = logdet_split(spec, params, norm, x)
    if cumulative:
        return s.norm + np.sum(s.per_layer[:k], axis=0)
    return s.per_layer[k - 1]


class Field(NamedTuple):
    """A scalar field on a grid: xs (n,), ys (m,), z (m, n); the plane it lives in and where the data sit there."""

    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray
    plane: str  # "x" (data plane) or "input" (layer k's own input h_{k-1})
    points: np.ndarray  # data points in that plane


def logdet_field(spec: FlowSpec, params: dict, norm: Norm | None, k: int, data, plot_range=None, n: int = 80,
                 plane: str = "x", cumulative: bool = False) -> Field:
    """Local log-det over a plane for layer k.

    plane "x": over the data plane, the log|det| of layer k alone at the point the data point x reaches,
    log|det ∂h_k/∂h_{k-1}| (h_{k-1}(x)), or with ``cumulative`` of the whole map x -> h_k.
    plane "input": over layer k's own input plane h_{k-1} (a square around where the data land), log|det| of layer k.
    """
    _check_layer(params, k)
    data = np.asarray(data, np.float64)
    if plane == "x":
        xs, ys, pts = plane_grid(plot_range or square_range(data), n)
        z = local_logdet(spec, params, norm, pts, k, cumulative)
        return Field(xs, ys, z.reshape(len(ys), len(xs)), "x", data)
    if plane == "input":
        f = forward_all(spec, params, norm, as_points(data, param_dtype(params)))
        h_in = np.asarray(f.h0 if k == 1 else f.hs[k - 2], np.float64)
        xs, ys, pts = plane_grid(square_range(h_in, margin=0.25), n)
        z = layer_logdet_at_input(spec, params, k, pts)
        return Field(xs, ys, z.reshape(len(ys), len(xs)), "input", h_in)
    raise ValueError(f"Unknown plane {plane!r}; choose 'x' or 'input'.")


def logdet_check(spec: FlowSpec, params: dict, norm: Norm | None, x) -> float:
    """max |log N(z) + (sum of the per-layer pieces + standardisation) - log q(x)| over the points: how exactly the
    per-layer split adds up to the model's log-likelihood (``flow.model_log_prob``, slogdet for the weights)."""
    xa = as_points(x, param_dtype(params))
    s = logdet_split(spec, params, norm, xa)
    z = np.asarray(forward_all(spec, params, norm, xa).z, np.float64)
    return float(np.max(np.abs(log_normal(z, np) + s.total - model_log_prob(spec, params, norm, xa))))


class VolumeSummary(NamedTuple):
    """The page's headline numbers for a set of points: the split itself, mean log q(x), mean log|det ∂z/∂x|,
    Σ_k log|det W_k|, the mean over the points of Σ_k Σ_i log s′(y_k,i), and ``logdet_check``."""

    split: LogdetSplit
    mean_log_q: float
    mean_logdet: float
    logdet_weights: float
    mean_logdet_act: float
    check: float


def volume_summary(spec: FlowSpec, params: dict, norm: Norm | None, x) -> VolumeSummary:
    """``VolumeSummary`` at the points x (raw data coordinates)."""
    s = logdet_split(spec, params, norm, x)
    lq = model_log_prob(spec, params, norm, x)
    return VolumeSummary(s, float(np.mean(lq)), float(np.mean(s.total)), float(np.sum(s.weights)),
                         float(np.mean(np.sum(s.act, axis=0))), logdet_check(spec, params, norm, x))
