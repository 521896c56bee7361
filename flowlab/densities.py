"""2-D toy densities: a sampler and the exact log-density for each, in one registry.

The paper's three (Gresele et al. 2020, Fig. 2; definitions from its reference implementation):

* ``trimodal`` ("MoG"): equal-weight Gaussians at (0,0), (5,5), (5,-5) with std 1, 0.5, 0.5.
* ``moons``: outer arc (cos t, sin t), inner arc (1 - cos t, 1 - sin t - 0.5), t ~ U[0, pi], half the points each,
  isotropic noise std 0.05.  p(x) = 1/2 sum_arcs (1/pi) int_0^pi N(x; c(t), s^2 I) dt, by composite Gauss-Legendre
  quadrature on 384 nodes per arc (error < 1e-6 nats, see tests).
* ``sine``: x1 ~ U[-2, 2], x2 = sin(3 x1) + 0.25 N(0, 1).

More: ``eight_gaussians``, ``rings``, ``two_spirals``, ``checkerboard``, ``pinwheel``, ``banana``.

Samplers take an integer seed (numpy Generator, reproducible) and also give each point's mode/arm label; log-densities are jnp functions of an (N, 2) array
(float32 or float64 follows the input), -inf outside the support.

Entropies H(p) = -E_p log p (nats), every one exact or by quadrature of the log-density above:

* closed forms: sine log 4 + 1/2 log(2 pi e 0.25^2) (uniform x1, Gaussian x2 | x1); checkerboard log 32 (uniform on
  area 32); banana log(2 pi e 1.2 0.5) (x -> (x1, x2 - 0.4 x1^2 + 2) has unit Jacobian and makes two independent
  Gaussians); pinwheel H(Gamma) + E log r + H(angle) (p(x) = p(r, theta) / r, and the angle's conditional entropy
  does not depend on r: a shifted mixture of wrapped normals, whose entropy is a 1-D quadrature).
* rings: 1-D quadrature over the radius, -int p log p 2 pi rho d rho (p depends on |x| only).
* trimodal, eight_gaussians, moons, two_spirals: the midpoint rule over a box reaching 10 noise stds beyond the
  support, step at most std / 5.  The integrand is smooth and its tails are below e^-50 at the box edge, so the rule
  converges geometrically: halving the step changes the value by < 1e-9 nats (tests), and the curve densities'
  own quadrature is exact to 1e-13 nats.  Error bound: 1e-6 nats.  These four cost seconds, so the values are cached
  in ``GRID_ENTROPY`` and ``grid_entropy`` recomputes them (the tests do, in float64).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import i0e, logsumexp

from .metrics import LOG2PI


@dataclass(frozen=True)
class Density:
    name: str
    label: str
    sample_fn: Callable[[np.random.Generator, int], np.ndarray] = field(repr=False)
    log_prob_fn: Callable = field(repr=False)
    plot_range: tuple[tuple[float, float], tuple[float, float]]
    description: str = ""
    paper: bool = False
    entropy_fn: Callable[[], float] | None = field(default=None, repr=False, compare=False)  # exact / quadrature
    source: dict | None = field(default=None, repr=False, compare=False)  # what rebuilds a user density

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples as a float64 (n, 2) array; the same seed gives the same points."""
        return self.sample_labeled(n, seed)[0]

    def sample_labeled(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """n samples and an integer label per point: the mode / arm / ring / square it came from (for sine and
        banana: which quarter of the x1 range), so points can be coloured and followed through the layers."""
        if int(n) <= 0:
            raise ValueError(f"Number of samples must be positive, got {n}.")
        x, lab = self.sample_fn(np.random.default_rng(seed), int(n))
        return np.asarray(x, dtype=np.float64), np.asarray(lab, dtype=np.int64)

    def log_prob(self, x):
        """Exact log-density of the points x, shape (N, 2) -> (N,)."""
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"log_prob expects an (N, 2) array of points, got shape {tuple(x.shape)}.")
        return self.log_prob_fn(x)

    def entropy(self) -> float:
        """Differential entropy H(p) = −E_p log p(x) in nats: ``entropy_fn`` (exact or quadrature; see the module
        docstring), else a Monte Carlo estimate from 200 000 samples (``mc_entropy``, standard error ~0.002)."""
        return self._entropy

    @cached_property
    def _entropy(self) -> float:
        return float(self.entropy_fn()) if self.entropy_fn is not None else mc_entropy(self, MC_SAMPLES)[0]


MC_SAMPLES = 200_000  # entropy of a density without an exact or quadrature value


def mc_entropy(d: "Density", n: int = MC_SAMPLES, seed: int = 12345) -> tuple[float, float]:
    """Monte Carlo entropy −mean log p(x) over n samples of ``d`` and its standard error std(log p) / √n."""
    lp = np.asarray(d.log_prob(d.sample(int(n), seed=seed).astype(np.float32)), np.float64)
    return float(-np.mean(lp)), float(np.std(lp) / math.sqrt(len(lp)))


def _gauss2(x, mu, std):
    """log N(x; mu, std^2 I) in 2-D."""
    d = (x - jnp.asarray(mu, dtype=x.dtype)) / std
    return -0.5 * jnp.sum(d * d, axis=-1) - LOG2PI - 2.0 * math.log(std)


def _mixture(x, mus, stds, weights=None):
    k = len(mus)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights)
    comps = jnp.stack([_gauss2(x, mu, s) + math.log(wi) for mu, s, wi in zip(mus, stds, w)], axis=0)
    return logsumexp(comps, axis=0)


def _sample_mixture(rng, n, mus, stds):
    k = rng.integers(0, len(mus), size=n)
    mus = np.asarray(mus, dtype=np.float64)
    stds = np.asarray(stds, dtype=np.float64)
    return mus[k] + stds[k, None] * rng.standard_normal((n, 2)), k


def _curve_log_prob(x, curve, t0, t1, std, panels=48, order=8):
    """log int_{t0}^{t1} 1/(t1-t0) N(x; c(t), std^2 I) dt by composite Gauss-Legendre quadrature
    (``panels`` panels of ``order`` nodes), summed in log space.  Error < 1e-6 nats with the settings used here
    (tests compare against 16x more nodes)."""
    g, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(t0, t1, panels + 1)
    h = np.diff(edges)[:, None]
    t = (edges[:-1, None] + 0.5 * (g[None] + 1.0) * h).ravel()
    logw = np.log((0.5 * w[None] * h).ravel() / (t1 - t0))
    cj = jnp.asarray(np.stack(curve(t), axis=-1), dtype=x.dtype)  # (nodes, 2)
    d2 = jnp.sum((x[:, None, :] - cj[None, :, :]) ** 2, axis=-1)  # (N, nodes)
    return logsumexp(-0.5 * d2 / std**2 + jnp.asarray(logw, dtype=x.dtype), axis=1) - LOG2PI - 2.0 * math.log(std)


def _chunked(fn, x, size=4096):
    """fn over fixed-size row blocks (the last one zero-padded) so a jitted fn compiles once per dtype."""
    n = x.shape[0]
    pad = (-n) % size
    xp = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)]) if pad else x
    return jnp.concatenate([fn(xp[i : i + size]) for i in range(0, n + pad, size)])[:n]


# ---- trimodal ("MoG") --------------------------------------------------------------------------------------------
_TRI_MU = [(0.0, 0.0), (5.0, 5.0), (5.0, -5.0)]
_TRI_STD = [1.0, 0.5, 0.5]

# ---- moons ------------------------------------------------------------------------------------------------------
_MOON_STD = 0.05


def _outer(t):
    return np.cos(t), np.sin(t)


def _inner(t):
    return 1.0 - np.cos(t), 1.0 - np.sin(t) - 0.5


def _moons_sample(rng, n):
    n_out = n // 2
    t = rng.uniform(0.0, math.pi, size=n)
    cx, cy = np.where(np.arange(n) < n_out, _outer(t), _inner(t))
    pts = np.stack([cx, cy], axis=1) + _MOON_STD * rng.standard_normal((n, 2))
    perm = rng.permutation(n)
    return pts[perm], (np.arange(n) >= n_out).astype(np.int64)[perm]


@jax.jit
def _moons_chunk(xc):
    a = _curve_log_prob(xc, _outer, 0.0, math.pi, _MOON_STD)
    b = _curve_log_prob(xc, _inner, 0.0, math.pi, _MOON_STD)
    return jnp.logaddexp(a, b) - math.log(2.0)


def _moons_log_prob(x):
    return _chunked(_moons_chunk, x)


# ---- sine -------------------------------------------------------------------------------------------------------
_SINE_STD = 0.25


def _sine_sample(rng, n):
    x1 = rng.uniform(-2.0, 2.0, size=n)
    pts = np.stack([x1, np.sin(3.0 * x1) + _SINE_STD * rng.standard_normal(n)], axis=1)
    return pts, np.clip(np.floor(x1 + 2.0), 0, 3).astype(np.int64)


def _sine_log_prob(x):
    x1, x2 = x[:, 0], x[:, 1]
    d = (x2 - jnp.sin(3.0 * x1)) / _SINE_STD
    lp = -0.5 * d * d - 0.5 * LOG2PI - math.log(_SINE_STD) - math.log(4.0)
    return jnp.where(jnp.abs(x1) <= 2.0, lp, -jnp.inf)


# ---- eight gaussians --------------------------------------------------------------------------------------------
_EIGHT_MU = [(2.0 * math.cos(k * math.pi / 4), 2.0 * math.sin(k * math.pi / 4)) for k in range(8)]
_EIGHT_STD = 0.2

# ---- rings: radius r_k, radial-symmetric noise; p(x) = 1/(2 pi s^2) exp(-(|x|^2 + r^2)/(2 s^2)) I0(|x| r / s^2) --
_RING_R = (1.0, 2.0, 3.0)
_RING_W = (1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0)  # proportional to circumference: uniform along the rings
_RING_STD = 0.1


def _rings_sample(rng, n):
    k = rng.choice(len(_RING_R), size=n, p=_RING_W)
    th = rng.uniform(0.0, 2.0 * math.pi, size=n)
    r = np.asarray(_RING_R)[k]
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1) + _RING_STD * rng.standard_normal((n, 2)), k


def _rings_log_prob(x):
    rho = jnp.sqrt(jnp.sum(x * x, axis=-1))
    s2 = _RING_STD**2
    comps = []
    for r, w in zip(_RING_R, _RING_W):
        z = rho * r / s2
        # log I0(z) = log i0e(z) + z  (i0e is the exponentially scaled Bessel function)
        comps.append(math.log(w) - (rho - r) ** 2 / (2 * s2) + jnp.log(i0e(z)) - math.log(2 * math.pi * s2))
    return logsumexp(jnp.stack(comps), axis=0)


def _rings_entropy(step: float = 0.002) -> float:
    """−∫ p log p 2πρ dρ by the midpoint rule in ρ up to the largest radius + 12 std (p depends on |x| only; the
    integrand is smooth and negligible at both ends, so halving the step changes nothing above 1e-10)."""
    rho = np.arange(0.5 * step, max(_RING_R) + 12 * _RING_STD, step)
    lp = np.asarray(_rings_log_prob(jnp.asarray(np.stack([rho, np.zeros_like(rho)], axis=1))), np.float64)
    return float(-np.sum(np.exp(lp) * lp * 2 * math.pi * rho) * step)


# ---- two spirals: c(t) = +-(t cos t, t sin t)/3, t ~ U[pi/2, 3 pi] -------------------------------------------------
_SPIRAL_T = (0.5 * math.pi, 3.0 * math.pi)
_SPIRAL_STD = 0.1


def _spiral(sign):
    def c(t):
        return sign * t * np.cos(t) / 3.0, sign * t * np.sin(t) / 3.0

    return c


def _spirals_sample(rng, n):
    t = rng.uniform(*_SPIRAL_T, size=n)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    pts = np.stack([sign * t * np.cos(t) / 3.0, sign * t * np.sin(t) / 3.0], axis=1)
    return pts + _SPIRAL_STD * rng.standard_normal((n, 2)), (sign < 0).astype(np.int64)


@jax.jit
def _spirals_chunk(xc):
    a = _curve_log_prob(xc, _spiral(1.0), *_SPIRAL_T, _SPIRAL_STD, panels=160)
    b = _curve_log_prob(xc, _spiral(-1.0), *_SPIRAL_T, _SPIRAL_STD, panels=160)
    return jnp.logaddexp(a, b) - math.log(2.0)


def _spirals_log_prob(x):
    return _chunked(_spirals_chunk, x, size=2048)


# ---- checkerboard: uniform on the 8 dark squares of a 4x4 board of side-2 squares on [-4, 4]^2 ------------------------
def _checker_sample(rng, n):
    x1 = rng.uniform(-4.0, 4.0, size=n)
    x2_ = rng.uniform(0.0, 2.0, size=n) + 2.0 * rng.integers(0, 4, size=n) - 4.0  # any row
    col = np.floor((x1 + 4.0) / 2.0)
    row = np.floor((x2_ + 4.0) / 2.0)
    # shift to a dark square of the same column: dark iff (row + col) even
    x2 = np.where((row + col) % 2 == 0, x2_, np.where(row % 2 == 0, x2_ + 2.0, x2_ - 2.0))
    square = (col * 4 + np.floor((x2 + 4.0) / 2.0)).astype(np.int64) // 2  # 8 dark squares -> labels 0..7
    return np.stack([x1, x2], axis=1), square


def _checker_log_prob(x):
    col = jnp.floor((x[:, 0] + 4.0) / 2.0)
    row = jnp.floor((x[:, 1] + 4.0) / 2.0)
    inside = (jnp.abs(x[:, 0]) < 4.0) & (jnp.abs(x[:, 1]) < 4.0) & (jnp.mod(row + col, 2.0) == 0)
    return jnp.where(inside, -math.log(32.0), -jnp.inf)


# ---- pinwheel: 5 arms; in polar coords r ~ Gamma(4, 0.3), angle ~ N(2 pi k/5 + 0.5 r, 0.15^2) ------------------------
_PIN_ARMS = 5
_PIN_SHAPE, _PIN_SCALE = 4.0, 0.3
_PIN_TWIST, _PIN_ASTD = 0.5, 0.15


def _pinwheel_sample(rng, n):
    k = rng.integers(0, _PIN_ARMS, size=n)
    r = rng.gamma(_PIN_SHAPE, _PIN_SCALE, size=n)
    th = 2 * math.pi * k / _PIN_ARMS + _PIN_TWIST * r + _PIN_ASTD * rng.standard_normal(n)
    return np.stack([r * np.cos(th), r * np.sin(th)], axis=1), k


def _pin_angle_log_prob(d, xp=jnp):
    """log density of the pinwheel's angle given the radius, as a function of d = theta - 0.5 r: a mixture of the
    arms' wrapped normals (wraps -3..3, far beyond the std 0.15)."""
    terms = [-0.5 * ((d + 2 * math.pi * m - 2 * math.pi * k / _PIN_ARMS) / _PIN_ASTD) ** 2
             for k in range(_PIN_ARMS) for m in range(-3, 4)]
    lse = logsumexp(jnp.stack(terms), axis=0) if xp is jnp else np.logaddexp.reduce(np.stack(terms), axis=0)
    return lse - math.log(_PIN_ARMS) - 0.5 * LOG2PI - math.log(_PIN_ASTD)


def _pinwheel_log_prob(x):
    r = jnp.sqrt(jnp.sum(x * x, axis=-1))
    rs = jnp.maximum(r, 1e-30)
    th = jnp.arctan2(x[:, 1], x[:, 0])
    k_shape, scale = _PIN_SHAPE, _PIN_SCALE
    log_pr = (k_shape - 1) * jnp.log(rs) - rs / scale - math.lgamma(k_shape) - k_shape * math.log(scale)
    return log_pr + _pin_angle_log_prob(th - _PIN_TWIST * r) - jnp.log(rs)  # p(x) = p(r, theta) / r


def _pinwheel_entropy(n: int = 4096) -> float:
    """H = H(r) + E log r + H(angle | r):  p(x) = p(r, θ)/r,  H(r) = k + log s + log Γ(k) + (1 − k) ψ(k) and
    E log r = ψ(k) + log s for r ~ Gamma(k, s); the angle's conditional density is the same mixture shifted by 0.5 r,
    so its entropy is one periodic midpoint rule on [0, 2π) (geometric convergence; 4096 nodes: exact to 1e-12)."""
    k, s = _PIN_SHAPE, _PIN_SCALE
    if k != int(k):
        raise ValueError("The pinwheel's closed form uses ψ at an integer shape.")
    psi = sum(1.0 / j for j in range(1, int(k))) - 0.5772156649015329  # ψ(k) = H_{k-1} − γ
    t = (np.arange(n) + 0.5) * 2 * math.pi / n
    lp = _pin_angle_log_prob(t, np)
    h_angle = float(-np.sum(np.exp(lp) * lp) * 2 * math.pi / n)
    return k + math.log(s) + math.lgamma(k) + (1 - k) * psi + psi + math.log(s) + h_angle


# ---- banana: x1 ~ N(0, 1.2^2), x2 | x1 ~ N(0.4 x1^2 - 2, 0.5^2) -------------------------------------------------------
_BANANA_STD = (1.2, 0.5)


def _banana_sample(rng, n):
    x1 = _BANANA_STD[0] * rng.standard_normal(n)
    pts = np.stack([x1, 0.4 * x1**2 - 2.0 + _BANANA_STD[1] * rng.standard_normal(n)], axis=1)
    return pts, np.digitize(x1, [-1.2, 0.0, 1.2]).astype(np.int64)


def _banana_log_prob(x):
    x1, x2 = x[:, 0], x[:, 1]
    a = x1 / _BANANA_STD[0]
    b = (x2 - (0.4 * x1**2 - 2.0)) / _BANANA_STD[1]
    return -0.5 * (a * a + b * b) - LOG2PI - math.log(_BANANA_STD[0] * _BANANA_STD[1])


def _grid(name):
    return lambda: GRID_ENTROPY[name]


# ---- entropies by 2-D quadrature (module docstring): box beyond the support by 10 noise stds, step std / 5 ---------
GRID_BOX = {"trimodal": (((-10.0, 10.0), (-10.0, 10.0)), 0.1), "eight_gaussians": (((-4.0, 4.0), (-4.0, 4.0)), 0.04),
            "moons": (((-1.5, 2.5), (-1.0, 1.5)), 0.01), "two_spirals": (((-4.2, 4.2), (-4.2, 4.2)), 0.02)}
GRID_ENTROPY = {"trimodal": 3.0122884891950505, "eight_gaussians": 1.6980612031218152, "moons": 0.2892337375561503,
                "two_spirals": 2.4250352523671075}  # grid_entropy(name) in float64, cached (tests recompute them)


REGISTRY: dict[str, Density] = {
    d.name: d
    for d in [
        Density("trimodal", "Mixture of 3 Gaussians (paper's MoG)",
                lambda rng, n: _sample_mixture(rng, n, _TRI_MU, _TRI_STD),
                lambda x: _mixture(x, _TRI_MU, _TRI_STD), ((-4.5, 8.5), (-8.0, 8.0)),
                "Equal-weight Gaussians at (0,0), (5,5), (5,-5), std 1, 0.5, 0.5.", paper=True,
                entropy_fn=_grid("trimodal")),
        Density("moons", "Two moons (paper)", _moons_sample, _moons_log_prob, ((-1.5, 2.5), (-1.0, 1.5)),
                "Two interleaved half circles with Gaussian noise of std 0.05.", paper=True, entropy_fn=_grid("moons")),
        Density("sine", "Sine wave (paper)", _sine_sample, _sine_log_prob, ((-2.5, 2.5), (-2.0, 2.0)),
                "x1 ~ U[-2, 2], x2 = sin(3 x1) + 0.25 N(0, 1).", paper=True,
                entropy_fn=lambda: math.log(4.0) + 0.5 * math.log(2 * math.pi * math.e * _SINE_STD**2)),
        Density("eight_gaussians", "8 Gaussians on a circle",
                lambda rng, n: _sample_mixture(rng, n, _EIGHT_MU, [_EIGHT_STD] * 8),
                lambda x: _mixture(x, _EIGHT_MU, [_EIGHT_STD] * 8), ((-3.0, 3.0), (-3.0, 3.0)),
                "Eight equal Gaussians (std 0.2) on a circle of radius 2.", entropy_fn=_grid("eight_gaussians")),
        Density("rings", "Concentric rings", _rings_sample, _rings_log_prob, ((-3.6, 3.6), (-3.6, 3.6)),
                "Rings of radius 1, 2, 3 with uniform mass along their length, radial noise std 0.1.",
                entropy_fn=_rings_entropy),
        Density("two_spirals", "Two spirals", _spirals_sample, _spirals_log_prob, ((-3.6, 3.6), (-3.6, 3.6)),
                "Two interleaved Archimedean spirals, noise std 0.1.", entropy_fn=_grid("two_spirals")),
        Density("checkerboard", "Checkerboard", _checker_sample, _checker_log_prob, ((-4.5, 4.5), (-4.5, 4.5)),
                "Uniform on the 8 dark squares of a 4x4 board on [-4, 4]^2 (a discontinuous density).",
                entropy_fn=lambda: math.log(32.0)),
        Density("pinwheel", "Pinwheel", _pinwheel_sample, _pinwheel_log_prob, ((-4.0, 4.0), (-4.0, 4.0)),
                "Five twisted arms: radius ~ Gamma(4, 0.3), angle ~ N(arm + 0.5 r, 0.15^2).",
                entropy_fn=_pinwheel_entropy),
        Density("banana", "Banana", _banana_sample, _banana_log_prob, ((-5.0, 5.0), (-3.5, 7.5)),
                "x1 ~ N(0, 1.2^2), x2 ~ N(0.4 x1^2 - 2, 0.5^2).",
                entropy_fn=lambda: math.log(2 * math.pi * math.e * _BANANA_STD[0] * _BANANA_STD[1])),
    ]
}

PAPER_DENSITIES = tuple(n for n, d in REGISTRY.items() if d.paper)


def get_density(name) -> Density:
    """The registry density called ``name`` (a Density, e.g. one the user made, is returned as it is)."""
    if isinstance(name, Density):
        return name
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown density {name!r}; choose one of: {', '.join(REGISTRY)}.") from None


def names() -> list[str]:
    """Registry names, the paper's three first."""
    return list(REGISTRY)


def grid_entropy(name: str, step: float | None = None, block: int = 65_536) -> float:
    """−∑ p log p · cell over the midpoint grid of ``GRID_BOX[name]`` (``step`` overrides its step); float64 when the
    caller enables x64."""
    (x0, x1), (y0, y1) = GRID_BOX[name][0]
    h = GRID_BOX[name][1] if step is None else float(step)
    nx, ny = int(round((x1 - x0) / h)), int(round((y1 - y0) / h))
    xs, ys = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx, y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    pts = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    d = REGISTRY[name]
    lp = np.concatenate([np.asarray(d.log_prob(jnp.asarray(pts[i:i + block])), np.float64)
                         for i in range(0, len(pts), block)])
    p = np.exp(lp)
    return float(-np.sum(np.where(p > 0, p * lp, 0.0)) * (x1 - x0) * (y1 - y0) / (nx * ny))
