"""Numerics behind the six lessons of the Learn page.  Pure numpy/JAX, no UI; every number the page shows comes
from here and is unit-tested in tests/test_lessons.py.

1. change of variables in 1-D (Zhao §1):       p_Z(z) = p_X(x) |dx/dz|,  z = f(x)
2. 2-D linear maps (Zhao §3.3):                area ratio = |det A|,  x = A u, u ~ N(0, I)  =>  x ~ N(0, A Aᵀ)
3. cost of det / inverse vs D (Gresele §2.3, Zhao §3.1, 3.4–3.5), triangular factors
4. the relative gradient (Gresele §4, eqs. 10–15)
5. self-normalizing flows: Rᵀ in place of W^{-T} (Keller et al. §4.1, eqs. 8–11)
6. linear flows reach the closed-form bound (Liao & He eq. 6) — see ``flowlab.theory`` and ``linear_flow_trainer``
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .activations import Activation

LOG2PI = math.log(2.0 * math.pi)

# =====================================================================================================================
# Lesson 1 — change of variables in 1-D
# =====================================================================================================================
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


# =====================================================================================================================
# Lesson 2 — 2-D linear flows
# =====================================================================================================================
def polygon_area(pts) -> float:
    """Signed area of a closed polygon (shoelace formula); pts (n, 2) without the repeated first point."""
    p = np.asarray(pts, np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def linear_map_2d(A, n_circle: int = 256, n_samples: int = 2000, seed: int = 0) -> dict:
    """Image of the unit circle under x = A u, its area ratio (= |det A| exactly for the polygon, since a linear map
    scales every area by |det A|), the ellipse's semi-axes (singular values) and the Gaussian x = A u, u ~ N(0, I)
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
            "area_ratio": polygon_area(ellipse) / polygon_area(circle), "singular_values": np.linalg.svd(A)[1],
            "cov": A @ A.T, "u_samples": u, "x_samples": u @ A.T}


def induced_log_density(A, x):
    """log p_X(x) for x = A u, u ~ N(0, I), by the change of variables: log N(A^{-1} x; 0, I) − log|det A|."""
    A = np.asarray(A, np.float64)
    sign, logdet = np.linalg.slogdet(A)
    if sign == 0 or not np.isfinite(logdet) or np.linalg.cond(A) > 1e12:
        raise ValueError("A is singular: it squashes the plane onto a line, so it has no density.")
    u = np.linalg.solve(A, np.asarray(x, np.float64).T).T
    return -0.5 * np.sum(u * u, axis=1) - LOG2PI - logdet


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
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


# =====================================================================================================================
# Lesson 3 — why the log-det is expensive
# =====================================================================================================================
TIMED_OPS = ("slogdet", "inverse", "matvec", "triangular_logdet")
OP_LABELS = {"slogdet": "log|det W| (LU)", "inverse": "W⁻¹ (inverse)", "matvec": "W·v (matrix × vector)",
             "triangular_logdet": "log|det T|, T triangular (Σ log|Tᵢᵢ|)"}
OP_ORDER = {"slogdet": 3, "inverse": 3, "matvec": 2, "triangular_logdet": 1}


def _time_call(fn, min_total: float = 2e-3, repeats: int = 5) -> float:
    """Best-of-``repeats`` seconds per call, each repeat looping until ``min_total`` seconds have passed."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_total or number >= 1 << 16:
            break
        number *= 2
    best = dt / number
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _measure(dims, repeats: int, seed: int, min_total: float) -> dict:
    rng = np.random.default_rng(seed)
    times = {op: [] for op in TIMED_OPS}
    for d in dims:
        W = np.eye(d) + rng.standard_normal((d, d)) / math.sqrt(d)
        T = np.tril(W)
        v = rng.standard_normal(d)
        calls = {"slogdet": lambda: np.linalg.slogdet(W), "inverse": lambda: np.linalg.inv(W),
                 "matvec": lambda: W @ v, "triangular_logdet": lambda: np.sum(np.log(np.abs(np.diagonal(T))))}
        for op in TIMED_OPS:
            times[op].append(_time_call(calls[op], min_total, repeats))
    return times


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def time_linear_algebra(dims=(32, 64, 128, 256, 512), repeats: int = 3, seed: int = 0, min_total: float = 2e-3,
                        single_thread: bool = True) -> dict:
    """Measured seconds per call (numpy, float64, this machine) of log|det W|, W⁻¹, W·v and a triangular log-det for
    each D, plus log-log slopes fitted over the larger half of the sizes.

    With ``single_thread`` the measurement runs in a child Python with the BLAS thread count set to 1: on a busy
    machine multi-threaded BLAS can stall for milliseconds waiting for cores, which hides the D³-vs-D² story."""
    dims = [int(d) for d in dims]
    if not dims or min(dims) < 2 or max(dims) > 4096:
        raise ValueError("Dimensions must lie between 2 and 4096.")
    if single_thread:
        import json
        import os
        import subprocess
        import sys

        import inspect

        # the child gets just these two functions (numpy only: no JAX import, so it starts in a fraction of a second)
        code = "\n".join(["import json, math, time", "import numpy as np", f"TIMED_OPS = {TIMED_OPS!r}",
                           inspect.getsource(_time_call), inspect.getsource(_measure),
                           f"print(json.dumps(_measure({dims!r}, {int(repeats)}, {int(seed)}, {float(min_total)!r})))"])
        env = {**os.environ, **{k: "1" for k in _THREAD_VARS}}
        try:
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            times = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            times = None
        if times is None:  # no child interpreter available: measure here, with the BLAS threads as they are
            single_thread = False
    if not single_thread:
        times = _measure(dims, repeats, seed, min_total)
    times = {op: np.asarray(t) for op, t in times.items()}
    half = max(2, (len(dims) + 1) // 2) if len(dims) > 1 else 0
    return {"dims": np.asarray(dims), "times": times, "single_thread": bool(single_thread),
            "slopes": {op: loglog_slope(dims[-half:], t[-half:]) if half else float("nan")
                       for op, t in times.items()}}


def loglog_slope(dims, times) -> float:
    """Least-squares slope of log t against log D: t ∝ D^slope."""
    d, t = np.log(np.asarray(dims, np.float64)), np.log(np.asarray(times, np.float64))
    if d.size < 2:
        raise ValueError("Need at least two sizes to fit a slope.")
    return float(np.polyfit(d, t, 1)[0])


def lu_nopivot(A):
    """A = L U with L unit lower- and U upper-triangular (Doolittle, no pivoting): the product of two triangular
    linear flows.  log|det A| = Σ log|Uᵢᵢ|.  Raises if a leading minor vanishes (then a permutation is needed)."""
    A = np.asarray(A, np.float64)
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError("A must be square.")
    L, U = np.eye(n), A.copy()
    for k in range(n - 1):
        if abs(U[k, k]) < 1e-12 * max(1.0, np.abs(A).max()):
            raise ValueError("A leading minor is zero: this matrix needs a permutation before its LU factorisation.")
        L[k + 1:, k] = U[k + 1:, k] / U[k, k]
        U[k + 1:] -= np.outer(L[k + 1:, k], U[k])
    return L, np.triu(U)


def triangular_dependence(T) -> np.ndarray:
    """Boolean (D, D) matrix: output i depends on input j (for a linear map z = T x that is T_ij ≠ 0).  For a lower
    triangular T output 1 sees input 1 only — the expressivity price of a cheap determinant."""
    return np.abs(np.asarray(T, np.float64)) > 0


# =====================================================================================================================
# Lesson 4 — the relative gradient
# =====================================================================================================================
def random_matrix(d: int, seed: int = 0):
    """A random D x D matrix with controlled conditioning, as used in the numerical checks: Q₁ diag(s) Q₂ with
    random orthogonal Q₁, Q₂ and singular values s log-uniform in [1/2, 2] (condition number ≤ 4)."""
    if int(d) < 1:
        raise ValueError(f"Dimension must be a positive integer, got {d}.")
    d = int(d)
    rng = np.random.default_rng(seed)
    q1, r1 = np.linalg.qr(rng.standard_normal((d, d)))
    q2, r2 = np.linalg.qr(rng.standard_normal((d, d)))
    q1, q2 = q1 * np.sign(np.diag(r1)), q2 * np.sign(np.diag(r2))
    s = np.exp(rng.uniform(-math.log(2.0), math.log(2.0), d))
    return (q1 * s) @ q2.T


def logabsdet(W) -> float:
    return float(np.linalg.slogdet(np.asarray(W, np.float64))[1])


def fd_grad_logdet(W, h: float = 1e-6):
    """∂ log|det W| / ∂W by central finite differences (independent of any formula)."""
    W = np.asarray(W, np.float64)
    G = np.zeros_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            E = np.zeros_like(W)
            E[i, j] = h
            G[i, j] = (logabsdet(W + E) - logabsdet(W - E)) / (2 * h)
    return G


def relative_gradient_check(d: int = 5, seed: int = 0, eps: float = 1e-4) -> dict:
    """Numerical check of Gresele eqs. 10–14 on a random W.

    * ``err_eq10``: ‖G − W^{-T}‖/‖W^{-T}‖ with G the finite-difference gradient of log|det W|;
    * ``err_eq14``: ‖G WᵀW − W‖/‖W‖  (the relative gradient of the log-det term is W itself);
    * multiplicative perturbation W → (I + εE)W: log|det((I+εE)W)| − log|det W| against the first-order
      prediction ⟨G Wᵀ, εE⟩ = ε tr E  (eq. 12), relative error ``err_eq12`` = O(ε).
    """
    W = random_matrix(d, seed)
    G = fd_grad_logdet(W)
    Winv_T = np.linalg.inv(W).T
    rel = G @ W.T @ W
    E = np.random.default_rng(seed + 1).standard_normal(W.shape)
    actual = logabsdet((np.eye(len(W)) + eps * E) @ W) - logabsdet(W)
    predicted = float(np.sum((G @ W.T) * (eps * E)))
    return {"W": W, "G": G, "relative": rel,
            "err_eq10": float(np.linalg.norm(G - Winv_T) / np.linalg.norm(Winv_T)),
            "err_eq14": float(np.linalg.norm(rel - W) / np.linalg.norm(W)),
            "perturb_actual": actual, "perturb_predicted": predicted, "trace_E": float(np.trace(E)) * eps,
            "err_eq12": abs(actual - predicted) / abs(predicted)}


def relative_update_naive(delta, H, W):
    """(δᵀH) WᵀW with explicit D×D matrix products: O(B D² + D³)."""
    return (delta.T @ H) @ W.T @ W


def relative_update_fast(delta, H, W):
    """Eq. 15 for a batch: δᵀ((H Wᵀ) W) — only (B,D)×(D,D) products, O(B D²), no D×D×D product.
    H Wᵀ is the layer's pre-activation (minus bias), already available from the forward pass."""
    return delta.T @ ((H @ W.T) @ W)


def relative_update_check(d: int, b: int, seed: int = 0) -> dict:
    """Eq. 15 on random δ, H (B, D) and W: relative difference between the fast and the naive product."""
    rng = np.random.default_rng(seed)
    W, H, delta = random_matrix(d, seed), rng.standard_normal((int(b), int(d))), rng.standard_normal((int(b), int(d)))
    naive, fast = relative_update_naive(delta, H, W), relative_update_fast(delta, H, W)
    return {"rel_diff": float(np.linalg.norm(fast - naive) / np.linalg.norm(naive)),
            "flops": relative_update_flops(d, b)}


def relative_update_flops(d: int, b: int) -> dict:
    """Multiply-add counts: naive δᵀH (B D²) + two D×D products (2 D³); fast H Wᵀ (B D², reused from the forward
    pass), (HWᵀ)W (B D²) and δᵀ(·) (B D²)."""
    return {"naive": b * d * d + 2 * d ** 3, "fast": 2 * b * d * d, "fast_with_forward": 3 * b * d * d}


# =====================================================================================================================
# Lesson 5 — self-normalizing flows
# =====================================================================================================================
def angle_deg(a, b) -> float:
    """Angle between two arrays (flattened) in degrees, θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖) for unit vectors â, b̂:
    accurate for tiny angles too, where acos of a rounded cosine cannot resolve less than ~1e-6 degrees."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return math.degrees(2.0 * math.atan2(np.linalg.norm(a - b), np.linalg.norm(a + b)))


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
    H = rng.standard_normal((int(b), int(d))) @ random_matrix(d, seed + 7).T
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
    eye = np.eye(len(W))
    angles, recon, loss = [], [], []
    for _ in range(int(steps) + 1):
        angles.append(angle_deg(g_exact, linear_layer_grads(W, H, R)))
        recon.append(float(np.linalg.norm(R @ W - eye)))
        E = Y @ R.T - H  # reconstruction residuals (B, D)
        loss.append(float(np.mean(np.sum(E * E, axis=1))))
        ahead = R + 0.9 * V
        V = 0.9 * V - lr * 2.0 * (Y @ ahead.T - H).T @ Y / len(Y)
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
        recon.append(float(np.linalg.norm(R @ W - np.eye(d))))
    return {"rel_error": rel_errors, "angle": np.asarray(angles), "logdet_angle": np.asarray(logdet_angles),
            "recon": np.asarray(recon), "W": W, "H": H, "E": E, "grad_norm": float(np.linalg.norm(g_exact))}


# =====================================================================================================================
# Lesson 6 — train a linear flow to the closed-form bound (formulas in flowlab.theory)
# =====================================================================================================================
LINEAR_DATA = ("correlated_gaussian", "banana")


def linear_lesson_data(name: str = "correlated_gaussian", n: int = 6000, seed: int = 0):
    """(x, exact entropy H(p) in nats or None) for the linear-flow lesson."""
    from . import theory

    if name == "correlated_gaussian":
        x, _, cov = theory.correlated_gaussian(n, seed=seed)
        return x, theory.gaussian_entropy(cov)
    if name == "banana":
        from .densities import get_density

        d = get_density("banana")
        return d.sample(n, seed=seed), d.entropy()  # Monte Carlo entropy of the registry density (cached)
    raise ValueError(f"Unknown lesson data {name!r}; choose one of {', '.join(LINEAR_DATA)}.")


def linear_flow_trainer(x, steps: int = 300, lr: float = 0.05, method: str = "relative", batch: int = 256,
                        chunk: int = 25, seed: int = 0):
    """A one-layer FC flow (= affine flow z = W x + b: the last layer has no activation) on raw (unstandardised)
    data, Adam with cosine decay over ``steps``."""
    from .train import build_trainer

    return build_trainer(data=x, layers=1, method=method, batch_size=batch, chunk_steps=chunk, seed=seed,
                         standardize=False, lr=lr, decay_steps=steps)


def linear_flow_summary(trainer) -> dict:
    """Training-set NLL of the trained affine flow against Liao & He's bound, the whitening check W Σ Wᵀ ≈ I and the
    expansion/contraction balance E‖z‖² ≈ d."""
    from . import theory

    x = np.asarray(trainer.x_train, np.float64)
    W = np.asarray(trainer.params["W"][0], np.float64)
    b = np.asarray(trainer.params["b"][0], np.float64)
    mu, cov = theory.gaussian_mle(x)
    nll = theory.linear_flow_nll(W, b, x)
    bound = theory.optimal_nll(cov)
    return {"train_nll": nll, "bound": bound, "gap": nll - bound, "W": W, "b": b, "cov": cov, "mu": mu,
            "whitened_cov": W @ cov @ W.T, "balance": theory.scale_profile(W, b, x, [1.0])["mean_sq_norm"],
            "dim": x.shape[1]}


# =====================================================================================================================
# "Try it" links: URL query strings understood by the other pages
# =====================================================================================================================
def _try_it_params() -> dict[str, tuple]:
    """The query parameters each page reads, from the pages' own validators (one source of truth)."""
    from . import compare, io as fio

    return {"playground": tuple(fio.QUERY_KEYS), "layers": ("density", "layers"),
            "compare": tuple(compare.QUERY_KEYS), "timing": ("dims", "methods")}


def try_it_url(page: str, **params) -> str:
    """Relative URL ``page?key=value&...`` that opens another FlowLab page preset.  Lists become comma-separated
    (``dims=64,128,256``).  Only the parameters that page reads are accepted."""
    known = _try_it_params()
    if page not in known:
        raise ValueError(f"Unknown page {page!r}; choose one of {', '.join(known)}.")
    bad = set(params) - set(known[page])
    if bad:
        raise ValueError(f"The {page} page does not read {', '.join(sorted(bad))}.")
    parts = []
    for k in known[page]:
        if k in params:
            v = params[k]
            v = ",".join(str(u) for u in v) if isinstance(v, (list, tuple)) else str(v)
            parts.append(f"{k}={v}")
    return f"{page}?" + "&".join(parts) if parts else page
