"""The Playground's training session as a small state machine, with no UI (the page only maps buttons onto it).

States: *idle* (no trainer yet or fresh weights), *running* (each UI tick runs one jitted chunk), *paused*.
Structural settings (density or uploaded data, layers, method, activation, batch size, seed, training-set size)
define the compiled chunk and the data: changing one discards the trainer (and stops training, with a message).
Hyper-parameters (learning rate, clipping, warm-up, decay, λ, Adam's β₂) are applied to the live trainer without a
reset.
"""
from __future__ import annotations

import threading

import numpy as np

from .settings import HYPER, PLAYGROUND, STRUCTURAL
from .train import Divergence, Trainer, build_trainer, chunk_steps_for

_NAMES = {k: PLAYGROUND[k].noun[0].lower() + PLAYGROUND[k].noun[1:] for k in STRUCTURAL}
_NAMES["data"] = "the uploaded data"


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


def divergence_advice(div: Divergence, trainer: Trainer | None) -> str:
    """What to tell the user when training diverged: the guard's message, what to change, and the ★ Best weights
    when they beat the rolled-back ones (the last finite loss can already come from damaged weights)."""
    b = trainer.best if trainer is not None else None
    back = (f" **Best** puts back the weights of step {b.step:,} (test NLL {b.test_nll:.4f}), the best so far: the "
            "last finite loss can already come from damaged weights." if b is not None
            and b.params is not trainer.params else "")
    return (f"{div.message}  \n**Hint:** lower the learning rate (e.g. to {div.lr / 3:.2g}) or clip gradients "
            f"harder (smaller max norm under *More settings*), then press Resume.{back}")


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
        return {k: self.settings[k] for k in HYPER}

    @property
    def uploaded(self) -> bool:
        return self.data is not None

    # ---- trainer ---------------------------------------------------------------------------------------------
    def ensure_trainer(self) -> Trainer:
        if self.trainer is None:
            if self.settings is None:
                raise ValueError("No settings yet: call update(settings) first.")
            s = self.settings
            kw = dict(layers=s["layers"], method=s["method"], activation=s["activation"], batch=s["batch"],
                      chunk=chunk_steps_for(s["layers"], s["batch"], s["method"]), seed=s["seed"], init=s["init"],
                      **self.hyper_kw())
            if self.data is not None:
                self.trainer = build_trainer(data=self.data, **kw)
            else:
                self.trainer = build_trainer(s["density"], ntrain=int(s["ntrain"]), **kw)
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
        if t is None or t.evals.latest is None:
            return float("nan")
        return float(t.evals.latest.get(key, float("nan")))

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
