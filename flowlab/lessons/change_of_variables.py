"""Lesson 1 — change of variables in one dimension (Zhao §1):  p_Z(z) = p_X(x) |dx/dz|,  z = f(x) increasing."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..activations import Activation

MAPS_1D = ("affine", "tanh_linear", "smooth_leaky_relu")
MAP_LABELS = {"affine": "affine  a·x + c", "tanh_linear": "tanh(a·x) + β·x", "smooth_leaky_relu":
              "smooth leaky ReLU  a·x + (1−a)·log(1+eˣ)"}
BASES_1D = ("gaussian", "bimodal")
BASE_LABELS = {"gaussian": "standard normal N(0, 1)", "bimodal": "two-bump mixture"}

_BIMODAL = ((0.45, -1.5, 0.5), (0.55, 1.2, 0.7))  # (weight, mean, std)


def _erf(x):
    return np.frompyfunc(math.erf, 1, 1)(np.asarray(x, np.float64)).astype(np.float64)


@dataclass(frozen=True)
class Base1D:
    """A 1-D density with pdf, cdf and a sampler."""

    kind: str = "gaussian"

    def __post_init__(self):
        if self.kind not in BASES_1D:
            raise ValueError(f"Unknown 1-D density {self.kind!r}; choose one of {', '.join(BASES_1D)}.")

    @property
    def components(self):
        return ((1.0, 0.0, 1.0),) if self.kind == "gaussian" else _BIMODAL

    def pdf(self, x):
        x = np.asarray(x, np.float64)
        return sum(w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi)) for w, m, s in self.components)

    def cdf(self, x):
        x = np.asarray(x, np.float64)
        return sum(w * 0.5 * (1.0 + _erf((x - m) / (s * math.sqrt(2.0)))) for w, m, s in self.components)

    def sample(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        comps = np.asarray(self.components)
        k = rng.choice(len(comps), size=int(n), p=comps[:, 0])
        return comps[k, 1] + comps[k, 2] * rng.standard_normal(int(n))

    def support(self):
        lo = min(m - 4.5 * s for _, m, s in self.components)
        hi = max(m + 4.5 * s for _, m, s in self.components)
        return lo, hi


@dataclass(frozen=True)
class Map1D:
    """A strictly increasing map z = f(x).  ``a`` is the slope (affine) or the activation's alpha; ``c`` is the
    shift (affine) or beta (tanh + βx); the smooth leaky ReLU uses only ``a`` (0 < a < 1)."""

    name: str = "affine"
    a: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        if self.name not in MAPS_1D:
            raise ValueError(f"Unknown map {self.name!r}; choose one of {', '.join(MAPS_1D)}.")
        if self.name == "affine" and not self.a > 0:
            raise ValueError(f"The affine map needs a positive slope a to stay increasing, got a={self.a}.")
        if self.name != "affine":
            self._act  # validates alpha/beta with the activation's own message

    @property
    def _act(self) -> Activation:
        return Activation(self.name, float(self.a), float(self.c) if self.name == "tanh_linear" else 0.1)

    def __call__(self, x):
        x = np.asarray(x, np.float64)
        if self.name == "affine":
            return self.a * x + self.c
        return np.asarray(self._act(x), np.float64)

    def deriv(self, x):
        x = np.asarray(x, np.float64)
        if self.name == "affine":
            return np.full_like(x, self.a)
        return np.asarray(self._act.deriv(x), np.float64)

    def inverse(self, z):
        z = np.asarray(z, np.float64)
        if self.name == "affine":
            return (z - self.c) / self.a
        x = np.asarray(self._act.inverse(z), np.float64)
        for _ in range(2):  # polish in float64 (the activation may have run in float32)
            x = x - (self(x) - z) / self.deriv(x)
        return x


def change_of_variables_1d(fmap: Map1D, base: Base1D = Base1D(), n: int = 20_000, bins: int = 60,
                           seed: int = 0, grid: int = 600) -> dict:
    """Push p_X through z = f(x).

    Returns the x grid with p_X, the matching z = f(x) with p_Z(z) = p_X(x) |dx/dz| (a parametric curve: no inverse
    needed), the factor |dx/dz| = 1/f'(x), a histogram of f(samples) as a density, the exact bin probabilities
    F_X(f^{-1}(e_{i+1})) − F_X(f^{-1}(e_i)) and a chi-square statistic comparing the two (≈ bins−1 when they agree).
    """
    if int(n) < 10:
        raise ValueError(f"Use at least 10 samples, got {n}.")
    if int(bins) < 2:
        raise ValueError(f"Use at least 2 bins, got {bins}.")
    lo, hi = base.support()
    x = np.linspace(lo, hi, int(grid))
    px = base.pdf(x)
    z = fmap(x)
    dxdz = 1.0 / fmap.deriv(x)
    pz = px * dxdz
    xs = base.sample(n, seed)
    zs = fmap(xs)
    z_lo, z_hi = np.quantile(zs, [0.002, 0.998])
    edges = np.linspace(z_lo, z_hi, int(bins) + 1)
    counts, _ = np.histogram(zs, edges)
    width = np.diff(edges)
    probs = np.diff(base.cdf(fmap.inverse(edges)))
    expected = n * probs
    ok = expected > 5  # chi-square is meaningful only where enough counts are expected
    chi2 = float(np.sum((counts[ok] - expected[ok]) ** 2 / expected[ok]))
    return {"x": x, "px": px, "z": z, "pz": pz, "dxdz": dxdz, "x_samples": xs, "z_samples": zs, "edges": edges,
            "hist_density": counts / (n * width), "bin_prob": probs, "chi2": chi2, "dof": int(ok.sum()) - 1,
            "mass_z": float(np.trapezoid(pz, z)), "mass_x": float(np.trapezoid(px, x))}
