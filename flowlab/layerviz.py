"""Layer-by-layer views of a fully connected flow (Liao & He, Fig. 3 and 4c; Gresele et al. §3, eq. 9).

Everything here is plain math on arrays; figure builders live in ``flowlab.plots.layers``.

* Normalising direction x -> z: a *path* of stages x, h_0 = standardised x, [y_1,] h_1, ..., h_L = z for any set of
  points (data, or the points of a regular grid of lines).  With ``split`` the pre-activation y_k = h_{k-1} W_k^T + b_k
  is its own stage, so the straight-line-preserving affine step and the bending activation step can be told apart.
* Generative direction z -> x: base points (samples, a polar or cartesian grid) pulled back through the inverse
  layers: z = h_L, h_{L-1}, ..., h_0, x.
* Volume change: log|det dz/dx| = -sum_i log scale_i + sum_k [ log|det W_k| + sum_i log s'(y_k,i) ], split per
  layer into the data-independent part log|det W_k| and the data-dependent part sum_i log s'(y_k,i) (0 on the
  affine last layer), and the local log-det of one layer (or of layers 1..k) as a field over a plane.
* Layer subsampling for deep flows, and validation of the page's URL query parameters.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .flow import Forward, FlowSpec, Norm, forward, inverse, logdet_weights

# ---- URL settings ------------------------------------------------------------------------------------------------
DEFAULT_DENSITY = "moons"
DEFAULT_LAYERS = 10
LAYER_LIMITS = (1, 100)


def settings_from_query(params) -> tuple[dict, list[str]]:
    """Validate the page's query parameters ``density`` and ``layers`` (used to train a small model here).

    Returns ({"density", "layers"}, notes); a missing key takes the default, an invalid one the default plus a note."""
    from .densities import REGISTRY

    q = {}
    for k, v in dict(params).items():
        if isinstance(v, (list, tuple)):
            v = v[-1] if v else ""
        q[k] = str(v).strip()
    out = {"density": DEFAULT_DENSITY, "layers": DEFAULT_LAYERS}
    notes: list[str] = []
    if "density" in q:
        if q["density"] in REGISTRY:
            out["density"] = q["density"]
        else:
            notes.append(f"Unknown density {q['density']!r} in the link; using {DEFAULT_DENSITY!r} "
                         f"(choose one of: {', '.join(REGISTRY)}).")
    if "layers" in q:
        lo, hi = LAYER_LIMITS
        try:
            f = float(q["layers"])
            if not f.is_integer():
                raise ValueError
            v = int(f)
            if not lo <= v <= hi:
                notes.append(f"Ignored layers={q['layers']!r} from the link (must be between {lo} and {hi}); "
                             f"using {DEFAULT_LAYERS}.")
            else:
                out["layers"] = v
        except (ValueError, OverflowError):
            notes.append(f"Ignored layers={q['layers']!r} from the link (not an integer); using {DEFAULT_LAYERS}.")
    return out, notes


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sub(k: int) -> str:
    """An integer as subscript digits: 12 -> '₁₂'."""
    return str(int(k)).translate(_SUB)


# ---- paths through the layers ----------------------------------------------------------------------------------
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
def _fwd(spec: FlowSpec):
    return jax.jit(lambda params, norm, x: forward(spec, params, x, norm))


@lru_cache(maxsize=32)
def _inv(spec: FlowSpec):
    return jax.jit(lambda params, norm, z: inverse(spec, params, z, norm, return_all=True))


CHUNK = 4096  # points per jitted call: inputs are zero-padded to a multiple, so each FlowSpec compiles once


def _padded_blocks(a):
    n = a.shape[0]
    pad = (-n) % CHUNK
    if pad:
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return n, [a[i:i + CHUNK] for i in range(0, a.shape[0], CHUNK)]


def _forward_all(spec: FlowSpec, params: dict, norm: Norm | None, xa) -> Forward:
    """forward() on any number of points in fixed-size blocks (one compilation per FlowSpec and dtype)."""
    fn = _fwd(spec)
    nm = _norm_or_identity(norm, spec.dim, xa.dtype)
    n, blocks = _padded_blocks(xa)
    outs = [fn(params, nm, b) for b in blocks]
    cat = lambda name, ax: np.concatenate([np.asarray(getattr(o, name)) for o in outs], axis=ax)
    return Forward(cat("h0", 0)[:n], cat("ys", 1)[:, :n], cat("hs", 1)[:, :n], cat("logdet_act", 1)[:, :n],
                   cat("z", 0)[:n])


def _inverse_all(spec: FlowSpec, params: dict, norm: Norm | None, za):
    """inverse(return_all=True) on any number of points in fixed-size blocks."""
    fn = _inv(spec)
    nm = _norm_or_identity(norm, spec.dim, za.dtype)
    n, blocks = _padded_blocks(za)
    outs = [fn(params, nm, b) for b in blocks]
    x = np.concatenate([np.asarray(o[0]) for o in outs])[:n]
    hs = np.concatenate([np.asarray(o[1]) for o in outs], axis=1)[:, :n]
    return x, hs


def _norm_or_identity(norm: Norm | None, dim: int, dtype) -> Norm:
    if norm is None:
        return Norm(jnp.zeros(dim, dtype), jnp.ones(dim, dtype))
    return Norm(jnp.asarray(norm.shift, dtype), jnp.asarray(norm.scale, dtype))


def _as_array(x, dtype):
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"Expected an (N, D) array of points, got shape {x.shape}.")
    return jnp.asarray(x, dtype)


def _dtype(params):
    return params["W"].dtype


def push(spec: FlowSpec, params: dict, norm: Norm | None, x, split: bool = False) -> Path:
    """Points x pushed through the standardisation and every layer (normalising direction x -> z).

    Stages: x, h_0 (only when ``norm`` is given), then per layer k either h_k, or with ``split`` y_k followed by h_k
    (the last layer is affine, so it has only y_L = h_L = z)."""
    dt = _dtype(params)
    xa = _as_array(x, dt)
    f = _forward_all(spec, params, norm, xa)
    L = int(params["W"].shape[0])
    vals, names, layer, kind = [np.asarray(xa)], ["x (data)"], [0], ["x"]
    if norm is not None:
        vals.append(np.asarray(f.h0))
        names.append("h₀ (standardised)")
        layer.append(0)
        kind.append("h0")
    ys, hs = np.asarray(f.ys), np.asarray(f.hs)
    for k in range(1, L + 1):
        if split and k < L:
            vals.append(ys[k - 1])
            names.append(f"y{sub(k)} = W{sub(k)}h{sub(k - 1)} + b{sub(k)}")
            layer.append(k)
            kind.append("pre")
        vals.append(hs[k - 1])
        names.append(f"z = h{sub(k)}" if k == L else f"h{sub(k)} = s(y{sub(k)})" if split else f"h{sub(k)} (layer {k})")
        layer.append(k)
        kind.append("z" if k == L else "out")
    depth = [k for k in layer]
    return Path(np.stack(vals), tuple(names), tuple(layer), tuple(kind), tuple(depth))


def pull(spec: FlowSpec, params: dict, norm: Norm | None, z) -> Path:
    """Base points z pulled back through the inverse layers (generative direction z -> x).

    Stages: z = h_L, h_{L-1}, ..., h_0, and x = h_0 undone by the standardisation (only when ``norm`` is given;
    otherwise h_0 is x)."""
    dt = _dtype(params)
    za = _as_array(z, dt)
    x, hs = _inverse_all(spec, params, norm, za)
    L = int(params["W"].shape[0])
    hs = np.asarray(hs)  # hs[k-1] = h_{k-1}, produced by undoing layer k
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
        vals.append(np.asarray(x))
        names.append("x (standardisation undone)")
        layer.append(0)
        kind.append("x")
    depth = [L] + [k - 1 for k in range(L, 0, -1)] + ([0] if norm is not None else [])
    return Path(np.stack(vals), tuple(names), tuple(layer), tuple(kind), tuple(depth))


# ---- grids -------------------------------------------------------------------------------------------------------
def cartesian_lines(plot_range, n_lines: int = 13, n_pts: int = 80) -> np.ndarray:
    """A regular grid as lines: (2 * n_lines, n_pts, 2); first the lines of constant x, then those of constant y."""
    (x0, x1), (y0, y1) = plot_range
    if n_lines < 2 or n_pts < 2:
        raise ValueError("A grid needs at least 2 lines of at least 2 points.")
    gx, gy = np.linspace(x0, x1, n_lines), np.linspace(y0, y1, n_lines)
    tx, ty = np.linspace(x0, x1, n_pts), np.linspace(y0, y1, n_pts)
    vert = np.stack([np.broadcast_to(gx[:, None], (n_lines, n_pts)), np.broadcast_to(ty, (n_lines, n_pts))], -1)
    horiz = np.stack([np.broadcast_to(tx, (n_lines, n_pts)), np.broadcast_to(gy[:, None], (n_lines, n_pts))], -1)
    return np.concatenate([vert, horiz]).astype(np.float64)


def polar_lines(radii=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0), n_rays: int = 16, r_max: float = 3.0,
                n_pts: int = 96) -> np.ndarray:
    """A polar grid as lines: (len(radii) + n_rays, n_pts, 2); first the circles, then the rays from the origin."""
    t = np.linspace(0.0, 2.0 * math.pi, n_pts)
    circles = [np.stack([r * np.cos(t), r * np.sin(t)], -1) for r in radii]
    s = np.linspace(0.0, r_max, n_pts)
    rays = [np.stack([s * math.cos(a), s * math.sin(a)], -1) for a in np.arange(n_rays) * 2.0 * math.pi / n_rays]
    return np.stack(circles + rays).astype(np.float64)


def push_lines(spec, params, norm, lines, split: bool = False) -> Path:
    """A set of lines (M, P, D) pushed through the layers: Path with values of shape (S, M, P, D)."""
    lines = np.asarray(lines)
    M, P, D = lines.shape
    p = push(spec, params, norm, lines.reshape(M * P, D), split)
    return p._replace(values=p.values.reshape(len(p.names), M, P, D))


def pull_lines(spec, params, norm, lines) -> Path:
    """A set of base-space lines (M, P, D) pulled back: Path with values of shape (S, M, P, D)."""
    lines = np.asarray(lines)
    M, P, D = lines.shape
    p = pull(spec, params, norm, lines.reshape(M * P, D))
    return p._replace(values=p.values.reshape(len(p.names), M, P, D))


def angle_sectors(z, n: int = 8) -> np.ndarray:
    """Integer sector 0..n-1 of the angle of each 2-D point, so base samples can be coloured and followed."""
    z = np.asarray(z)
    a = np.mod(np.arctan2(z[:, 1], z[:, 0]), 2.0 * math.pi)
    return np.minimum((a / (2.0 * math.pi) * n).astype(np.int64), n - 1)


# ---- volume change -----------------------------------------------------------------------------------------------
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


def logdet_split(spec: FlowSpec, params: dict, norm: Norm | None, x) -> LogdetSplit:
    """Per-layer log-det split at the points x (raw data coordinates)."""
    dt = _dtype(params)
    xa = _as_array(x, dt)
    f = _forward_all(spec, params, norm, xa)
    w = np.asarray(_ldw({"W": params["W"]}), np.float64)
    nt = 0.0 if norm is None else float(norm.logdet())
    return LogdetSplit(w, np.asarray(f.logdet_act, np.float64), nt)


_ldw = jax.jit(logdet_weights)


@lru_cache(maxsize=32)
def _layer_ld(spec: FlowSpec):
    def fn(params, k, h):  # k: 1-based layer index as a traced integer (one compilation for every layer)
        L = params["W"].shape[0]
        W, b = params["W"][k - 1], params["b"][k - 1]
        y = h @ W.T + b
        act = jnp.sum(spec.activation.log_deriv(y), axis=-1)
        return jnp.linalg.slogdet(W)[1] + jnp.where(k == L, 0.0, act)

    return jax.jit(fn)


def layer_logdet_at_input(spec: FlowSpec, params: dict, k: int, h) -> np.ndarray:
    """Local log|det| of layer k alone, h_{k-1} -> h_k, at points h given in the layer's own input coordinates."""
    L = int(params["W"].shape[0])
    if not 1 <= int(k) <= L:
        raise ValueError(f"Layer must be between 1 and {L}, got {k}.")
    n, blocks = _padded_blocks(_as_array(h, _dtype(params)))
    kk = jnp.asarray(int(k), jnp.int32)
    return np.concatenate([np.asarray(_layer_ld(spec)(params, kk, b)) for b in blocks])[:n].astype(np.float64)


def local_logdet(spec: FlowSpec, params: dict, norm: Norm | None, x, k: int, cumulative: bool = False) -> np.ndarray:
    """Local log-det at data points x: of layer k alone (h_{k-1} -> h_k), or with ``cumulative`` of the map
    x -> h_k (standardisation and layers 1..k; at k = L this is the model's log|det dz/dx|)."""
    L = int(params["W"].shape[0])
    if not 1 <= int(k) <= L:
        raise ValueError(f"Layer must be between 1 and {L}, got {k}.")
    s = logdet_split(spec, params, norm, x)
    if cumulative:
        return s.norm + np.sum(s.per_layer[:k], axis=0)
    return s.per_layer[k - 1]


# ---- ranges and subsampling --------------------------------------------------------------------------------------
def pick_stages(n_stages: int, max_shown: int) -> list[int]:
    """Indices of at most ``max_shown`` stages out of ``n_stages``, evenly spread, always with the first and last."""
    n, m = int(n_stages), int(max_shown)
    if n < 1:
        raise ValueError("Need at least one stage.")
    if m < 2:
        raise ValueError("Show at least 2 stages (the first and the last).")
    if n <= m:
        return list(range(n))
    idx = np.unique(np.round(np.linspace(0, n - 1, m)).astype(int))
    return [int(i) for i in idx]


def square_range(points, q: float = 1.0, margin: float = 0.12):
    """A square plot range around the central (100 - 2q) % of the points, widened by ``margin`` of its size:
    ((x0, x1), (y0, y1)) with x1 - x0 == y1 - y0 (the plane is drawn with equal scales)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = np.percentile(p, q, axis=0), np.percentile(p, 100 - q, axis=0)
    c = 0.5 * (lo + hi)
    half = 0.5 * max(float(np.max(hi - lo)), 1e-6) * (1.0 + 2.0 * margin)
    return (float(c[0] - half), float(c[0] + half)), (float(c[1] - half), float(c[1] + half))


def span(r) -> float:
    return float(r[0][1] - r[0][0])


def subsample(n: int, max_n: int, seed: int = 0) -> np.ndarray:
    """Indices of at most max_n of n rows, a fixed random subset (same seed -> same rows), in increasing order."""
    if n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_n, replace=False))


LABEL_NOUN = {"trimodal": "mode", "moons": "moon", "sine": "quarter of x₁", "eight_gaussians": "mode",
              "rings": "ring", "two_spirals": "spiral", "checkerboard": "square", "pinwheel": "arm",
              "banana": "quarter of x₁"}


ANGLE_NOUN = "angle of z"


def sector_names(n: int = 8) -> list[str]:
    """Legend names of the angle sectors of angle_sectors(z, n): 'z at 0–45°', ..."""
    w = 360 / n
    return [f"z at {i * w:.0f}–{(i + 1) * w:.0f}°" for i in range(n)]


def label_names(density: str | None, labels, noun: str | None = None) -> list[str]:
    """Legend names for integer labels 0..max: e.g. 'moon 1', 'moon 2' (or the angle sectors of z)."""
    if noun == ANGLE_NOUN:
        return sector_names()
    noun = noun or LABEL_NOUN.get(density or "", "group")
    n = int(np.max(labels)) + 1 if labels is not None and len(labels) else 0
    return [f"{noun} {i + 1}" for i in range(n)]



# ---- deep flows: subsample by layer ------------------------------------------------------------------------------
SUBSAMPLE_FROM = 50  # from this depth on, the views show a subset of the layers
MAX_PANELS = 12  # small multiples: at most this many depths (x and z included)
MAX_FRAMES = SUBSAMPLE_FROM  # animation: all depths of flows with fewer than SUBSAMPLE_FROM layers
MAX_FRAMES_SPLIT = 26  # animation with y_k and h_k as separate stages (two frames per layer)


def pick_depths(layers: int, max_shown: int) -> list[int]:
    """Depths j in 0..L (h_j after j layers; 0 = the input) to show: all of them when there are at most
    ``max_shown``, otherwise every s-th layer with the smallest stride s that fits, plus always the output (L)."""
    L, m = int(layers), int(max_shown)
    if m < 2:
        raise ValueError("Show at least 2 depths (the input and the output).")
    if L + 1 <= m:
        return list(range(L + 1))
    stride = max(1, math.ceil(L / (m - 1)))
    d = list(range(0, L + 1, stride))
    if d[-1] != L:
        if len(d) >= m:
            d = d[:m - 1]
        d.append(L)
    return d


def select_stages(path: Path, depths) -> Path:
    """The stages of ``path`` that belong to the given depths (y_k travels with h_k; x with h_0), in path order."""
    keep = set(int(d) for d in depths)
    return take(path, [i for i, d in enumerate(path.depth) if d in keep])


def take(path: Path, idx) -> Path:
    """The stages idx of a path."""
    idx = [int(i) for i in idx]
    return Path(path.values[idx], tuple(path.names[i] for i in idx), tuple(path.layer[i] for i in idx),
                tuple(path.kind[i] for i in idx), tuple(path.depth[i] for i in idx))


def without_kind(path: Path, kind: str) -> Path:
    """The path without the stages of one kind (e.g. "h0": the standardised input looks just like x)."""
    return take(path, [i for i, k in enumerate(path.kind) if k != kind])


def view_depths(layers: int, max_shown: int) -> tuple[list[int], str | None]:
    """Depths to show and, when layers were left out, one sentence saying which."""
    L = int(layers)
    d = pick_depths(L, max_shown)
    if len(d) == L + 1:
        return d, None
    s = d[1] - d[0]
    return d, (f"{L} layers: showing every {s}{_ordinal_suffix(s)} layer and the last one ({len(d) - 1} of {L}); "
               "the volume-change chart has all layers.")


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


# ---- local log-det over a plane -----------------------------------------------------------------------------------
def plane_grid(plot_range, n: int = 80):
    """Regular n x n grid: xs (n,), ys (n,), points (n*n, 2) row-major in y."""
    (x0, x1), (y0, y1) = plot_range
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([X.ravel(), Y.ravel()], axis=1)


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
    L = int(params["W"].shape[0])
    if not 1 <= int(k) <= L:
        raise ValueError(f"Layer must be between 1 and {L}, got {k}.")
    data = np.asarray(data, np.float64)
    if plane == "x":
        r = plot_range or square_range(data)
        xs, ys, pts = plane_grid(r, n)
        z = local_logdet(spec, params, norm, pts, k, cumulative)
        return Field(xs, ys, z.reshape(len(ys), len(xs)), "x", data)
    if plane == "input":
        dt = _dtype(params)
        f = _forward_all(spec, params, norm, _as_array(data, dt))
        h_in = np.asarray(f.h0 if k == 1 else f.hs[k - 2], np.float64)
        r = square_range(h_in, margin=0.25)
        xs, ys, pts = plane_grid(r, n)
        z = layer_logdet_at_input(spec, params, k, pts)
        return Field(xs, ys, z.reshape(len(ys), len(xs)), "input", h_in)
    raise ValueError(f"Unknown plane {plane!r}; choose 'x' or 'input'.")


@lru_cache(maxsize=32)
def _lp(spec: FlowSpec):
    from .flow import log_prob

    return jax.jit(lambda params, norm, x: log_prob(spec, params, x, norm))


def model_log_prob(spec: FlowSpec, params: dict, norm: Norm | None, x) -> np.ndarray:
    """log q(x) per point (flow.log_prob, jitted once per FlowSpec, fixed-size blocks)."""
    dt = _dtype(params)
    n, blocks = _padded_blocks(_as_array(x, dt))
    nm = _norm_or_identity(norm, spec.dim, dt)
    return np.concatenate([np.asarray(_lp(spec)(params, nm, b)) for b in blocks])[:n].astype(np.float64)


def logdet_check(spec: FlowSpec, params: dict, norm: Norm | None, x) -> float:
    """max |log N(z) + (sum of the per-layer pieces + standardisation) - log q(x)| over the points: how exactly the
    per-layer split adds up to the model's log-likelihood."""
    from .flow import LOG2PI

    dt = _dtype(params)
    xa = _as_array(x, dt)
    s = logdet_split(spec, params, norm, xa)
    z = np.asarray(_forward_all(spec, params, norm, xa).z, np.float64)
    log_n = -0.5 * np.sum(z * z, axis=1) - 0.5 * z.shape[1] * LOG2PI
    return float(np.max(np.abs(log_n + s.total - model_log_prob(spec, params, norm, xa))))


# ---- where the model comes from -----------------------------------------------------------------------------------
class LayerModel(NamedTuple):
    """A 2-D flow plus the points to follow through it.

    data (N, 2) raw points; labels (N,) integer group per point (mode/arm, or the angle sector of z when the points
    were sampled from the flow itself) or None; label_noun names a group ("moon", "arm", "sector of z")."""

    spec: FlowSpec
    params: dict
    norm: Norm | None
    data: np.ndarray
    labels: np.ndarray | None
    density: str | None
    source: str  # "playground" | "file" | "trained"
    method: str | None = None
    label_noun: str | None = None
    note: str = ""


N_POINTS = 1000
SMALL_STEPS = 3000
SMALL_LR = 5e-3


def _check_2d(spec: FlowSpec, params: dict, what: str):
    W = np.asarray(params.get("W")) if isinstance(params, dict) else None
    if W is None or W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"The {what} has no (L, D, D) weight stack W.")
    if W.shape[1] != 2 or int(spec.dim) != 2:
        raise ValueError(f"The {what} is {W.shape[1]}-dimensional; the Layers page draws 2-D flows only.")
    if W.shape[0] != int(spec.layers):
        raise ValueError(f"The {what} says {spec.layers} layers but holds {W.shape[0]} weight matrices.")


def model_from_session(d) -> LayerModel:
    """The Playground's published model (dict with spec, params, norm, density, data, labels, method, source)."""
    if not isinstance(d, dict):
        raise ValueError("The Playground's model is not in the expected form (a dict).")
    missing = [k for k in ("spec", "params", "data") if k not in d]
    if missing:
        raise ValueError(f"The Playground's model lacks {', '.join(missing)}.")
    spec, params = d["spec"], d["params"]
    if not isinstance(spec, FlowSpec):
        raise ValueError("The Playground's model has no FlowSpec.")
    _check_2d(spec, params, "Playground's model")
    data = np.asarray(d["data"], np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError(f"The Playground's points must be an (N, 2) array, got shape {data.shape}.")
    if not np.all(np.isfinite(np.asarray(params["W"]))):
        raise ValueError("The Playground's model has NaN or infinite weights (training diverged); reset it there.")
    labels = d.get("labels")
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        if labels.shape != (len(data),):
            labels = None
    density = d.get("density")
    from .densities import REGISTRY

    density = density if density in REGISTRY else None
    keep = subsample(len(data), N_POINTS, seed=1)
    return LayerModel(spec, params, d.get("norm"), data[keep], None if labels is None else labels[keep], density,
                      "playground", d.get("method"), LABEL_NOUN.get(density or "", None))


def _flow_points(spec, params, norm, n: int, seed: int):
    """Points sampled from the flow itself, labelled by the angle sector of their base point z."""
    z = np.random.default_rng(seed).standard_normal((n, 2))
    p = pull(spec, params, norm, z)
    x = p.values[-1]
    ok = np.all(np.isfinite(x), axis=1)
    return x[ok], angle_sectors(z[ok])


def model_from_file(raw, n_points: int = N_POINTS, seed: int = 0) -> LayerModel:
    """A model file (.npz bytes, see flowlab.io).  If its config names a known density, points are drawn from that
    density (with their mode/arm labels); otherwise they are sampled from the flow and coloured by the angle of z.
    Raises ValueError with one sentence for any malformed file."""
    from .densities import REGISTRY, get_density
    from .io import load_model

    spec, params, norm, meta = load_model(raw)
    _check_2d(spec, params, "model file")
    density = meta.get("density") if meta.get("density") in REGISTRY else None
    if density:
        data, labels = get_density(density).sample_labeled(n_points, seed=seed)
        noun = LABEL_NOUN.get(density)
    else:
        data, labels = _flow_points(spec, params, norm, n_points, seed)
        noun = ANGLE_NOUN
    steps = meta.get("steps")
    note = f"trained {int(steps):,} steps" if isinstance(steps, (int, float)) else ""
    return LayerModel(spec, params, norm, data, labels, density, "file", meta.get("method"), noun, note)


def small_steps(layers: int) -> int:
    """Optimiser steps for a model trained here: SMALL_STEPS up to 12 layers, fewer for deeper flows (each step
    costs about L times more), never below 600, so training stays within a few seconds."""
    return int(max(600, min(SMALL_STEPS, round(SMALL_STEPS * 12 / max(1, int(layers)), -2))))


def train_small(density: str, layers: int, seed: int = 0, steps: int | None = None,
                n_points: int = N_POINTS) -> LayerModel:
    """A small flow trained here in a few seconds (relative gradient, Adam, cosine-decayed learning rate)."""
    from .densities import get_density
    from .train import build_trainer

    steps = small_steps(layers) if steps is None else int(steps)
    t = build_trainer(density, layers=int(layers), method="relative", batch_size=256, chunk_steps=math.ceil(steps / math.ceil(steps / 500)),
                      seed=int(seed), n_train=5000, n_test=1000, lr=SMALL_LR, warmup=min(100, steps // 10),
                      decay_steps=steps, clip=10.0)
    t.train(steps=steps)
    data, labels = get_density(density).sample_labeled(n_points, seed=int(seed) + 7)
    kl = t.evals["kl"][-1] if t.evals["kl"] else float("nan")
    note = f"trained here for {t.step:,} steps, KL(p‖q) ≈ {kl:.2f} nats"
    if t.divergences:
        note += " (training stopped early: it diverged)"
    return LayerModel(t.spec, t.params, t.norm, data, labels, density, "trained", "relative",
                      LABEL_NOUN.get(density), note)


def view_range(model: LayerModel):
    """Square plot range of the data plane."""
    return square_range(model.data, q=0.5, margin=0.15)


__all__ = ["Path", "push", "pull", "push_lines", "pull_lines", "cartesian_lines", "polar_lines", "angle_sectors",
           "LogdetSplit", "logdet_split", "layer_logdet_at_input", "local_logdet", "pick_stages", "square_range",
           "span", "subsample", "label_names", "settings_from_query", "sub", "pick_depths", "select_stages", "take", "without_kind",
           "view_depths", "plane_grid", "Field", "logdet_field", "logdet_check", "LayerModel", "model_from_session",
           "model_from_file", "model_log_prob", "train_small", "small_steps", "view_range",
           "sector_names", "ANGLE_NOUN"]
