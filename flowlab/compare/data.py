"""The data of a Compare experiment: a toy density from the registry, the density of a typed text
(``flowlab.custom_densities.text_density``: uniform on the ink of its letters), or ``MixtureND``, a Gaussian mixture
in any dimension D generated on the fly with an exact log-density (the density of the dimension sweep, D up to 512)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..custom_densities import text_density
from ..densities import REGISTRY
from ..metrics import LOG2PI, random_orthogonal
from .settings import CompareSettings

MIXTURE_COMPONENTS = 4
MIXTURE_RADIUS = 4.0  # distance of every component mean from the origin
MIXTURE_SCALES = (0.3, 1.5)  # per-axis standard deviations, log-uniform in this range
SPARE = 64  # extra text points drawn, so that points rounded onto an empty pixel can be dropped (see make_data)
ROWS = 2048  # rows per block of log_prob: its temporaries stay K × ROWS × D whatever the number of points


@dataclass(frozen=True)
class MixtureND:
    """Equal-weight mixture of K Gaussians N(μ_k, Q_k diag(s_k²) Q_kᵀ) in D dimensions: random rotations Q_k
    (Haar), scales s_k log-uniform in ``MIXTURE_SCALES``, means at distance ``MIXTURE_RADIUS`` from the origin in
    random directions."""

    means: np.ndarray  # (K, D)
    rots: np.ndarray  # (K, D, D) orthogonal
    scales: np.ndarray  # (K, D)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """x = μ_k + Q_k (s_k ⊙ ε), k uniform, ε ~ N(0, I); one (n_k, D) product per component (never an (n, D, D)
        stack of rotations)."""
        rng = np.random.default_rng(seed)
        k = rng.integers(0, len(self.means), size=int(n))
        z = rng.standard_normal((int(n), self.dim)) * self.scales[k]
        for c in range(len(self.means)):
            rows = k == c
            z[rows] = self.means[c] + z[rows] @ self.rots[c].T
        return z

    def log_prob(self, x) -> np.ndarray:
        """Exact log-density of the rows of x (float64): log-sum-exp over the components of
        log N(Q_kᵀ(x − μ_k) / s_k) − Σ log s_k − log K."""
        x = np.asarray(x, np.float64)
        shifted = np.einsum("kd,kdj->kj", self.means, self.rots)[:, None, :]
        const = -np.sum(np.log(self.scales), axis=-1)[:, None] - 0.5 * self.dim * LOG2PI - math.log(len(self.means))
        out = np.empty(len(x))
        for i in range(0, len(x), ROWS):
            u = (np.einsum("nd,kdj->knj", x[i:i + ROWS], self.rots) - shifted) / self.scales[:, None, :]
            comp = -0.5 * np.sum(u * u, axis=-1) + const
            m = comp.max(axis=0)
            out[i:i + ROWS] = m + np.log(np.sum(np.exp(comp - m), axis=0))
        return out


@lru_cache(maxsize=4)  # K·D² float64 each: 8 MB at D = 512
def mixture_nd(dim: int, seed: int = 0, k: int = MIXTURE_COMPONENTS) -> MixtureND:
    """The mixture for (dim, seed): the same arguments give the same density."""
    rng = np.random.default_rng(1_000_003 * int(seed) + int(dim))
    dirs = rng.standard_normal((k, dim))
    means = MIXTURE_RADIUS * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    rots = random_orthogonal(rng, (k, dim, dim))
    lo, hi = MIXTURE_SCALES
    scales = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(k, dim)))
    return MixtureND(means, rots, scales)


def make_data(settings: CompareSettings) -> tuple[np.ndarray, float]:
    """(N, D) float64 data points of the experiment and the true density's NLL on them, −mean log p(x)."""
    if settings.high_dimensional:
        d = mixture_nd(settings.dim, settings.seed)
        x = d.sample(settings.points, seed=settings.seed)
        return x, float(-np.mean(d.log_prob(x)))
    if settings.text_density:
        return _text_data(settings)
    d = REGISTRY[settings.density]
    x = d.sample(settings.points, seed=settings.seed)
    lp = np.asarray(d.log_prob(x.astype(np.float32)), np.float64)
    return x, float(-np.mean(lp))


def _text_data(settings: CompareSettings) -> tuple[np.ndarray, float]:
    """Points of the text density and their true NLL.  Its log p is −inf off the ink, and a float32 point within
    one rounding (~1e-7) of a pixel edge can land on an empty neighbour (about one point in 10⁵): the first
    ``points`` of ``points + SPARE`` samples with a finite log p are kept, so the true NLL is exact and finite."""
    d = text_density(settings.text)
    x = d.sample(settings.points + SPARE, seed=settings.seed)
    lp = np.asarray(d.log_prob(x.astype(np.float32)), np.float64)
    keep = np.flatnonzero(np.isfinite(lp))[:settings.points]
    if len(keep) < settings.points:  # would need 65 points within 1e-7 of an edge: not seen in practice
        raise ValueError("Too few points of the text density have a finite log-density; try another seed.")
    return x[keep], float(-np.mean(lp[keep]))
