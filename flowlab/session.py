"""The Playground's training session as a small state machine, with no UI (the page only maps buttons onto it).

States: *idle* (no trainer yet or fresh weights), *running* (each UI tick runs one jitted chunk), *paused*.
Structural settings (density or uploaded data, layers, method, activation, batch size, seed, training-set size)
define the compiled chunk and the data: changing one discards the trainer (and stops training, with a message).
Hyper-parameters (learning rate, clipping, warm-up, decay, λ, Adam's β₂) are applied to the live trainer without a
reset.
"""
from __future__ import annotations

import threading
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .flow import FlowSpec, Norm, log_prob, sample
from .train import Divergence, Trainer, build_trainer

STRUCTURAL = ("density", "layers", "method", "activation", "batch", "seed", "ntrain", "init")
HYPER = ("lr", "clip", "warmup", "decay", "lam", "b2")
_NAMES = {"density": "the density", "layers": "the number of layers", "method": "the gradient method",
          "activation": "the activation", "batch": "the batch size", "seed": "the seed",
          "ntrain": "the training-set size", "init": "the initialisation", "data": "the uploaded data"}

# Step time on a 2-core CPU (relative gradient, benchmarks/tune_defaults.py runs): per layer ~30 µs at batch 256,
# ~46 µs at 512, ~62 µs at 1024, i.e. roughly proportional to layers × (batch + 300).  The chunk length is scaled by
# that work so one chunk costs ~0.3 s (capped at 200 steps; the default 50 layers × batch 1024 gets 50): a browser
# redraw costs more than that on a small machine, so longer chunks buy training throughput.  Values come from a
# short list so only a few chunk lengths are ever compiled.
CHUNK_CHOICES = (5, 10, 25, 50, 100, 200)
_BATCH_OVERHEAD = 300
_REF_WORK = 20 * (256 + _BATCH_OVERHEAD)
_REF_STEPS = 500
_METHOD_COST = {"exact": 1.0, "relative": 1.0, "self_normalizing": 1.5}


def chunk_steps_for(layers: int, batch: int, method: str, scale: float = 1.0) -> int:
    """Steps per jitted chunk: about the cost of ``scale`` × 500 steps at 20 layers × batch 256 (~0.3 s each 500
    when this was measured), at most 200."""
    work = max(1, int(layers)) * (max(1, int(batch)) + _BATCH_OVERHEAD) * _METHOD_COST.get(method, 1.0)
    target = scale * _REF_STEPS * _REF_WORK / work
    return max(c for c in CHUNK_CHOICES if c <= max(target, CHUNK_CHOICES[0]))


HEADLESS_CHUNK_SCALE = 4.0


def with_chunk_steps(settings: dict) -> dict:
    """``build_trainer`` keyword arguments with a chunk length filled in (unless given) for headless runs (CLI,
    benchmarks/quality.py): ``chunk_steps_for`` with ``HEADLESS_CHUNK_SCALE`` × the Playground's work per chunk, as
    nothing redraws in between.  The test set is then evaluated every 200 steps rather than every 50 at the
    defaults, which on moons ran 16 % (relative) and 25 % (self-normalizing) more steps per second."""
    out = dict(settings)
    out.setdefault("chunk_steps", chunk_steps_for(out["layers"], out["batch_size"], out.get("method", "relative"),
                                                  HEADLESS_CHUNK_SCALE))
    return out


def steps_per_second(evals: dict, window: int = 10) -> float:
    """Optimiser steps per second over the last ``window`` chunks, not counting the first (compiling) chunk."""
    steps, times = list(evals.get("step", [])), list(evals.get("time", []))
    if len(steps) < 2:
        return float("nan")
    i = max(0, len(steps) - 1 - window)
    dt = times[-1] - times[i]
    return (steps[-1] - steps[i]) / dt if dt > 0 else float("nan")


def data_plot_range(points, margin: float = 0.15):
    """Plot range for uploaded points: the 0.5–99.5 % box widened by ``margin`` on each side."""
    p = np.asarray(points, np.float64)
    lo, hi = np.percentile(p, 0.5, axis=0), np.percentile(p, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


N_SAMPLES = 1000


@lru_cache(maxsize=32)
def _evaluators(spec: FlowSpec):
    lp = jax.jit(lambda params, norm, x: log_prob(spec, params, x, norm))
    sm = jax.jit(lambda params, norm, key: sample(spec, params, key, N_SAMPLES, norm))
    return lp, sm


def model_log_prob(spec: FlowSpec, params: dict, norm: Norm | None, points) -> np.ndarray:
    """log q(x) of a model on many points (jitted per FlowSpec, evaluated in blocks of 20,000)."""
    lp, _ = _evaluators(spec)
    norm = norm if norm is not None else Norm.identity(spec.dim)
    x = np.asarray(points, np.float32)
    return np.concatenate([np.asarray(lp(params, norm, jnp.asarray(x[i:i + 20_000])))
                           for i in range(0, len(x), 20_000)])


def model_samples(spec: FlowSpec, params: dict, norm: Norm | None, seed: int = 0) -> np.ndarray:
    """N_SAMPLES samples from the flow (jitted per FlowSpec)."""
    _, sm = _evaluators(spec)
    norm = norm if norm is not None else Norm.identity(spec.dim)
    return np.asarray(sm(params, norm, jax.random.PRNGKey(int(seed))))


class PlaygroundSession:
    """One user's Playground: settings, the Trainer, and whether the UI tick should train."""

    def __init__(self):
        self.settings: dict | None = None
        self.data: np.ndarray | None = None  # uploaded points (None: sample the density)
        self.data_id: str | None = None
        self.trainer: Trainer | None = None
        self.running = False
        self.divergence: Divergence | None = None
        self._key = None
        # Streamlit may run a button callback (a new script run) while the previous fragment tick is still inside a
        # jitted chunk on another thread: every state change waits for that chunk, so after Pause nothing trains
        # and the step shown is final.
        self._lock = threading.RLock()

    # ---- settings --------------------------------------------------------------------------------------------
    def _structure(self, settings, data_id):
        return tuple(settings[k] for k in STRUCTURAL if not (data_id and k in ("density", "ntrain"))) + (data_id,)

    def update(self, settings: dict, data=None, data_id: str | None = None) -> str | None:
        """Apply the page's current settings.  Returns a message when a structural change discarded the run."""
        with self._lock:
            return self._update(settings, data, data_id)

    def _update(self, settings, data, data_id):
        msg = None
        key = self._structure(settings, data_id)
        if self.trainer is not None and key != self._key:
            old = self.settings or {}
            changed = [_NAMES[k] for k in STRUCTURAL if old.get(k) != settings.get(k)
                       and not (data_id and k in ("density", "ntrain"))]
            if data_id != self.data_id:
                changed.append(_NAMES["data"] if data_id else "the data source")
            what = ", ".join(changed) or "a structural setting"
            if self.running:
                msg = (f"Training stopped because you changed {what}; press Train to start a fresh run with the "
                       "new setting.")
            elif self.trainer.step > 0:
                msg = f"You changed {what}, so the trained model was discarded; press Train to start a fresh run."
            self.running = False
            self.trainer = None
            self.divergence = None
        self.settings, self.data, self.data_id, self._key = dict(settings), data, data_id, key
        if self.trainer is not None:
            hyper = self.hyper_kw()
            if any(self.trainer.hyper_kw.get(k) != v for k, v in hyper.items()):
                self.trainer.set_hyper(**hyper)
        return msg

    def hyper_kw(self) -> dict:
        s = self.settings
        return {"lr": float(s["lr"]), "clip": float(s["clip"]), "warmup": int(s["warmup"]),
                "decay_steps": int(s["decay"]), "lam": float(s["lam"]), "b2": float(s["b2"])}

    @property
    def uploaded(self) -> bool:
        return self.data is not None

    # ---- trainer ---------------------------------------------------------------------------------------------
    def ensure_trainer(self) -> Trainer:
        if self.trainer is None:
            if self.settings is None:
                raise ValueError("No settings yet: call update(settings) first.")
            s = self.settings
            kw = dict(layers=s["layers"], method=s["method"], activation=s["activation"], batch_size=s["batch"],
                      chunk_steps=chunk_steps_for(s["layers"], s["batch"], s["method"]), seed=s["seed"],
                      init=s["init"], **self.hyper_kw())
            if self.data is not None:
                self.trainer = build_trainer(data=self.data, **kw)
            else:
                self.trainer = build_trainer(s["density"], n_train=int(s["ntrain"]), **kw)
        return self.trainer

    @property
    def step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step

    def start(self):
        """Train (or resume where it stopped)."""
        with self._lock:
            self.ensure_trainer().resume()
            self.divergence = None
            self.running = True

    def pause(self):
        """Stop training; waits for a chunk in progress, so the step count is final when this returns."""
        with self._lock:
            self.running = False

    def step_once(self) -> Divergence | None:
        """Exactly one chunk, then paused."""
        with self._lock:
            self.running = False
            self.ensure_trainer().resume()
            self.divergence = None
            return self._chunk()

    def reset(self):
        """Back to the seed's initial weights, empty curves, paused."""
        with self._lock:
            self.running = False
            self.divergence = None
            if self.trainer is not None:
                self.trainer.reset()

    def restore_best(self):
        """Pause and put back the weights with the lowest test NLL so far (``Trainer.restore_best``); returns that
        checkpoint, or None when there is no trainer or the current weights are already the best."""
        with self._lock:
            self.running = False
            return None if self.trainer is None else self.trainer.restore_best()

    def tick(self) -> Divergence | None:
        """One UI tick: one chunk if running (checked and run under the lock), nothing otherwise."""
        with self._lock:
            return self._chunk() if self.running else None

    def _chunk(self) -> Divergence | None:
        div = self.ensure_trainer().run_chunk()
        if div is not None:
            self.running = False
            self.divergence = div
        return div

    # ---- results ---------------------------------------------------------------------------------------------
    def latest(self, key: str) -> float:
        t = self.trainer
        if t is None or not t.evals.get(key):
            return float("nan")
        return float(t.evals[key][-1])

    def entropy(self) -> float | None:
        """True entropy H(p) estimated on the trainer's held-out points, -mean log p(x_test): the same points as the
        reported KL, so KL = test NLL - H exactly.  None for uploaded data (no true density)."""
        t = self.trainer
        if t is None or t.test_logp is None:
            return None
        return float(-np.mean(np.asarray(t.test_logp, np.float64)))

    def config(self) -> dict:
        t = self.ensure_trainer()
        cfg = t.config_dict()
        s = self.settings
        cfg.update({"method": s["method"], "density": None if self.uploaded else s["density"],
                    "source": "playground"})
        return cfg
