"""Convergence experiments: ordinary vs relative vs self-normalizing gradients, from the same initial weights.

* ``ConvergenceRun`` reproduces Gresele et al. (2020) Fig. 1 right and extends it: deterministic full-batch gradient
  descent (or Adam) on N points, ``n_inits`` random initial weights shared by every method (the self-normalizing flow
  gets R = Wᵀ on top, which is W⁻¹ for the default orthogonal init), the exact loss (slogdet) per iteration, the
  wall-clock time of the optimiser steps alone, and for the self-normalizing flow the angle between its approximate
  gradient and the exact gradient (Keller et al. 2021, Fig. 3), the inverse error ‖R W − I‖ and the reconstruction loss.
* ``LambdaSweep`` trains self-normalizing flows for several reconstruction weights λ from the same inits
  (Keller et al. 2021, App. A.5 / Table 4: too small a λ diverges, a large one costs likelihood).
* ``MixtureND``: a Gaussian mixture in D dimensions with randomly rotated, anisotropic components, generated on the
  fly, with an exact log-density — the density for the dimension sweep (D up to a few hundred).

Both experiments run in small pieces (``advance(budget_s)``) so a UI can draw a progress bar and cancel between
pieces.  One piece = ``eval_every`` optimiser steps of every method, each a jitted ``lax.scan`` over the steps and
``vmap`` over the inits, timed on its own (``block_until_ready``, compilation done ahead of time and excluded); the
evaluation that follows (exact loss, angle, ...) is not part of the timed region.  Divergence (a NaN/Inf gradient or
loss, or a loss above 1000 + 100·D nats) freezes that init at its last finite weights and marks it; never an error.

Pure JAX/numpy: no streamlit.  ``cli_main`` is ``python -m flowlab figure ...``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import gradients as G
from .activations import ACTIVATION_NAMES, make_activation
from .densities import REGISTRY
from .flow import FlowSpec, Norm, init_params, logdet_weights

DENSITY_ND = "gaussian_mixture_nd"
DENSITY_ND_LABEL = "Gaussian mixture with random rotations (any D)"
OPTIMIZERS = ("gd", "adam")
OPTIMIZER_LABELS = {"gd": "gradient descent (full batch)", "adam": "Adam (full batch)"}
COMPARE_METHODS = ("inverse", "relative", "self_normalizing", "exact")
DEFAULT_METHODS = ("inverse", "relative", "self_normalizing")
METHOD_NAMES = {"inverse": "ordinary", "relative": "relative", "self_normalizing": "self-normalizing",
                "exact": "ordinary (autodiff)"}
METHOD_COLORS = {"inverse": "#3b5bdb", "relative": "#e8590c", "self_normalizing": "#2b8a3e", "exact": "#7048e8"}
DEFAULT_LAMBDAS = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)
INIT_CHOICES = ("orthogonal", "identity_noise")

# (min, max) of every numeric setting; the page and the CLI use the same limits.
LIMITS = {
    "dim": (2, 512),
    "layers": (1, 50),
    "lr": (1e-6, 10.0),
    "n_inits": (1, 50),
    "iterations": (1, 20_000),
    "n_points": (10, 20_000),
    "lam": (0.0, 1e6),
    "seed": (0, 2**31 - 1),
    "eval_every": (0, 1000),
}


def density_choices() -> list[str]:
    return list(REGISTRY) + [DENSITY_ND]


def density_label(name: str) -> str:
    return DENSITY_ND_LABEL if name == DENSITY_ND else REGISTRY[name].label


def _int_setting(name: str, label: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{label} must be a whole number, got {value!r}.")
    if isinstance(value, (float, np.floating)) and (not math.isfinite(value) or value != int(value)):
        raise ValueError(f"{label} must be a whole number, got {value!r}.")
    v = int(value)
    lo, hi = LIMITS[name]
    if not lo <= v <= hi:
        raise ValueError(f"{label} must be between {lo:,} and {hi:,}, got {v:,}.")
    return v


def _float_setting(name: str, label: str, value, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {value!r}.") from None
    lo, hi = LIMITS[name]
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{label} must be a number between {lo:g} and {hi:g}, got {value!r}.")
    return v


@dataclass(frozen=True)
class CompareSettings:
    """Settings of one convergence experiment; invalid values raise ValueError with one sentence."""

    density: str = "trimodal"
    dim: int = 2
    layers: int = 2
    optimizer: str = "gd"
    lr: float = 0.02
    n_inits: int = 10
    iterations: int = 500
    n_points: int = 1000
    methods: tuple = DEFAULT_METHODS
    lam: float = 1.0
    seed: int = 0
    activation: str = "smooth_leaky_relu"
    init: str = "orthogonal"
    eval_every: int = 0  # optimiser steps between loss evaluations; 0 = automatic (1 up to D = 32)

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass: normalise in place)
        if self.density not in density_choices():
            raise ValueError(f"Unknown density {self.density!r}; choose one of: {', '.join(density_choices())}.")
        s("dim", _int_setting("dim", "The dimension D", self.dim))
        if self.density != DENSITY_ND and self.dim != 2:
            raise ValueError(f"The toy density {self.density!r} is 2-D; for D = {self.dim} choose the Gaussian "
                             f"mixture with random rotations ({DENSITY_ND!r}).")
        s("layers", _int_setting("layers", "The number of layers", self.layers))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimiser {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
        s("lr", _float_setting("lr", "The learning rate", self.lr))
        s("n_inits", _int_setting("n_inits", "The number of initialisations", self.n_inits))
        s("iterations", _int_setting("iterations", "The number of iterations", self.iterations))
        s("n_points", _int_setting("n_points", "The number of data points", self.n_points))
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        if not methods:
            raise ValueError("Choose at least one gradient method to compare.")
        for m in methods:
            if m not in COMPARE_METHODS:
                raise ValueError(f"Unknown gradient method {m!r}; choose from: {', '.join(COMPARE_METHODS)}.")
        if len(set(methods)) != len(methods):
            raise ValueError(f"Each gradient method may appear only once, got {', '.join(methods)}.")
        s("methods", tuple(m for m in COMPARE_METHODS if m in methods))  # fixed order: same colours, same CSV
        s("lam", _float_setting("lam", "The reconstruction weight λ", self.lam))
        s("seed", _int_setting("seed", "The seed", self.seed))
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"Unknown activation {self.activation!r}; choose one of: {', '.join(ACTIVATION_NAMES)}.")
        if self.init not in INIT_CHOICES:
            raise ValueError(f"Unknown initialisation {self.init!r}; choose one of: {', '.join(INIT_CHOICES)}.")
        s("eval_every", _int_setting("eval_every", "The evaluation interval", self.eval_every))
        if self.eval_every > self.iterations:
            raise ValueError(f"The evaluation interval ({self.eval_every}) cannot exceed the number of iterations "
                             f"({self.iterations}).")

    @property
    def every(self) -> int:
        """Optimiser steps per evaluation: every step up to D = 32, else about 100 evaluations per run."""
        if self.eval_every:
            return self.eval_every
        return 1 if self.dim <= 32 else max(1, self.iterations // 100)

    @property
    def spec(self) -> FlowSpec:
        return FlowSpec(self.dim, self.layers, make_activation(self.activation))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        return d


# ---- a high-dimensional density generated on the fly --------------------------------------------------------------
@dataclass(frozen=True)
class MixtureND:
    """Equal-weight mixture of K Gaussians N(μ_k, Q_k diag(s_k²) Q_kᵀ) in D dimensions: random rotations Q_k (QR of a
    Gaussian matrix), scales s_k log-uniform in [0.3, 1.5], means at distance 4 from the origin in random directions."""

    means: np.ndarray  # (K, D)
    rots: np.ndarray  # (K, D, D) orthogonal
    scales: np.ndarray  # (K, D)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        k = rng.integers(0, len(self.means), size=int(n))
        z = rng.standard_normal((int(n), self.dim)) * self.scales[k]
        return self.means[k] + np.einsum("nj,nij->ni", z, self.rots[k])

    def log_prob(self, x) -> np.ndarray:
        """Exact log-density of the rows of x (float64, numpy)."""
        x = np.asarray(x, np.float64)
        u = np.einsum("nd,kdj->knj", x, self.rots) - np.einsum("kd,kdj->kj", self.means, self.rots)[:, None, :]
        u = u / self.scales[:, None, :]
        comp = (-0.5 * np.sum(u * u, axis=-1) - np.sum(np.log(self.scales), axis=-1)[:, None]
                - 0.5 * self.dim * math.log(2 * math.pi) - math.log(len(self.means)))
        m = comp.max(axis=0)
        return m + np.log(np.sum(np.exp(comp - m), axis=0))


@lru_cache(maxsize=16)
def mixture_nd(dim: int, seed: int = 0, k: int = 4) -> MixtureND:
    rng = np.random.default_rng(1_000_003 * int(seed) + int(dim))
    dirs = rng.standard_normal((k, dim))
    means = 4.0 * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    q, r = np.linalg.qr(rng.standard_normal((k, dim, dim)))
    rots = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    scales = np.exp(rng.uniform(np.log(0.3), np.log(1.5), size=(k, dim)))
    return MixtureND(means, rots, scales)


def make_data(settings: CompareSettings) -> tuple[np.ndarray, float]:
    """(N, D) float64 data points of the experiment and the true density's NLL on them, -mean log p(x)."""
    if settings.density == DENSITY_ND:
        d = mixture_nd(settings.dim, settings.seed)
        x = d.sample(settings.n_points, seed=settings.seed)
        return x, float(-np.mean(d.log_prob(x)))
    d = REGISTRY[settings.density]
    x = d.sample(settings.n_points, seed=settings.seed)
    lp = np.asarray(d.log_prob(x.astype(np.float32)), np.float64)
    return x, float(-np.mean(lp))


def _float_dtype():
    """float64 inside ``jax.enable_x64`` (correctness tests), else float32; never flips the global config."""
    return jnp.asarray(0.0).dtype


def initial_params(settings: CompareSettings, n: int | None = None) -> dict:
    """The n_inits initial weights, stacked on a leading axis: W (n, L, D, D), b (n, L, D).  Every method starts from
    exactly these; the self-normalizing flow adds R = Wᵀ (``with_inverse``)."""
    n = settings.n_inits if n is None else n
    keys = jax.random.split(jax.random.PRNGKey(settings.seed), n)
    spec, dt = settings.spec, _float_dtype()
    return jax.vmap(lambda k: init_params(spec, k, init=settings.init, dtype=dt))(keys)


def with_inverse(params: dict) -> dict:
    """Add the learned inverses R = Wᵀ (Keller App. A.3) to stacked parameters."""
    return {**params, "R": jnp.swapaxes(params["W"], -1, -2)}


# ---- jitted pieces ------------------------------------------------------------------------------------------------
def _optimizer(name: str):
    return optax.inject_hyperparams(optax.sgd if name == "gd" else optax.adam)(learning_rate=1e-3)


def _finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _where(c, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(c, u, v), a, b)


@lru_cache(maxsize=64)
def _advance_fn(method: str, spec: FlowSpec, optimizer: str, steps: int):
    """jit of ``advance(params, opt_state, alive, data, lr, lam) -> (params, opt_state, alive)``: ``steps`` full-batch
    optimiser steps (lax.scan), vmapped over the leading (init) axis of params/opt_state/alive/lam.  A step whose
    gradient, update or data loss is not finite is dropped and marks that init dead (frozen from then on)."""
    grad_fn = G.make_grad_fn(method, spec)
    opt = _optimizer(optimizer)

    def one(params, opt_state, alive, data, lr, lam):
        def step(carry, _):
            p, o, ok = carry
            grads, m = grad_fn(p, data, {"lam": lam})
            lr_ = jnp.asarray(lr, o.hyperparams["learning_rate"].dtype)
            o2 = o._replace(hyperparams={**o.hyperparams, "learning_rate": lr_})
            upd, o_new = opt.update(grads, o2, p)
            p_new = optax.apply_updates(p, upd)
            good = ok & _finite(grads) & _finite(p_new) & jnp.isfinite(m["data_loss"])
            return (_where(good, p_new, p), _where(good, o_new, o), good), None

        (p, o, ok), _ = jax.lax.scan(step, (params, opt_state, alive), None, length=steps)
        return p, o, ok

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, None, 0)))


def _angle(a, c):
    """Angle in degrees between two flat vectors, accurate near 0 (2·atan2(|â−ĉ|, |â+ĉ|) instead of arccos)."""
    a = a / (jnp.linalg.norm(a) + 1e-30)
    c = c / (jnp.linalg.norm(c) + 1e-30)
    return jnp.degrees(2.0 * jnp.arctan2(jnp.linalg.norm(a - c), jnp.linalg.norm(a + c)))


def snf_angle(spec: FlowSpec, params: dict, data, lam) -> jax.Array:
    """Keller et al. Fig. 3: the angle (degrees) between the self-normalizing gradient of layer k (W_k, b_k) and the
    exact gradient of the same objective (exact NLL + λ·reconstruction), averaged over layers.  The reconstruction
    term is common to both; they differ only in Rᵀ standing in for W⁻ᵀ, so the angle is 0 when R = W⁻¹."""
    fn = G.make_grad_fn("self_normalizing", spec)
    g_full, _ = fn(params, data, {"lam": lam})
    g_lik, _ = fn(params, data, {"lam": jnp.zeros_like(lam)})
    g_ex = G.exact_grads(spec, params, data)
    ex_W = g_ex["W"] + (g_full["W"] - g_lik["W"])  # add the (shared) reconstruction gradient
    per_layer = jax.vmap(lambda w1, b1, w2, b2: _angle(jnp.concatenate([w1.ravel(), b1]),
                                                       jnp.concatenate([w2.ravel(), b2])))(
        g_full["W"], g_full["b"], ex_W, g_ex["b"])
    return jnp.mean(per_layer)


@lru_cache(maxsize=64)
def _eval_fn(method: str, spec: FlowSpec):
    """jit of ``evaluate(params, data, lam) -> metrics`` per init (vmapped): exact NLL (slogdet) of the standardised
    data; for the self-normalizing flow also the angle to the exact gradient, mean_k ‖R_k W_k − I‖_F and the
    reconstruction loss Σ_k mean_b ‖R_k W_k h − h‖²."""

    def one(params, data, lam):
        out = {"loss": G.exact_nll(spec, params, data)}
        if method == "self_normalizing":
            eye = jnp.eye(spec.dim, dtype=params["W"].dtype)
            rw = jnp.einsum("lij,ljk->lik", params["R"], params["W"]) - eye
            out["inv_err"] = jnp.mean(jnp.sqrt(jnp.sum(rw * rw, axis=(-1, -2))))
            _, m = G.make_grad_fn("self_normalizing", spec)(params, data, {"lam": lam})
            out["recon"] = m["recon"]
            out["angle"] = snf_angle(spec, params, data, lam)
        return out

    return jax.jit(jax.vmap(one, in_axes=(0, None, 0)))


_COMPILED: dict = {}


def _compiled(fn, key, *args):
    """Ahead-of-time compiled ``fn`` for these argument shapes (so compile time never enters a timing)."""
    sig = (key, tuple((x.shape, str(x.dtype)) for x in jax.tree_util.tree_leaves(args)))
    if sig not in _COMPILED:
        if len(_COMPILED) > 128:
            _COMPILED.clear()
        _COMPILED[sig] = fn.lower(*args).compile()
    return _COMPILED[sig]


# ---- a group of flows trained side by side ------------------------------------------------------------------------
class _Group:
    """One gradient method over a batch of members (inits, or λ × inits), its history and its timing."""

    def __init__(self, method, spec, optimizer, params, lam, every, data):
        self.method, self.spec, self.optimizer, self.every = method, spec, optimizer, every
        self.params = params
        self.opt_state = jax.vmap(_optimizer(optimizer).init)(params)
        n = params["W"].shape[0]
        self.alive = jnp.ones((n,), bool)
        self.lam = jnp.asarray(lam, _float_dtype())
        self.diverged_at = np.full(n, -1, np.int64)
        self.hist: dict[str, list] = {"iteration": [], "time": []}
        self.elapsed = 0.0
        self.compile_s = 0.0
        self._data = data

    def _advance_compiled(self, lr, steps):
        t0 = time.perf_counter()
        fn = _compiled(_advance_fn(self.method, self.spec, self.optimizer, steps),
                       ("adv", self.method, self.spec, self.optimizer, steps),
                       self.params, self.opt_state, self.alive, self._data, lr, self.lam)
        self.compile_s += time.perf_counter() - t0
        return fn

    def evaluate(self, iteration: int, explode: float, shift: float):
        t0 = time.perf_counter()
        fn = _compiled(_eval_fn(self.method, self.spec), ("eval", self.method, self.spec),
                       self.params, self._data, self.lam)
        self.compile_s += time.perf_counter() - t0
        m = {k: np.asarray(v, np.float64) for k, v in fn(self.params, self._data, self.lam).items()}
        loss = m["loss"] + shift
        alive = np.asarray(self.alive) & np.isfinite(loss) & (loss < explode)
        newly = (self.diverged_at < 0) & ~alive
        self.diverged_at[newly] = iteration
        if newly.any():
            self.alive = jnp.asarray(alive)
        dead = self.diverged_at >= 0
        m["loss"] = loss
        for k, v in m.items():
            self.hist.setdefault(k, []).append(np.where(dead, np.nan, v))
        self.hist["iteration"].append(iteration)
        self.hist["time"].append(self.elapsed)

    def step(self, lr, steps: int):
        """``steps`` optimiser steps of every member (timed; compilation is not)."""
        fn = self._advance_compiled(lr, steps)
        t0 = time.perf_counter()
        p, o, a = fn(self.params, self.opt_state, self.alive, self._data, lr, self.lam)
        jax.block_until_ready((p, o, a))
        self.elapsed += time.perf_counter() - t0
        self.params, self.opt_state, self.alive = p, o, a

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v, np.float64) for k, v in self.hist.items()}
        out["iteration"] = np.asarray(self.hist["iteration"], np.int64)
        out["diverged_at"] = self.diverged_at.copy()
        return out


class _Job:
    """Shared progress / cancel / chunked-run logic."""

    settings: CompareSettings

    def __init__(self, settings: CompareSettings):
        self.settings = settings
        self.x, self.true_nll = make_data(settings)
        self.norm = Norm.fit(self.x)
        dt = _float_dtype()
        self.data = jnp.asarray((self.x - np.asarray(self.norm.shift)) / np.asarray(self.norm.scale), dt)
        self.shift = float(np.sum(np.log(np.asarray(self.norm.scale, np.float64))))  # x-space NLL offset
        self.explode = 1000.0 + 100.0 * settings.dim
        self.lr = jnp.asarray(settings.lr, dt)
        self.iteration = 0
        self.cancelled = False
        self.groups: dict[str, _Group] = {}
        self.started = False  # iteration 0 evaluated (the first call compiles: deferred to start()/advance())

    @property
    def n_evals(self) -> int:
        return -(-self.settings.iterations // self.settings.every)

    @property
    def done(self) -> bool:
        return self.iteration >= self.settings.iterations

    @property
    def finished(self) -> bool:
        """Done or cancelled: nothing more will run."""
        return self.done or self.cancelled

    @property
    def progress(self) -> float:
        return min(1.0, self.iteration / self.settings.iterations)

    def cancel(self):
        self.cancelled = True

    def _evaluate_all(self):
        for g in self.groups.values():
            g.evaluate(self.iteration, self.explode, self.shift)

    def start(self):
        """Evaluate the common starting point (iteration 0); compiles the evaluation functions.  Idempotent."""
        if not self.started:
            self._evaluate_all()
            self.started = True
        return self

    def advance(self, budget_s: float | None = None, max_pieces: int | None = None) -> float:
        """Run pieces of ``eval_every`` steps (every method in turn, each timed) until the run is done, cancelled,
        ``budget_s`` seconds have passed or ``max_pieces`` pieces ran.  Returns the progress in [0, 1]."""
        t0, pieces = time.perf_counter(), 0
        every = self.settings.every
        if not self.cancelled:
            self.start()
        while not self.finished:
            if all(not bool(np.any(np.asarray(g.alive))) for g in self.groups.values()):
                self.iteration = self.settings.iterations  # everything diverged: nothing left to run
                break
            steps = min(every, self.settings.iterations - self.iteration)  # a shorter last piece if needed
            for g in self.groups.values():
                g.step(self.lr, steps)
            self.iteration += steps
            self._evaluate_all()
            pieces += 1
            if budget_s is not None and time.perf_counter() - t0 >= budget_s:
                break
            if max_pieces is not None and pieces >= max_pieces:
                break
        return self.progress

    def run(self, callback=None):
        """Run to the end (headless); ``callback(job)`` after every ~0.5 s."""
        while not self.finished:
            self.advance(budget_s=0.5)
            if callback:
                callback(self)
        return self

    @property
    def status(self) -> str:
        s = self.settings
        if self.cancelled and not self.done:
            return f"Stopped at iteration {self.iteration:,} of {s.iterations:,}."
        if self.done:
            return f"Finished {s.iterations:,} iterations."
        return f"Iteration {self.iteration:,} of {s.iterations:,}."


class ConvergenceRun(_Job):
    """Every chosen method trained from the same ``n_inits`` initial weights on the same full batch."""

    def __init__(self, settings: CompareSettings):
        super().__init__(settings)
        self.init = initial_params(settings)
        lam = np.full(settings.n_inits, settings.lam)
        for m in settings.methods:
            p = with_inverse(self.init) if m == "self_normalizing" else dict(self.init)
            self.groups[m] = _Group(m, settings.spec, settings.optimizer, p, lam, settings.every, self.data)

    def initial_params(self, method: str) -> dict:
        """The parameters ``method`` started from (numpy copies of the shared inits)."""
        p = with_inverse(self.init) if method == "self_normalizing" else self.init
        return {k: np.asarray(v) for k, v in p.items()}

    def curves(self) -> dict:
        """(Starts the run if needed.)  Everything a figure needs, as numpy: per method iteration (E,), time (E,), loss (E, n), SNF extras,
        diverged_at (n,) (-1 = never), compile time; plus the settings and the true density's NLL."""
        self.start()
        return {
            "kind": "convergence",
            "settings": self.settings.as_dict(),
            "true_nll": self.true_nll,
            "status": self.status,
            "methods": {m: {**g.arrays(), "compile_s": g.compile_s} for m, g in self.groups.items()},
        }

    def to_csv(self) -> str:
        return curves_to_csv(self.curves())


class LambdaSweep(_Job):
    """Self-normalizing flows for each λ in ``lams`` × the ``n_inits`` shared inits, trained side by side."""

    def __init__(self, settings: CompareSettings, lams=DEFAULT_LAMBDAS):
        lams = tuple(float(v) for v in lams)
        if not lams:
            raise ValueError("Give at least one value of λ for the sweep.")
        for v in lams:
            if not (math.isfinite(v) and LIMITS["lam"][0] <= v <= LIMITS["lam"][1]):
                raise ValueError(f"Each λ must be a number between 0 and {LIMITS['lam'][1]:g}, got {v!r}.")
        super().__init__(settings)
        self.lams = tuple(sorted(set(lams)))
        n, k = settings.n_inits, len(self.lams)
        self.init = initial_params(settings)
        tiled = jax.tree_util.tree_map(lambda a: jnp.tile(a, (k,) + (1,) * (a.ndim - 1)), with_inverse(self.init))
        lam = np.repeat(np.asarray(self.lams), n)
        self.groups["self_normalizing"] = _Group("self_normalizing", settings.spec, settings.optimizer, tiled, lam,
                                                 settings.every, self.data)

    def curves(self) -> dict:
        """Per λ: iteration (E,), loss/angle/inv_err (E, n_inits), diverged_at (n_inits,), final NLL of the
        survivors."""
        self.start()
        a = self.groups["self_normalizing"].arrays()
        n = self.settings.n_inits
        per = {}
        for i, lam in enumerate(self.lams):
            sl = slice(i * n, (i + 1) * n)
            d = {key: v[:, sl] for key, v in a.items() if key not in ("iteration", "time", "diverged_at")}
            d["iteration"], d["time"] = a["iteration"], a["time"]
            d["diverged_at"] = a["diverged_at"][sl]
            per[lam] = d
        return {"kind": "lambda_sweep", "settings": self.settings.as_dict(), "true_nll": self.true_nll,
                "status": self.status, "lams": list(self.lams), "per_lambda": per}

    def summary(self) -> list[dict]:
        """One row per λ: final NLL mean/std over the inits that did not diverge, how many diverged (NaN/Inf or
        exploded; and when first), how many ended above their starting loss (unstable without a NaN), final
        ‖RW − I‖."""
        return sweep_summary(self.curves())

    def to_csv(self) -> str:
        return curves_to_csv(self.curves())


def sweep_summary(curves: dict) -> list[dict]:
    """Rows of ``LambdaSweep.summary`` from its curves dict."""
    rows = []
    for lam, d in curves["per_lambda"].items():
        final = d["loss"][-1]
        ok = np.isfinite(final)
        div = d["diverged_at"][d["diverged_at"] >= 0]
        inv = d["inv_err"][-1]
        worse = int(np.sum(ok & (final > d["loss"][0])))
        rows.append({"lambda": lam, "final_nll_mean": float(np.mean(final[ok])) if ok.any() else float("nan"),
                     "final_nll_std": float(np.std(final[ok])) if ok.any() else float("nan"),
                     "diverged": int(len(div)), "ended_above_start": worse, "n": int(len(final)),
                     "first_divergence": int(div.min()) if len(div) else None,
                     "final_inv_err": float(np.nanmean(inv)) if ok.any() else float("nan")})
    return rows


# ---- summaries and CSV ----------------------------------------------------------------------------------------------
def band(values: np.ndarray, kind: str = "std") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, low, high) over the inits (axis 1), ignoring diverged (NaN) ones.  ``std``: mean ± 1 std;
    ``minmax``: mean and min–max."""
    v = np.asarray(values, np.float64)
    with np.errstate(all="ignore"), _quiet():
        mean = np.nanmean(v, axis=1)
        if kind == "minmax":
            return mean, np.nanmin(v, axis=1), np.nanmax(v, axis=1)
        sd = np.nanstd(v, axis=1)
    return mean, mean - sd, mean + sd


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings (every init diverged at that point)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def iterations_to_reach(iteration: np.ndarray, loss: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per init (column): the first iteration whose loss is ≤ ``level`` (per init), NaN if never reached."""
    loss = np.asarray(loss, np.float64)
    hit = loss <= np.asarray(level)[None, :]
    first = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), np.asarray(iteration)[first], np.nan).astype(np.float64)


def summary_rows(curves: dict) -> list[dict]:
    """One row per method of a convergence run: final loss mean ± std (survivors), diverged count, seconds per
    iteration (all inits together, compile excluded), compile time."""
    rows = []
    for m, d in curves["methods"].items():
        final = d["loss"][-1]
        ok = np.isfinite(final)
        it = int(d["iteration"][-1]) if len(d["iteration"]) else 0
        row = {"method": m, "label": METHOD_NAMES[m], "iterations": it,
               "final_loss_mean": float(np.mean(final[ok])) if ok.any() else float("nan"),
               "final_loss_std": float(np.std(final[ok])) if ok.any() else float("nan"),
               "diverged": int(np.sum(d["diverged_at"] >= 0)), "n": int(len(final)),
               "seconds_per_iteration": float(d["time"][-1] / it) if it else float("nan"),
               "compile_s": float(d.get("compile_s", float("nan")))}
        if "angle" in d:
            row["final_angle_deg"] = float(np.nanmean(d["angle"][-1])) if ok.any() else float("nan")
            row["max_angle_deg"] = float(np.nanmax(d["angle"])) if np.isfinite(d["angle"]).any() else float("nan")
            row["final_inv_err"] = float(np.nanmean(d["inv_err"][-1])) if ok.any() else float("nan")
        rows.append(row)
    return rows


CSV_COLUMNS = ("experiment", "method", "lambda", "init", "iteration", "time_s", "loss_nats", "angle_deg",
               "inv_err", "recon", "diverged_at")


def curves_to_csv(curves: dict) -> str:
    """Long-format CSV: one row per (method or λ, init, evaluated iteration); NaN after an init diverged.  A
    comment header records the settings."""
    buf = io.StringIO()
    buf.write(f"# FlowLab {curves['kind']}: {json.dumps(curves['settings'], sort_keys=True)}\n")
    buf.write(f"# true density NLL on these points: {curves['true_nll']:.6f} nats; {curves['status']}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    if curves["kind"] == "convergence":
        items = [(m, curves["settings"]["lam"] if m == "self_normalizing" else "", d)
                 for m, d in curves["methods"].items()]
    else:
        items = [("self_normalizing", lam, d) for lam, d in curves["per_lambda"].items()]
    fmt = lambda v: "nan" if not np.isfinite(v) else f"{v:.7g}"  # noqa: E731
    for method, lam, d in items:
        n = d["loss"].shape[1]
        for j in range(n):
            for e, it in enumerate(d["iteration"]):
                w.writerow([curves["kind"], method, lam, j, int(it), f"{d['time'][e]:.6f}", fmt(d["loss"][e, j]),
                            fmt(d["angle"][e, j]) if "angle" in d else "",
                            fmt(d["inv_err"][e, j]) if "inv_err" in d else "",
                            fmt(d["recon"][e, j]) if "recon" in d else "", int(d["diverged_at"][j])])
    return buf.getvalue()


# ---- query parameters (the page binds a few settings to the URL) ------------------------------------------------------
QUERY_KEYS = {"density": "density", "dim": "dim", "layers": "layers", "opt": "optimizer", "lr": "lr",
              "inits": "n_inits", "iters": "iterations", "points": "n_points", "lam": "lam", "seed": "seed"}


def settings_from_query(query: dict) -> tuple[dict, list[str]]:
    """Settings (as a dict of CompareSettings fields) from URL query values; each invalid value falls back to the
    default with a note naming the value."""
    base = asdict(CompareSettings())
    out, notes = dict(base), []
    for qk, field_name in QUERY_KEYS.items():
        if qk not in query:
            continue
        raw = query[qk]
        val = raw
        if field_name in ("dim", "layers", "n_inits", "iterations", "n_points", "seed"):
            try:
                val = int(str(raw))
            except ValueError:
                notes.append(f"URL parameter {qk}={raw!r} is not a whole number; using {base[field_name]}.")
                continue
        elif field_name in ("lr", "lam"):
            try:
                val = float(str(raw))
            except ValueError:
                notes.append(f"URL parameter {qk}={raw!r} is not a number; using {base[field_name]:g}.")
                continue
        try:
            CompareSettings(**{**base, field_name: val, **({"density": DENSITY_ND} if field_name == "dim" else {})})
        except ValueError as e:
            notes.append(f"URL parameter {qk}={raw!r} ignored: {e}")
            continue
        out[field_name] = val
    if out["density"] != DENSITY_ND and out["dim"] != 2:
        notes.append(f"URL parameter dim={out['dim']} ignored: the toy density {out['density']!r} is 2-D.")
        out["dim"] = 2
    return out, notes


def settings_to_query(settings: CompareSettings) -> dict:
    d = asdict(settings)
    return {qk: (f"{d[f]:g}" if isinstance(d[f], float) else str(d[f])) for qk, f in QUERY_KEYS.items()}


# ---- headless figure ------------------------------------------------------------------------------------------------
def write_png(fig, path: str, width: int = 1200, height: int | None = None) -> str:
    """Render a plotly figure to PNG: kaleido if installed, else headless Chromium through Playwright."""
    height = int(height or fig.layout.height or 800)
    try:
        import kaleido  # noqa: F401

        fig.write_image(path, width=width, height=height)
        return path
    except ImportError:
        pass
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("PNG export needs kaleido or playwright; write HTML instead.") from None
    html = fig.to_html(include_plotlyjs=True, full_html=True, config={"staticPlot": True})
    exe = os.environ.get("FLOWLAB_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        kw = {"args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]}
        if os.path.exists(exe):
            kw["executable_path"] = exe
        browser = p.chromium.launch(**kw)
        try:
            page = browser.new_page(viewport={"width": width, "height": height + 20})
            page.set_content(html, wait_until="load")
            page.wait_for_selector(".main-svg", timeout=30_000)
            page.locator(".plotly-graph-div").first.screenshot(path=path)
        finally:
            browser.close()
    return path


def _parse_methods(s: str) -> tuple:
    alias = {"ordinary": "inverse", "snf": "self_normalizing", "self-normalizing": "self_normalizing",
             "autodiff": "exact"}
    return tuple(alias.get(m.strip(), m.strip()) for m in s.split(",") if m.strip())


def _parse_floats(s: str) -> tuple:
    try:
        return tuple(float(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"λ values must be a comma-separated list of numbers, got {s!r}.") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flowlab figure",
        description="Convergence figures of the Compare page, headless: ordinary vs relative vs self-normalizing "
                    "gradients from the same initial weights (Gresele et al. 2020 Fig. 1 right; Keller et al. 2021 "
                    "Fig. 3), or the self-normalizing λ sweep.  Writes OUT.html, OUT.csv and, with --png, OUT.png.")
    p.add_argument("kind", choices=["convergence", "lambda"], help="which figure")
    d = CompareSettings()
    p.add_argument("--density", default=d.density, help=f"toy density or {DENSITY_ND} (default {d.density})")
    p.add_argument("--dim", type=int, default=d.dim, help="dimension D (only for the Gaussian mixture)")
    p.add_argument("--layers", type=int, default=d.layers)
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--inits", type=int, default=d.n_inits, help="number of shared initial weights")
    p.add_argument("--iters", type=int, default=d.iterations)
    p.add_argument("--points", type=int, default=d.n_points, help="data points (full batch)")
    p.add_argument("--methods", default=",".join(d.methods),
                   help="comma list of inverse (ordinary), relative, self_normalizing, exact")
    p.add_argument("--lam", type=float, default=d.lam, help="SNF reconstruction weight λ")
    p.add_argument("--lams", default=",".join(f"{v:g}" for v in DEFAULT_LAMBDAS), help="λ values for the sweep")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--init", default=d.init, choices=INIT_CHOICES)
    p.add_argument("--eval-every", type=int, default=0, help="steps between loss evaluations (0 = automatic)")
    p.add_argument("--band", default="std", choices=["std", "minmax"], help="spread over the inits")
    p.add_argument("--out", default="runs/convergence", help="output path without extension")
    p.add_argument("--png", action="store_true", help="also write a PNG (kaleido or headless Chromium)")
    p.add_argument("--quiet", action="store_true")
    return p


def cli_main(argv=None) -> int:
    from .plots.compare import convergence_figure, lambda_figure

    args = build_parser().parse_args(argv)
    try:
        settings = CompareSettings(density=args.density, dim=args.dim, layers=args.layers, optimizer=args.optimizer,
                                   lr=args.lr, n_inits=args.inits, iterations=args.iters, n_points=args.points,
                                   methods=_parse_methods(args.methods), lam=args.lam, seed=args.seed,
                                   init=args.init, eval_every=args.eval_every)
        job = ConvergenceRun(settings) if args.kind == "convergence" else LambdaSweep(settings,
                                                                                   _parse_floats(args.lams))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def report(j):
        if not args.quiet:
            print(f"\r{j.status} ({100 * j.progress:.0f} %)", end="", file=sys.stderr, flush=True)

    job.run(report)
    if not args.quiet:
        print(file=sys.stderr)
    curves = job.curves()
    fig = convergence_figure(curves, band_kind=args.band) if args.kind == "convergence" else lambda_figure(curves)
    out = args.out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    written = [out + ".html", out + ".csv"]
    fig.write_html(out + ".html", include_plotlyjs="cdn")
    with open(out + ".csv", "w") as f:
        f.write(job.to_csv())
    if args.png:
        try:
            written.append(write_png(fig, out + ".png"))
        except Exception as e:  # a missing browser must not lose the HTML/CSV already written
            print(f"warning: PNG not written ({e})", file=sys.stderr)
    rows = summary_rows(curves) if args.kind == "convergence" else job.summary()
    for r in rows:
        print(json.dumps(r))
    print("wrote " + ", ".join(written))
    return 0


__all__ = ["CompareSettings", "ConvergenceRun", "LambdaSweep", "MixtureND", "mixture_nd", "make_data",
           "initial_params", "with_inverse", "snf_angle", "band", "iterations_to_reach", "summary_rows",
           "curves_to_csv", "settings_from_query", "settings_to_query", "cli_main", "replace", "fields", "field"]
