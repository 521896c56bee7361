"""Elementwise invertible activations (Gresele et al. 2020, App. H.2).

* smooth leaky ReLU  s_L(x) = a x + (1 - a) log(1 + e^x)          (eq. 35), default a = 0.3
* tanh + linear      s_T(x) = tanh(a x) + b x                      (eq. 36), default a = 1, b = 0.1

Each activation gives its value, log-derivative (finite in float32 for |x| up to 1e4), second derivative and an
inverse by monotone Newton iteration (no closed form exists).  An `Activation` is a frozen, hashable dataclass so it
can be a static argument of jitted functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

NEWTON_STEPS = 40

ACTIVATION_NAMES = ("smooth_leaky_relu", "tanh_linear")
_LABELS = {"smooth_leaky_relu": "smooth leaky ReLU s_L", "tanh_linear": "tanh + βx  s_T"}


@dataclass(frozen=True)
class Activation:
    """An elementwise bijection R -> R with strictly positive derivative."""

    name: str = "smooth_leaky_relu"
    alpha: float = 0.3
    beta: float = 0.1

    def __post_init__(self):
        if self.name not in ACTIVATION_NAMES:
            raise ValueError(f"Unknown activation {self.name!r}; choose one of {', '.join(ACTIVATION_NAMES)}.")
        if self.name == "smooth_leaky_relu" and not (0.0 < self.alpha < 1.0):
            raise ValueError(f"smooth leaky ReLU needs 0 < alpha < 1 for invertibility, got alpha={self.alpha}.")
        if self.name == "tanh_linear" and not (self.alpha > 0.0 and self.beta > 0.0):
            raise ValueError(f"tanh + beta x needs alpha > 0 and beta > 0, got alpha={self.alpha}, beta={self.beta}.")

    @property
    def label(self) -> str:
        return _LABELS[self.name]

    # ---- value ------------------------------------------------------------------------------------------------
    def __call__(self, x):
        a = self.alpha
        if self.name == "smooth_leaky_relu":
            return a * x + (1.0 - a) * jax.nn.softplus(x)
        return jnp.tanh(a * x) + self.beta * x

    # ---- derivatives --------------------------------------------------------------------------------------------
    def deriv(self, x):
        a = self.alpha
        if self.name == "smooth_leaky_relu":
            return a + (1.0 - a) * jax.nn.sigmoid(x)
        return a * jnp.exp(_log_sech2(a * x)) + self.beta

    def log_deriv(self, x):
        """log s'(x), evaluated without cancellation: s' never underflows to 0 since s' >= min(a, b)."""
        a = self.alpha
        if self.name == "smooth_leaky_relu":
            # a + (1-a) sigmoid(x) >= a > 0, so the plain form cannot reach log 0 and costs one sigmoid + one log
            return jnp.log(a + (1.0 - a) * jax.nn.sigmoid(x))
        return jnp.logaddexp(jnp.log(a) + _log_sech2(a * x), jnp.log(self.beta))

    def deriv2(self, x):
        a = self.alpha
        if self.name == "smooth_leaky_relu":
            s = jax.nn.sigmoid(x)
            return (1.0 - a) * s * (1.0 - s)
        t = jnp.tanh(a * x)
        return -2.0 * a * a * t * (1.0 - t * t)

    # ---- inverse ------------------------------------------------------------------------------------------------
    def inverse(self, y):
        """x with s(x) = y, by Newton iteration started on the side from which it converges monotonically.

        s_L is convex increasing: start at min(y, y/a) >= root (s_L(x) >= x and s_L(x) > a x) and descend.
        s_T is odd and concave increasing on x >= 0: solve for |y| starting at 0 <= root, then restore the sign.
        """
        y = jnp.asarray(y)
        if self.name == "smooth_leaky_relu":
            x0 = jnp.minimum(y, y / self.alpha)
            target = y
        else:
            x0 = jnp.zeros_like(y)
            target = jnp.abs(y)

        def step(_, x):
            return x - (self(x) - target) / self.deriv(x)

        x = jax.lax.fori_loop(0, NEWTON_STEPS, step, x0)
        if self.name == "tanh_linear":
            x = jnp.sign(y) * x
        return x


def _log_sech2(u):
    """log(1 - tanh(u)^2) = log 4 - 2|u| - 2 log(1 + e^{-2|u|}), stable for any u."""
    au = jnp.abs(u)
    return jnp.log(4.0) - 2.0 * au - 2.0 * jnp.log1p(jnp.exp(-2.0 * au))


def make_activation(name: str = "smooth_leaky_relu", alpha: float | None = None, beta: float | None = None) -> Activation:
    """Activation with the paper's defaults (s_L: a=0.3; s_T: a=1, b=0.1) unless overridden."""
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}.")
    if name == "smooth_leaky_relu":
        return Activation(name, 0.3 if alpha is None else float(alpha), 0.1 if beta is None else float(beta))
    return Activation(name, 1.0 if alpha is None else float(alpha), 0.1 if beta is None else float(beta))
