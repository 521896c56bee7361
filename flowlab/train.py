"""Training in jitted chunks: K optimiser steps under ``lax.scan`` per call, per-step metrics, divergence guard.

* ``TrainConfig`` holds the structural settings (method, batch size, chunk length, optimiser, ...): one compiled
  chunk per (FlowSpec, TrainConfig, data shape), cached.  Learning rate, λ, clipping and schedule are array
  hyper-parameters (``make_hyper``), so moving a slider never recompiles.
* The chunk samples minibatches from a data pool, applies warm-up + cosine decay, clips the global gradient norm and
  feeds the (exact / inverse / relative / self-normalizing) direction to one optax optimiser.
* Divergence guard: a step whose loss or gradient is NaN/Inf, or whose loss exceeds ``explode``, is not applied; the
  parameters roll back to the last step whose loss was finite, the rest of the chunk is frozen, and the chunk reports
  the failing step.  ``Trainer`` stops (or, if asked, halves the learning rate) and says so — never silently.
* End-of-chunk evaluation: exact test NLL (slogdet, once per chunk) and, when the true log-density of the test
  points is known, KL(p||q) = mean_test[log p(x) - log q(x)] (= test NLL - H(p) on those samples).
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import gradients as G
from . import presets
from .activations import make_activation
from .densities import get_density
from .flow import TRAINER_INITS, FlowSpec, Norm, data_init, init_params, log_prob, logdet_weights
from .metrics import all_finite, angle_degrees, flat, global_norm, inverse_error, tree_where

OPTIMIZERS = ("adam", "sgd")
# Self-normalizing flows: mean_k ||R_k W_k - I||_F above this means the learned inverses no longer track W (healthy
# runs stay near 1e-3 to 1e-2; runs that went bad passed 0.37 on their way to 30: assets/benchmarks/RESULTS.md).
INVERSE_DRIFT_WARN = 0.25
_clock = time.perf_counter  # training time is measured with this (a test can substitute a fake clock)


@dataclass(frozen=True)
class TrainConfig:
    """Structural training settings (changing one compiles a new chunk)."""

    method: str
    batch: int
    chunk: int
    optimizer: str = "adam"
    track_angle: bool = False  # SNF/relative: angle to the exact gradient each step (costs an exact gradient)

    def __post_init__(self):
        object.__setattr__(self, "method", G.check_method(self.method, G.TRAIN_METHODS))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimiser {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}.")
        if int(self.batch) < 1:
            raise ValueError(f"Batch size must be a positive integer, got {self.batch}.")
        if int(self.chunk) < 1:
            raise ValueError(f"Chunk length must be a positive integer, got {self.chunk}.")


ADAM_B2 = presets.ADAM_B2
_D = presets.DEFAULT


def make_hyper(lr=_D.lr, lam=_D.lam, clip=_D.clip, warmup=_D.warmup, decay=_D.decay, final_lr_frac=0.05,
               explode=None, dim=2, b2=_D.b2):
    """Array hyper-parameters of a chunk (changing them does not recompile); defaults from ``presets.DEFAULT``.

    lr: peak learning rate; warmup: linear warm-up steps; decay: cosine decay from the end of warm-up to
    ``final_lr_frac * lr`` at step ``decay`` (0 = constant); clip: max global gradient norm (inf = off);
    lam: SNF reconstruction weight; explode: a loss above this counts as divergence (default 1000 + 100 D nats);
    b2: Adam's second-moment decay v ← b2·v + (1 − b2)·g² (memory ~1/(1 − b2) steps; ignored by SGD).
    """
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Learning rate must be a positive number, got {lr}.")
    if not (0 < b2 < 1):
        raise ValueError(f"Adam's β₂ must lie strictly between 0 and 1, got {b2}.")
    if not (clip > 0):
        raise ValueError(f"Gradient clipping threshold must be positive (use inf to disable), got {clip}.")
    if lam < 0:
        raise ValueError(f"Reconstruction weight λ must be non-negative, got {lam}.")
    explode = 1000.0 + 100.0 * dim if explode is None else explode
    vals = dict(lr=lr, lam=lam, clip=clip, warmup=warmup, decay=decay, final_lr_frac=final_lr_frac,
                explode=explode, b2=b2)
    return {k: jnp.asarray(v, jnp.float32) for k, v in vals.items()}


def lr_at(hyper, step):
    """Learning rate at optimiser step ``step``: linear warm-up, then cosine decay (if decay > 0)."""
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.where(hyper["warmup"] > 0, jnp.minimum(1.0, (step + 1.0) / jnp.maximum(hyper["warmup"], 1.0)), 1.0)
    span = jnp.maximum(hyper["decay"] - hyper["warmup"], 1.0)
    prog = jnp.clip((step - hyper["warmup"]) / span, 0.0, 1.0)
    cos = hyper["final_lr_frac"] + (1 - hyper["final_lr_frac"]) * 0.5 * (1 + jnp.cos(math.pi * prog))
    return hyper["lr"] * warm * jnp.where(hyper["decay"] > 0, cos, 1.0)


def _optimizer(name):
    if name == "adam":  # learning rate and b2 are set from ``hyper`` at every step
        return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, b2=ADAM_B2)
    return optax.inject_hyperparams(optax.sgd)(learning_rate=1e-3)


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # optimiser steps applied so far
    key: jax.Array


DATA_INIT_POINTS = 4096


def init_state(spec: FlowSpec, cfg: TrainConfig, seed: int = 0, init: str | None = None, noise: float = 0.01,
               params: dict | None = None, data=None) -> TrainState:
    """Fresh state.  Same seed -> same initial weights.  ``init``: ``orthogonal`` (the default here) W with
    |det W| = 1, b = 0, and for SNF R = W^T, which is then exactly W^{-1}; ``data`` the same
    rotations rescaled by ``flow.data_init`` on the first ``DATA_INIT_POINTS`` rows of ``data`` (standardised
    training points) so that every pre-activation starts with mean 0 and variance 1; ``identity_noise`` Keller
    App. A.3's W = I + noise.  Methods with learned inverses (``Method.learned_inverse``) get R = W⁻¹."""
    key = jax.random.PRNGKey(int(seed))
    k_init, k_train = jax.random.split(key)
    if params is None:
        init = init or "orthogonal"
        if init not in TRAINER_INITS:
            raise ValueError(f"Unknown initialisation {init!r}; choose one of {', '.join(TRAINER_INITS)}.")
        with_R = G.REGISTRY[cfg.method].learned_inverse
        if init == "data":
            if data is None:
                raise ValueError("The data-dependent initialisation needs the (standardised) training data.")
            params = init_params(spec, k_init, init="orthogonal", with_R=with_R)
            params = data_init(spec, params, data[:DATA_INIT_POINTS])
        else:
            params = init_params(spec, k_init, init=init, noise=noise, with_R=with_R)
    opt = _optimizer(cfg.optimizer)
    return TrainState(params, opt.init(params), jnp.zeros((), jnp.int32), k_train)


@lru_cache(maxsize=64)
def make_chunk(spec: FlowSpec, cfg: TrainConfig):
    """Jitted ``chunk(state, prev, data, test_x, test_logp, norm, hyper) -> (state, prev, step_metrics, evals,
    status)``; ``prev`` is the state one step before ``state`` (the rollback target), carried across chunks.

    ``data`` (N, D) and ``test_x`` are standardised; ``test_logp`` is log p(x) of the raw test points (NaN where
    unknown).  ``norm`` only enters the reported x-space NLL (its log-det is a constant)."""
    grad_fn = G.make_grad_fn(cfg.method, spec)
    opt = _optimizer(cfg.optimizer)
    B, K = int(cfg.batch), int(cfg.chunk)
    angle = cfg.track_angle and cfg.method != "exact"

    def chunk(state, prev, data, test_x, test_logp, norm, hyper):
        shift_nll = -norm.logdet()  # x-space NLL = standardised NLL + sum(log scale)

        def one_step(carry, _):
            state, prev, ok, bad_step, loss_bad = carry
            key, k_batch = jax.random.split(state.key)
            batch = data[jax.random.randint(k_batch, (B,), 0, data.shape[0])]
            grads, m = grad_fn(state.params, batch, hyper)
            loss = m["data_loss"] - jnp.sum(logdet_weights(state.params))
            gnorm = global_norm({k: grads[k] for k in ("W", "b")})
            scale = jnp.minimum(1.0, hyper["clip"] / (gnorm + 1e-12))
            grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
            lr = lr_at(hyper, state.step)
            hp = {**state.opt_state.hyperparams, "learning_rate": lr}
            if "b2" in hp:
                hp["b2"] = hyper["b2"]
            opt_state = state.opt_state._replace(hyperparams=hp)
            updates, new_opt = opt.update(grads, opt_state, state.params)
            new_params = optax.apply_updates(state.params, updates)
            loss_ok = jnp.isfinite(loss) & (loss < hyper["explode"])
            good = ok & loss_ok & all_finite(grads) & all_finite(new_params)
            newly_bad = ok & ~good
            # A bad loss means the current parameters are bad: go back one step.  A bad gradient/update on a
            # finite loss: keep the current parameters, drop the update.  After a failure the chunk stays frozen.
            fallback = tree_where(loss_ok, state, prev)
            nxt = tree_where(good, TrainState(new_params, new_opt, state.step + 1, key),
                             tree_where(newly_bad, fallback, state))
            new_prev = tree_where(good, state, tree_where(newly_bad, fallback, prev))
            bad_step = jnp.where(newly_bad, state.step, bad_step)
            loss_bad = jnp.where(newly_bad, ~loss_ok, loss_bad)
            metrics = {"loss": loss + shift_nll, "grad_norm": gnorm, "lr": lr}
            if cfg.method == "self_normalizing":
                metrics["recon"] = m["recon"]
            if angle:
                metrics["angle"] = angle_degrees(flat(grads), flat(G.exact_grads(spec, state.params, batch)))
            return (nxt, new_prev, ok & good, bad_step, loss_bad), metrics

        carry0 = (state, prev, jnp.asarray(True), jnp.asarray(-1, jnp.int32), jnp.asarray(False))
        (state_out, prev_out, ok, bad_step, loss_bad), metrics = jax.lax.scan(one_step, carry0, None, length=K)
        lq = log_prob(spec, state_out.params, test_x) + norm.logdet()
        test_nll = -jnp.mean(lq)
        kl = jnp.mean(test_logp - lq)
        evals = {"test_nll": test_nll, "kl": kl}
        if cfg.method == "self_normalizing":  # mean_k ||R_k W_k - I||_F: an O(L D^3) product, so once per chunk
            evals["inv_err"] = inverse_error(state_out.params["R"], state_out.params["W"])
        status = {"ok": ok, "bad_step": bad_step, "loss_bad": loss_bad}
        return state_out, prev_out, metrics, evals, status

    return jax.jit(chunk)


class Checkpoint(NamedTuple):
    """Weights at the end of one chunk, kept while their held-out NLL is the lowest seen (``Trainer.best``)."""

    step: int
    params: dict
    row: dict  # every evaluation of that chunk end but step and time (test_nll, kl, inv_err, ...)

    @property
    def test_nll(self) -> float:
        return self.row["test_nll"]

    @property
    def kl(self) -> float:  # NaN without a true density
        return self.row["kl"]


@dataclass
class Divergence:
    step: int
    lr: float
    message: str


@dataclass
class Trainer:
    """Host-side training session: data, state, history, divergence handling.  Pure Python, no UI.

    ``x_train`` / ``x_test`` are raw points; ``test_logp`` their true log-density (None for uploaded data)."""

    spec: FlowSpec
    cfg: TrainConfig
    x_train: np.ndarray
    x_test: np.ndarray
    test_logp: np.ndarray | None = None
    seed: int = 0
    hyper_kw: dict = field(default_factory=dict)
    standardize: bool = True
    init: str | None = None  # see init_state: None / "orthogonal", "identity_noise", "data"
    on_divergence: str = "stop"  # "stop" | "halve_lr"

    def __post_init__(self):
        for name, arr in (("training data", self.x_train), ("test data", self.x_test)):
            arr = np.asarray(arr)
            if arr.ndim != 2 or arr.shape[1] != self.spec.dim:
                raise ValueError(f"The {name} must be an (N, {self.spec.dim}) array, got shape {arr.shape}.")
            if arr.shape[0] == 0:
                raise ValueError(f"The {name} is empty.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"The {name} contains NaN or infinite values; remove those rows first.")
        self.norm = Norm.fit(self.x_train) if self.standardize else Norm.identity(self.spec.dim)
        self._data = self.norm.apply(jnp.asarray(self.x_train, jnp.float32))
        self._test = self.norm.apply(jnp.asarray(self.x_test, jnp.float32))
        tl = np.full(len(self.x_test), np.nan) if self.test_logp is None else np.asarray(self.test_logp)
        self._test_logp = jnp.asarray(tl, jnp.float32)
        self.hyper_kw = {**self.hyper_kw}
        self.hyper = make_hyper(dim=self.spec.dim, **self.hyper_kw)  # validates: bad values raise here
        self.reset()

    # ---- state ---------------------------------------------------------------------------------------------------
    def reset(self):
        """Back to the initial weights of ``seed`` (same seed -> same weights) and an empty history."""
        self.state = init_state(self.spec, self.cfg, self.seed, init=self.init, data=self._data)
        self._prev = self.state
        self.initial_params = self.state.params
        self.history: dict[str, list] = {}
        self.evals: dict[str, list] = {"step": [], "time": [], "test_nll": [], "kl": []}
        self.elapsed = 0.0
        self.divergences: list[Divergence] = []
        self.stopped = False
        self.best: Checkpoint | None = None  # lowest held-out NLL at a chunk end so far
        self.restored: Checkpoint | None = None  # set by restore_best

    def set_hyper(self, **kw):
        """Change array hyper-parameters (learning rate, λ, clipping, schedule) without resetting."""
        self.hyper = make_hyper(dim=self.spec.dim, **{**self.hyper_kw, **kw})  # raises before changing anything
        self.hyper_kw.update(kw)

    @property
    def params(self):
        return self.state.params

    @property
    def step(self) -> int:
        return int(self.state.step)

    @property
    def kept_step(self) -> int:
        """The step whose weights are in place: the restored checkpoint's, else the current step."""
        return self.restored.step if self.restored else self.step

    @property
    def last_chunk_test_nll(self) -> float:
        """Held-out NLL of the last chunk's own weights: ``restore_best`` appends a row for the checkpoint it put
        back, so after a restore that is the row before it."""
        return self.evals["test_nll"][-2 if self.restored else -1]

    @property
    def has_truth(self) -> bool:
        return self.test_logp is not None

    # ---- running -------------------------------------------------------------------------------------------------
    def run_chunk(self) -> Divergence | None:
        """One jitted chunk of ``cfg.chunk`` steps; returns a Divergence if the guard fired."""
        if self.stopped:
            return None
        fn = make_chunk(self.spec, self.cfg)
        self.restored = None  # training moves on from whatever was restored
        t0 = _clock()
        step0 = self.step
        state, prev, m, ev, status = fn(self.state, self._prev, self._data, self._test, self._test_logp, self.norm,
                                        self.hyper)
        ok = bool(status["ok"])
        self.elapsed += _clock() - t0
        self.state, self._prev = state, prev
        n_new = self.step - step0  # metric rows that belong to kept updates (negative: a rollback into the past)
        if n_new < 0:
            for v in self.history.values():
                del v[n_new:]
        else:
            for k, v in m.items():
                self.history.setdefault(k, []).extend(np.asarray(v[:n_new], np.float64).tolist())
            self.history.setdefault("step", []).extend(range(step0 + 1, step0 + 1 + n_new))
        self.evals["step"].append(self.step)
        self.evals["time"].append(self.elapsed)
        self.evals["test_nll"].append(float(ev["test_nll"]))
        self.evals["kl"].append(float(ev["kl"]) if self.has_truth else float("nan"))
        if "inv_err" in ev:
            self.evals.setdefault("inv_err", []).append(float(ev["inv_err"]))
        nll = self.evals["test_nll"][-1]
        if np.isfinite(nll) and (self.best is None or nll < self.best.test_nll):
            row = {k: v[-1] for k, v in self.evals.items() if k not in ("step", "time")}
            self.best = Checkpoint(self.step, self.state.params, row)
        if ok:
            return None
        lr = float(self.hyper["lr"])
        bad = int(status["bad_step"])
        what = ("the loss became NaN/Inf or exploded" if bool(status["loss_bad"])
                else "the gradient or the updated weights became NaN/Inf")
        msg = (f"Training diverged at step {bad + 1} ({what}) with learning rate {lr:.2g}. "
               f"The parameters were rolled back to step {self.step}, the last with a finite loss.")
        if self.on_divergence == "halve_lr":
            self.set_hyper(lr=lr / 2)
            msg += f" Continuing with the learning rate halved to {lr / 2:.2g}."
        else:
            self.stopped = True
            msg += " Lower the learning rate or the clipping threshold, then continue."
        div = Divergence(bad + 1, lr, msg)
        self.divergences.append(div)
        return div

    def inverse_drift_warning(self) -> str | None:
        """A sentence for the user when a self-normalizing flow's learned inverses have drifted from W⁻¹ (latest
        mean ‖R_k W_k − I‖_F above ``INVERSE_DRIFT_WARN``), else None.  Keller et al.'s gradient uses R_kᵀ for
        W_k⁻ᵀ (eq. 10), so it then no longer follows the likelihood, and the test NLL can climb without any NaN for
        the divergence guard to catch."""
        errs = self.evals.get("inv_err")
        if not errs or not errs[-1] > INVERSE_DRIFT_WARN:
            return None
        return (f"The learned inverses no longer match the weights: mean ‖R W − I‖ is {errs[-1]:.2g} (0 at the "
                f"start, {INVERSE_DRIFT_WARN:g} is the alarm level). The self-normalizing gradient uses R in place of "
                f"W⁻¹, so it now drifts away from the exact gradient and the test NLL can climb. Raise the "
                f"reconstruction weight λ (now {float(self.hyper['lam']):g}) or lower the learning rate.")

    def restore_best(self) -> Checkpoint | None:
        """Put back the weights with the lowest held-out NLL seen at any chunk end (``best``), if they are not the
        current ones.  The step count, schedule and optimiser moments carry on; ``evals`` gets one more row at the
        current step with the checkpoint's evaluations, so the curves and the latest test NLL describe the weights
        now in place.  Returns that checkpoint (also kept in ``restored``), or None when nothing changed.

        Why: late in training the held-out NLL still moves by a few hundredths of a nat from chunk to chunk (moons,
        relative gradient at batch 512, learning rate 5e-4: KL 0.047 -> 0.076 within 2500 steps), so the last
        chunk's weights are a draw from that spread.  The held-out set then serves as a validation set: its NLL at the
        kept step is biased low, so measure the result on fresh data (benchmarks/quality.py does)."""
        b = self.best
        if b is None or b.params is self.state.params:
            return None
        self.state = self.state._replace(params=b.params)
        self._prev = self.state
        self.restored = b
        for k, v in self.evals.items():
            v.append(self.step if k == "step" else self.elapsed if k == "time" else b.row.get(k, float("nan")))
        return b

    def resume(self):
        """Clear the stop set by the divergence guard (e.g. after lowering the learning rate)."""
        self.stopped = False

    def train(self, steps: int | None = None, budget_s: float | None = None, callback=None,
              fit_schedule: bool = False, keep_best: bool = False):
        """Run chunks until ``steps`` optimiser steps or ``budget_s`` seconds of training time (compile excluded
        from neither: the first chunk compiles).  ``callback(trainer)`` after each chunk.  ``keep_best``: end with
        ``restore_best()`` (the weights of the chunk end with the lowest held-out NLL).

        ``fit_schedule`` (time budget only): the cosine decay ends when the budget does, whatever this machine's
        speed.  After every chunk past the first (compiling) one, ``decay`` becomes the current step plus the
        steps that still fit at the rate measured since then:

            decay = step + (budget_s - elapsed) · (steps since chunk 1) / (seconds since chunk 1)

        An array hyper-parameter, so nothing recompiles; warm-up is unchanged, and a constant learning rate
        (``decay`` = 0) stays constant."""
        if steps is None and budget_s is None:
            raise ValueError("Give a number of steps or a time budget.")
        if fit_schedule and budget_s is None:
            raise ValueError("Fitting the schedule to the budget needs a time budget (budget_s).")
        mark = None  # (step, elapsed) after the first chunk of this call
        while not self.stopped:
            if steps is not None and self.step >= steps:
                break
            if budget_s is not None and self.elapsed >= budget_s:
                break
            self.run_chunk()
            if fit_schedule and float(self.hyper["decay"]) > 0:
                if mark is None:
                    mark = (self.step, self.elapsed)
                elif self.elapsed > mark[1] and self.step > mark[0]:
                    rate = (self.step - mark[0]) / (self.elapsed - mark[1])
                    self.set_hyper(decay=self.step + max(0.0, budget_s - self.elapsed) * rate)
            if callback:
                callback(self)
        if keep_best:
            self.restore_best()
        return self

    # ---- results -------------------------------------------------------------------------------------------------
    def log_prob(self, x):
        return log_prob(self.spec, self.params, jnp.asarray(x, jnp.float32), self.norm)

    def history_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.history.items()}

    def config_dict(self) -> dict:
        return {
            "dim": self.spec.dim, "layers": self.spec.layers,
            "activation": {"name": self.spec.activation.name, "alpha": self.spec.activation.alpha,
                           "beta": self.spec.activation.beta},
            "train": asdict(self.cfg), "hyper": {k: float(v) for k, v in self.hyper.items()},
            "seed": self.seed, "standardize": self.standardize, "init": self.init or "orthogonal", "steps": self.step,
            "kept_step": self.kept_step,
        }


def train_candidates(trainer: Trainer, n: int, steps: int | None = None, budget_s: float | None = None,
                     fit_schedule: bool = False, keep_best: bool = True,
                     callback=None) -> tuple[Trainer, list[Trainer]]:
    """Train ``n`` candidates side by side and return (the one with the lowest held-out NLL, all of them).

    Candidate k is ``trainer`` with seed ``trainer.seed + k``: other initial weights and minibatch order, the same
    training data and held-out split, so their held-out NLLs compare directly (each candidate's kept weights with
    ``keep_best``, else its last).  Each trains in its own thread with its own ``budget_s``; JAX runs the jitted
    chunks without holding the GIL, so with n free cores each candidate gets most of the steps it would get alone.
    Why: a result can depend on the seed, and a second core would otherwise sit idle (one training chunk runs no
    faster with two XLA threads than with one).  ``callback(trainer)`` follows candidate 0 only."""

    if int(n) < 1:
        raise ValueError(f"The number of candidates must be a positive integer, got {n}.")
    if trainer.step > 0:
        raise ValueError("Candidates start from fresh weights: pass an untrained trainer (or call reset() first).")
    cands = [trainer] + [replace(trainer, seed=trainer.seed + k) for k in range(1, int(n))]

    def run(k):
        cands[k].train(steps=steps, budget_s=budget_s, callback=callback if k == 0 else None,
                       fit_schedule=fit_schedule, keep_best=keep_best)

    with ThreadPoolExecutor(max_workers=len(cands)) as ex:
        list(ex.map(run, range(len(cands))))

    def score(t):  # the held-out NLL of the weights in place (restore_best added its row when it restored)
        last = t.evals["test_nll"][-1] if t.evals["test_nll"] else float("nan")
        return last if np.isfinite(last) else float("inf")

    return min(cands, key=score), cands


# Step time on a 2-core CPU (relative gradient) is roughly proportional to layers × (batch + 300): the chunk length
# is scaled by that work so a chunk costs about the same at any setting.  Lengths come from a short list, so only a
# few chunk lengths are ever compiled.
CHUNK_CHOICES = (5, 10, 25, 50, 100, 200)
_BATCH_OVERHEAD = 300
_REF_WORK = 20 * (256 + _BATCH_OVERHEAD)
_REF_STEPS = 500
_METHOD_COST = {"exact": 1.0, "relative": 1.0, "self_normalizing": 1.5}
HEADLESS_CHUNK_SCALE = 4.0  # headless runs (CLI, quality benchmark): 4x the Playground's work per chunk


def chunk_steps_for(layers: int, batch: int, method: str, scale: float = 1.0) -> int:
    """Steps per jitted chunk: about the work of ``scale`` × 500 steps at 20 layers × batch 256, at most 200."""
    work = max(1, int(layers)) * (max(1, int(batch)) + _BATCH_OVERHEAD) * _METHOD_COST.get(method, 1.0)
    target = scale * _REF_STEPS * _REF_WORK / work
    return max(c for c in CHUNK_CHOICES if c <= max(target, CHUNK_CHOICES[0]))


HYPER_EXTRAS = ("final_lr_frac", "explode")  # array hyper-parameters that are not user settings


def build_trainer(density: str | None = None, *, data=None, seed: int = 0, chunk: int | None = None,
                  headless: bool = False, ntest: int = 5_000, test_frac: float = 0.1, optimizer: str = "adam",
                  track_angle: bool = False, alpha=None, beta=None, **settings) -> Trainer:
    """A Trainer on a registry density (fresh train/test samples from its sampler, KL available) or on uploaded
    ``data`` (random held-out split, no KL).

    ``settings`` are training settings named as in ``presets.Preset`` (layers, method, activation, lr, batch, ntrain,
    clip, warmup, decay, lam, b2, init, standardize) plus the hyper-parameters ``final_lr_frac`` and ``explode``;
    the ones not given come from ``presets.tuned(density, method)``.  ``chunk``: steps per jitted chunk (default
    ``chunk_steps_for``, × ``HEADLESS_CHUNK_SCALE`` with ``headless``)."""
    unknown = set(settings) - set(presets.SETTING_KEYS) - set(HYPER_EXTRAS)
    if unknown:
        raise ValueError(f"Unknown training setting {sorted(unknown)[0]!r}; known: "
                         f"{', '.join(presets.SETTING_KEYS + HYPER_EXTRAS)}.")
    s = {**presets.defaults(density, settings.get("method")), **settings}
    if int(s["layers"]) < 1:
        raise ValueError(f"Number of layers must be a positive integer, got {s['layers']}.")
    if chunk is None:
        chunk = chunk_steps_for(s["layers"], s["batch"], s["method"], HEADLESS_CHUNK_SCALE if headless else 1.0)
    spec = FlowSpec(2 if data is None else int(np.asarray(data).shape[1]), int(s["layers"]),
                    make_activation(s["activation"], alpha, beta))
    cfg = TrainConfig(s["method"], int(s["batch"]), int(chunk), optimizer, track_angle)
    if data is None:
        if density is None:
            raise ValueError("Choose a density or supply data.")
        d = get_density(density)
        x_train = d.sample(int(s["ntrain"]), seed=seed)
        x_test = d.sample(ntest, seed=seed + 1_000_003)
        test_logp = np.asarray(d.log_prob(x_test.astype(np.float32)))
    else:
        data = np.asarray(data, np.float64)
        if data.ndim != 2 or data.shape[0] < 10:
            raise ValueError(f"Need at least 10 points in an (N, D) array, got shape {data.shape}.")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(data))
        n_te = max(1, int(round(test_frac * len(data))))
        x_test, x_train, test_logp = data[perm[:n_te]], data[perm[n_te:]], None
    hyper = {k: s[k] for k in ("lr", "clip", "warmup", "decay", "lam", "b2") + HYPER_EXTRAS if k in s}
    return Trainer(spec, cfg, x_train, x_test, test_logp, seed, hyper, bool(s["standardize"]), s["init"])


__all__ = ["TrainConfig", "TrainState", "Trainer", "Checkpoint", "Divergence", "train_candidates", "make_hyper",
           "make_chunk", "init_state", "build_trainer", "chunk_steps_for", "lr_at", "replace"]
