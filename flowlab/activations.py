"""Elementwise invertible activations (Gresele et al. 2020, App. H.2), fixed or with learned per-unit parameters.

Fixed (``n_params == 0``):
* smooth leaky ReLU  s_L(x) = a x + (1 - a) log(1 + e^x)          (eq. 35), default a = 0.3
* tanh + linear      s_T(x) = tanh(a x) + b x                      (eq. 36), default a = 1, b = 0.1

Learned (parameters θ of shape (D, n_params) per layer, in ``params["A"]`` (L-1, D, n_params) of the flow; every
value of θ gives a strictly increasing map, so the flow stays invertible whatever the optimiser does):
* learned leaky ReLU  s_L with its own slope per unit, a_j = sigmoid(θ_j) in (0, 1); starts as s_L (a = ``alpha``)
* learned steps       s(x) = e^ρ x + Σ_{m=1..M} e^{ω_m} tanh(e^{κ_m} (x - c_m)),  θ = (ρ, ω_1..M, κ_1..M, c_1..M):
                      a linear slope plus M tanh steps of learned height, sharpness and position per unit,
                      s'(x) = e^ρ + Σ_m e^{ω_m + κ_m} sech²(·) > 0.  Starts near s_T (slope ``beta``, total step
                      height 1 split over M steps of sharpness ``alpha`` at -1/alpha, 0, 1/alpha: distinct steps, so
                      they can move apart).

Each activation gives its value, log-derivative (finite in float32 for |x| up to 1e4 and any finite θ), second
derivative and an inverse (monotone Newton for s_L and s_T, bracketed Newton for the learned steps; no closed form
exists).  An ``Activation`` is a frozen, hashable dataclass so it can be a static argument of jitted functions; the
learned parameters are arrays passed next to it (``theta``).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

NEWTON_STEPS = 40
BRACKET_STEPS = 60  # safeguarded Newton for the learned steps: bisection alone would shrink the bracket 2^60-fold
STEPS = 3  # tanh steps per unit of the learned-steps activation

ACTIVATION_NAMES = ("smooth_leaky_relu", "tanh_linear", "learned_leaky_relu", "learned_steps")
_LABELS = {"smooth_leaky_relu": "smooth leaky ReLU s_L", "tanh_linear": "tanh + βx  s_T",
           "learned_leaky_relu": "learned leaky ReLU",  # a slope per unit
           "learned_steps": "learned tanh steps"}  # a slope and STEPS tanh steps per unit (short: a sidebar choice)
_N_PARAMS = {"smooth_leaky_relu": 0, "tanh_linear": 0, "learned_leaky_relu": 1, "learned_steps": 1 + 3 * STEPS}
# a training step's cost relative to a fixed activation (assets/benchmarks/activation_cpu.json: 0.48x and 0.09x the
# steps/s at D = 2, L = 10, batch 512); sizes the live chunks
_STEP_COST = {"smooth_leaky_relu": 1.0, "tanh_linear": 1.0, "learned_leaky_relu": 2.0, "learned_steps": 10.0}
_LEAKY = ("smooth_leaky_relu", "learned_leaky_relu")  # alpha: the (initial) slope, 0 < alpha < 1
MAX_PARAMS = max(_N_PARAMS.values())


@dataclass(frozen=True)
class Activation:
    """An elementwise bijection R -> R with strictly positive derivative (per unit, with ``theta`` if learned)."""

    name: str = "smooth_leaky_relu"
    alpha: float = 0.3
    beta: float = 0.1

    def __post_init__(self):
        if self.name not in ACTIVATION_NAMES:
            raise ValueError(f"Unknown activation {self.name!r}; choose one of {', '.join(ACTIVATION_NAMES)}.")
        if self.name in _LEAKY and not (0.0 < self.alpha < 1.0):
            raise ValueError(f"smooth leaky ReLU needs 0 < alpha < 1 for invertibility, got alpha={self.alpha}.")
        if self.name not in _LEAKY and not (self.alpha > 0.0 and self.beta > 0.0):
            raise ValueError(f"tanh + beta x needs alpha > 0 and beta > 0, got alpha={self.alpha}, beta={self.beta}.")

    @property
    def label(self) -> str:
        return _LABELS[self.name]

    @property
    def n_params(self) -> int:
        """Learned parameters per unit (0 for a fixed activation)."""
        return _N_PARAMS[self.name]

    @property
    def step_cost(self) -> float:
        """A training step's cost relative to a fixed activation (measured; ``_STEP_COST``)."""
        return _STEP_COST[self.name]

    @property
    def learnable(self) -> bool:
        return self.n_params > 0

    def init_params(self, dim: int, dtype=jnp.float32):
        """(dim, n_params) initial θ of one layer: the learned leaky ReLU starts as s_L with slope alpha, the learned
        steps near s_T (module docstring)."""
        if self.name == "learned_leaky_relu":
            return jnp.full((int(dim), 1), jnp.log(self.alpha / (1.0 - self.alpha)), dtype)
        if self.name != "learned_steps":
            return jnp.zeros((int(dim), 0), dtype)
        m = jnp.arange(STEPS, dtype=dtype)
        row = jnp.concatenate([jnp.log(jnp.asarray([self.beta], dtype)), jnp.full(STEPS, -jnp.log(STEPS), dtype),
                               jnp.full(STEPS, jnp.log(self.alpha), dtype), (m - (STEPS - 1) / 2) / self.alpha])
        return jnp.broadcast_to(row.astype(dtype), (int(dim), self.n_params))

    # ---- parameters ---------------------------------------------------------------------------------------------
    def _theta(self, theta):
        if theta is None:
            raise ValueError(f"The {self.label} activation needs its learned parameters (the flow's params['A']).")
        return jnp.asarray(theta)

    def _slope(self, theta):
        """s_L's a: alpha, or sigmoid(θ) per unit."""
        return self.alpha if self.name == "smooth_leaky_relu" else jax.nn.sigmoid(self._theta(theta)[..., 0])

    def _steps(self, x, theta):
        """(ρ (.., D), ω, κ (.., D, M), u = e^κ (x - c) (.., D, M)) of the learned steps at x."""
        t = self._theta(theta)
        rho, w, k, c = t[..., 0], t[..., 1:1 + STEPS], t[..., 1 + STEPS:1 + 2 * STEPS], t[..., 1 + 2 * STEPS:]
        return rho, w, k, jnp.exp(k) * (jnp.asarray(x)[..., None] - c)

    # ---- value ------------------------------------------------------------------------------------------------
    def __call__(self, x, theta=None):
        if self.name in _LEAKY:
            a = self._slope(theta)
            return a * x + (1.0 - a) * jax.nn.softplus(x)
        if self.name == "tanh_linear":
            return jnp.tanh(self.alpha * x) + self.beta * x
        rho, w, _, u = self._steps(x, theta)
        return jnp.exp(rho) * x + jnp.sum(jnp.exp(w) * jnp.tanh(u), axis=-1)

    # ---- derivatives --------------------------------------------------------------------------------------------
    def deriv(self, x, theta=None):
        if self.name in _LEAKY:
            a = self._slope(theta)
            return a + (1.0 - a) * jax.nn.sigmoid(x)
        if self.name == "tanh_linear":
            a = self.alpha
            return a * jnp.exp(_log_sech2(a * x)) + self.beta
        rho, w, k, u = self._steps(x, theta)
        return jnp.exp(rho) + jnp.sum(jnp.exp(w + k + _log_sech2(u)), axis=-1)

    def log_deriv(self, x, theta=None):
        """log s'(x), evaluated without cancellation: s' never underflows to 0 since s' >= min slope > 0."""
        a = self.alpha
        if self.name == "smooth_leaky_relu":
            # a + (1-a) sigmoid(x) >= a > 0, so the plain form cannot reach log 0 and costs one sigmoid + one log
            return jnp.log(a + (1.0 - a) * jax.nn.sigmoid(x))
        if self.name == "tanh_linear":
            return jnp.logaddexp(jnp.log(a) + _log_sech2(a * x), jnp.log(self.beta))
        if self.name == "learned_leaky_relu":  # log(σ(θ) + σ(-θ) σ(x)): finite for any finite θ and x
            t = self._theta(theta)[..., 0]
            return jnp.logaddexp(jax.nn.log_sigmoid(t), jax.nn.log_sigmoid(-t) + jax.nn.log_sigmoid(x))
        rho, w, k, u = self._steps(x, theta)  # log(e^ρ + Σ e^{ω+κ} sech² u) as a logsumexp
        terms = jnp.concatenate([jnp.broadcast_to(rho[..., None], u.shape[:-1] + (1,)), w + k + _log_sech2(u)], -1)
        return jax.nn.logsumexp(terms, axis=-1)

    def deriv2(self, x, theta=None):
        if self.name in _LEAKY:
            s = jax.nn.sigmoid(x)
            return (1.0 - self._slope(theta)) * s * (1.0 - s)
        if self.name == "tanh_linear":
            a = self.alpha
            t = jnp.tanh(a * x)
            return -2.0 * a * a * t * (1.0 - t * t)
        _, w, k, u = self._steps(x, theta)
        return jnp.sum(-2.0 * jnp.tanh(u) * jnp.exp(w + 2.0 * k + _log_sech2(u)), axis=-1)

    # ---- inverse ------------------------------------------------------------------------------------------------
    def inverse(self, y, theta=None):
        """x with s(x) = y.

        s_L (fixed or learned slope) is convex increasing: Newton from min(y, y/a) >= root descends monotonically.
        s_T is odd and concave increasing on x >= 0: solve for |y| starting at 0 <= root, then restore the sign.
        The learned steps: e^ρ x - H < s(x) < e^ρ x + H with H = Σ e^ω brackets the root in [(y-H)/e^ρ, (y+H)/e^ρ];
        a Newton step that leaves the shrinking bracket or spans more than half of it (Newton can cycle between the
        flat parts of s) is replaced by bisection; the iteration ends when no value moves by more than a few ulps
        (at most ``BRACKET_STEPS`` iterations; most batches need 10–30).
        """
        y = jnp.asarray(y)
        if self.name == "learned_steps":
            return self._bracketed_inverse(y, theta)
        if self.name in _LEAKY:
            x0 = jnp.minimum(y, y / self._slope(theta))
            target = y
        else:
            x0 = jnp.zeros_like(y)
            target = jnp.abs(y)

        def step(_, x):
            return x - (self(x, theta) - target) / self.deriv(x, theta)

        x = jax.lax.fori_loop(0, NEWTON_STEPS, step, x0)
        if self.name == "tanh_linear":
            x = jnp.sign(y) * x
        return x

    def _bracketed_inverse(self, y, theta):
        t = self._theta(theta)
        slope, height = jnp.exp(t[..., 0]), jnp.sum(jnp.exp(t[..., 1:1 + STEPS]), axis=-1)
        lo, hi = (y - height) / slope, (y + height) / slope

        tol = 4.0 * jnp.finfo(y.dtype).eps

        def step(carry):
            i, x, lo, hi, _ = carry
            f = self(x, theta) - y
            lo, hi = jnp.where(f < 0, x, lo), jnp.where(f > 0, x, hi)
            xn = x - f / self.deriv(x, theta)
            newton = (xn >= lo) & (xn <= hi) & (jnp.abs(xn - x) <= 0.5 * (hi - lo))
            xn = jnp.where(newton, xn, 0.5 * (lo + hi))
            moving = jnp.any(jnp.abs(xn - x) > tol * (1.0 + jnp.abs(x)))
            return i + 1, xn, lo, hi, moving

        def going(carry):
            return (carry[0] < BRACKET_STEPS) & carry[4]

        return jax.lax.while_loop(going, step, (0, y / slope, lo, hi, jnp.array(True)))[1]


def _log_sech2(u):
    """log(1 - tanh(u)^2) = log 4 - 2|u| - 2 log(1 + e^{-2|u|}), stable for any u."""
    au = jnp.abs(u)
    return jnp.log(4.0) - 2.0 * au - 2.0 * jnp.log1p(jnp.exp(-2.0 * au))


def make_activation(name: str = "smooth_leaky_relu", alpha: float | None = None, beta: float | None = None) -> Activation:
    """Activation with the paper's defaults (s_L: a=0.3; s_T: a=1, b=0.1) unless overridden; the learned ones take
    the defaults of the fixed activation they start from (learned leaky ReLU: s_L's; learned steps: s_T's)."""
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}.")
    if name in _LEAKY:
        return Activation(name, 0.3 if alpha is None else float(alpha), 0.1 if beta is None else float(beta))
    return Activation(name, 1.0 if alpha is None else float(alpha), 0.1 if beta is None else float(beta))
