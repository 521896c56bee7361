"""Training sessions on the host: ``Trainer`` (data, state, history, evaluations, divergence handling, the best
weights so far), ``train_candidates`` (seeds side by side) and ``build_trainer`` (from a density or uploaded points
and the presets).  The jitted chunk itself is ``flowlab.chunk``; its public names are re-exported here."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from . import presets
from .activations import make_activation
from .chunk import (ADAM_B2, CHUNK_CHOICES, HEADLESS_CHUNK_SCALE, INVERSE_DRIFT_WARN, OPTIMIZERS,  # noqa: F401
                    TrainConfig, TrainState, chunk_steps_for, init_state, lr_at, make_chunk, make_hyper)
from .densities import get_density
from .flow import FlowSpec, Norm, log_prob
from .history import Series

_clock = time.perf_counter  # training time is measured with this (a test can substitute a fake clock)
HISTORY_CAP = 8192  # per-step rows kept (evenly thinned beyond): memory stays flat over hours of training
EVALS_CAP = 2048  # chunk-end evaluations kept
MAX_LR_HALVINGS = 6  # divergences answered by halving the learning rate (1/64 of it) before a run stops


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
    on_divergence: str = "stop"  # "stop" | "halve_lr" (at most MAX_LR_HALVINGS times, then stop)

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
        self.history = Series(HISTORY_CAP)  # per optimiser step: step, loss, grad_norm, lr (recon, angle)
        self.lr_halvings = 0
        self.evals = Series(EVALS_CAP, ("step", "time", "test_nll", "kl"))  # per chunk end (and inv_err for SNF)
        self._last_chunk_nll = float("nan")
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
        return self._last_chunk_nll

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
            self.history.truncate_after(self.step)
        else:
            self.history.extend({"step": np.arange(step0 + 1, step0 + 1 + n_new),
                                 **{k: np.asarray(v[:n_new]) for k, v in m.items()}})
        row = {"step": self.step, "time": self.elapsed, "test_nll": float(ev["test_nll"]),
               "kl": float(ev["kl"]) if self.has_truth else float("nan"),
               **({"inv_err": float(ev["inv_err"])} if "inv_err" in ev else {})}
        self.evals.append(row)
        nll = self._last_chunk_nll = row["test_nll"]
        if np.isfinite(nll) and (self.best is None or nll < self.best.test_nll):
            self.best = Checkpoint(self.step, self.state.params,
                                   {k: v for k, v in row.items() if k not in ("step", "time")})
        if ok:
            return None
        lr = float(self.hyper["lr"])
        bad = int(status["bad_step"])
        what = ("the loss became NaN/Inf or exploded" if bool(status["loss_bad"])
                else "the gradient or the updated weights became NaN/Inf")
        msg = (f"Training diverged at step {bad + 1} ({what}) with learning rate {lr:.2g}. "
               f"The parameters were rolled back to step {self.step}, the last with a finite loss.")
        if self.on_divergence == "halve_lr" and self.lr_halvings < MAX_LR_HALVINGS:
            self.lr_halvings += 1
            self.set_hyper(lr=lr / 2)
            msg += f" Continuing with the learning rate halved to {lr / 2:.2g}."
        elif self.on_divergence == "halve_lr":
            self.stopped = True
            msg += (f" It diverged again after {MAX_LR_HALVINGS} halvings of the learning rate, so training stopped: "
                    "check the data, the depth or the clipping threshold.")
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
        latest = self.evals.latest or {}
        err = latest.get("inv_err", float("nan"))
        if not err > INVERSE_DRIFT_WARN:
            return None
        return (f"The learned inverses no longer match the weights: mean ‖R W − I‖ is {err:.2g} (0 at the "
                f"start, {INVERSE_DRIFT_WARN:g} is the alarm level). The self-normalizing gradient uses R in place of "
                f"W⁻¹, so it now drifts away from the exact gradient and the test NLL can climb. Raise the "
                f"reconstruction weight λ (now {float(self.hyper['lam']):g}) or lower the learning rate.")

    def restore_best(self) -> Checkpoint | None:
        """Put back the weights with the lowest held-out NLL seen at any chunk end (``best``), if they are not the
        current ones.  The step count, schedule and optimiser moments carry on; ``evals`` gets one more row at the
        current step with the checkpoint's evaluations, so the curves and the latest test NLL describe the weights
        now in place.  Returns that checkpoint (also kept in ``restored``), or None when nothing changed.

        Why: late in training the held-out NLL still moves by a few hundredths of a nat from chunk to chunk, so the
        last chunk's weights are a draw from that spread.  The held-out set then serves as a validation set: its NLL at the
        kept step is biased low, so measure the result on fresh data (benchmarks/quality.py does)."""
        b = self.best
        if b is None or b.params is self.state.params:
            return None
        self.state = self.state._replace(params=b.params)
        self._prev = self.state
        self.restored = b
        self.evals.append({"step": self.step, "time": self.elapsed,
                           **{k: b.row.get(k, float("nan")) for k in self.evals.keys() if k not in ("step", "time")}})
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
        return self.history.arrays()

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
        last = (t.evals.latest or {}).get("test_nll", float("nan"))
        return last if np.isfinite(last) else float("inf")

    return min(cands, key=score), cands


# Step time on a 2-core CPU (relative gradient) is roughly proportional to layers × (batch + 300): the chunk length
# is scaled by that work so a chunk costs about the same at any setting.  Lengths come from a short list, so only a
# few chunk lengths are ever compiled.


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
