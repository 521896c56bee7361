"""Points followed through the layers of a fully connected flow, in either direction.

* Normalising direction x -> z (``push``): stages x, h_0 = standardised x, [y_1,] h_1, ..., h_L = z.  With ``split``
  the pre-activation y_k = h_{k-1} W_kᵀ + b_k is its own stage, so the straight-line-preserving affine step and the
  bending activation step can be told apart.
* Generative direction z -> x (``pull``): base points pulled back through the inverse layers,
  z = h_L, h_{L-1}, ..., h_0, x.

Any number of points runs through one jitted function per FlowSpec in fixed-size blocks (``flow.blocks``), so a new
point count never recompiles."""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..flow import Forward, FlowSpec, Norm, blocks, forward, inverse

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sub(k: int) -> str:
    """An integer as subscript digits: 12 -> '₁₂'."""
    return str(int(k)).translate(_SUB)


class Path(NamedTuple):
    """Points followed through a sequence of stages.

    values: (S, N, D) the points at each stage; names: a short label per stage; layer: the layer index k whose output
    the stage shows (0 for x and h_0, k for y_k and h_k; in the generative direction the layer just undone);
    kind: per stage one of "x", "h0", "pre" (y_k), "out" (h_k), "z"; depth: the j of the h_j the stage belongs to
    (0 for x and h_0, k for y_k and h_k in either direction), used to subsample deep flows by layer."""

    values: np.ndarray
    names: tuple
    layer: tuple
    kind: tuple
    depth: tuple = ()


@lru_cache(maxsize=32)
def _jit_forward(spec: FlowSpec):
    return jax.jit(lambda params, norm, x: forward(spec, params, x, norm))


@lru_cache(maxsize=32)
def _jit_inverse(spec: FlowSpec):
    return jax.jit(lambda params, norm, z: inverse(spec, params, z, norm, return_all=True))


def as_points(x, dtype):
    """An (N, D) array of points in ``dtype`` (the parameters' dtype); ValueError for any other shape."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"Expected an (N, D) array of points, got shape {x.shape}.")
    return jnp.asarray(x, dtype)


def param_dtype(params: dict):
    """The dtype the flow computes in: that of its weights (float32 in the app, float64 in the x64 tests)."""
    return params["W"].dtype


def forward_all(spec: FlowSpec, params: dict, norm: Norm | None, xa) -> Forward:
    """``flow.forward`` on any number of points (numpy arrays out, one compilation per FlowSpec and dtype)."""
    fn = _jit_forward(spec)
    nm = Norm.like(norm, spec.dim, xa.dtype)
    n, parts = blocks(xa)
    outs = [fn(params, nm, b) for b in parts]
    cat = lambda name, ax: np.concatenate([np.asarray(getattr(o, name)) for o in outs], axis=ax)
    return Forward(cat("h0", 0)[:n], cat("ys", 1)[:, :n], cat("hs", 1)[:, :n], cat("logdet_act", 1)[:, :n],
                   cat("z", 0)[:n])


def inverse_all(spec: FlowSpec, params: dict, norm: Norm | None, za) -> tuple[np.ndarray, np.ndarray]:
    """``flow.inverse(return_all=True)`` on any number of points: (x (N, D), h_{k-1} for k = 1..L (L, N, D))."""
    fn = _jit_inverse(spec)
    nm = Norm.like(norm, spec.dim, za.dtype)
    n, parts = blocks(za)
    outs = [fn(params, nm, b) for b in parts]
    x = np.concatenate([np.asarray(o[0]) for o in outs])[:n]
    hs = np.concatenate([np.asarray(o[1]) for o in outs], axis=1)[:, :n]
    return x, hs


def push(spec: FlowSpec, params: dict, norm: Norm | None, x, split: bool = False) -> Path:
    """Points x pushed through the standardisation and every layer (normalising direction x -> z).

    Stages: x, h_0 (only when ``norm`` is given), then per layer k either h_k, or with ``split`` y_k followed by h_k
    (the last layer is affine, so it has only y_L = h_L = z)."""
    xa = as_points(x, param_dtype(params))
    f = forward_all(spec, params, norm, xa)
    L = int(params["W"].shape[0])
    vals, names, layer, kind = [np.asarray(xa)], ["x (data)"], [0], ["x"]
    if norm is not None:
        vals.append(np.asarray(f.h0))
        names.append("h₀ (standardised)")
        layer.append(0)
        kind.append("h0")
    for k in range(1, L + 1):
        if split and k < L:
            vals.append(f.ys[k - 1])
            names.append(f"y{sub(k)} = W{sub(k)}h{sub(k - 1)} + b{sub(k)}")
            layer.append(k)
            kind.append("pre")
        vals.append(f.hs[k - 1])
        names.append(f"z = h{sub(k)}" if k == L else f"h{sub(k)} = s(y{sub(k)})" if split else f"h{sub(k)} (layer {k})")
        layer.append(k)
        kind.append("z" if k == L else "out")
    return Path(np.stack(vals), tuple(names), tuple(layer), tuple(kind), tuple(layer))


def pull(spec: FlowSpec, params: dict, norm: Norm | None, z) -> Path:
    """Base points z pulled back through the inverse layers (generative direction z -> x).

    Stages: z = h_L, h_{L-1}, ..., h_0, and x = h_0 undone by the standardisation (only when ``norm`` is given;
    otherwise h_0 is x)."""
    za = as_points(z, param_dtype(params))
    x, hs = inverse_all(spec, params, norm, za)  # hs[k-1] = h_{k-1}, produced by undoing layer k
    L = int(params["W"].shape[0])
    vals, names, layer, kind = [np.asarray(za)], ["z (base)"], [L + 1], ["z"]
    for k in range(L, 0, -1):
        vals.append(hs[k - 1])
        if k == 1 and norm is None:
            names.append("x = h₀ (layer 1 undone)")
            kind.append("x")
        else:
            names.append(f"h{sub(k - 1)} (layer {k} undone)")
            kind.append("h0" if k == 1 else "out")
        layer.append(k)
    if norm is not None:
        vals.append(x)
        names.append("x (standardisation undone)")
        layer.append(0)
        kind.append("x")
    depth = [L] + [k - 1 for k in range(L, 0, -1)] + ([0] if norm is not None else [])
    return Path(np.stack(vals), tuple(names), tuple(layer), tuple(kind), tuple(depth))


def push_lines(spec: FlowSpec, params: dict, norm: Norm | None, lines, split: bool = False) -> Path:
    """A set of lines (M, P, D) pushed through the layers: Path with values of shape (S, M, P, D)."""
    lines = np.asarray(lines)
    M, P, D = lines.shape
    p = push(spec, params, norm, lines.reshape(M * P, D), split)
    return p._replace(values=p.values.reshape(len(p.names), M, P, D))


def pull_lines(spec: FlowSpec, params: dict, norm: Norm | None, lines) -> Path:
    """A set of base-space lines (M, P, D) pulled back: Path with values of shape (S, M, P, D)."""
    lines = np.asarray(lines)
    M, P, D = lines.shape
    p = pull(spec, params, norm, lines.reshape(M * P, D))
    return p._replace(values=p.values.reshape(len(p.names), M, P, D))
