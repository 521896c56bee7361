"""The Playground's session, with no UI: settings, data, and the training worker they define.

Structural settings (density or uploaded data, layers, method, activation, batch size, seed, training-set size,
initialisation) define the compiled chunk and the data: changing one ends the worker (and says so); the next Train
starts a fresh one.  Hyper-parameters (learning rate, clipping, warm-up, decay, λ, Adam's β₂) go to the running
worker as a message.  Buttons are messages too; the page draws ``snapshot()``.  Also here: what the worker computes
for the page to draw (``PlaygroundView``), the fixed colour scale of a density, the advice after a divergence, and
settings that follow a choice of density or method."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import presets
from .budget import Budget, OverBudget, session_budget, training_refusal
from .densities import Density, get_density
from .flow import model_log_prob, model_samples
from .gradients import REGISTRY as METHODS
from .layerviz.grids import plane_grid
from .plots.raster import density_zmax
from .runtime.scheduler import Scheduler, default_scheduler
from .runtime.worker import Snapshot, TrainingWorker
from .settings import HYPER, PLAYGROUND, STRUCTURAL
from .train import Divergence, build_trainer, chunk_steps_for

_NAMES = {k: PLAYGROUND[k].noun[0].lower() + PLAYGROUND[k].noun[1:] for k in STRUCTURAL}
_NAMES["data"] = "the uploaded data"
_SOURCE_KEYS = {"toy": ("density", "ntrain"), "text": ("text", "ntrain"), "picture": ("invert", "ntrain"),
                "draw": ("bandwidth", "ntrain"), "upload": ()}  # what else defines the data of each source
GRID_N = 64  # the learned density's resolution on the page (64² points: one jitted block)
N_SAMPLES = 600  # samples from the flow on the page
LIVE_TEST_POINTS = 2000  # held-out points evaluated after every chunk while training live
LIVE_CHUNK_SCALE = 2.0  # chunks twice the cost model's reference: still several snapshots a second
REARM_RATIO = 1.5  # a live page re-arms its redraw timer when the interval it should use differs this much


def data_plot_range(points, margin: float = 0.15):
    """Plot range for uploaded points: the 0.5–99.5 % box widened by ``margin`` on each side."""
    p = np.asarray(points, np.float64)
    lo, hi = np.percentile(p, 0.5, axis=0), np.percentile(p, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def data_zmax(points, plot_range, n: int = 40) -> float:
    """The top of the colour scale for uploaded points: 1.15 × the largest cell of their 2-D histogram density on an
    ``n`` × ``n`` grid over the plot range (a fixed scale with no true density to take it from)."""
    (x0, x1), (y0, y1) = plot_range
    h, _, _ = np.histogram2d(np.asarray(points)[:, 0], np.asarray(points)[:, 1], bins=n, range=[[x0, x1], [y0, y1]],
                             density=True)
    return 1.15 * float(max(np.max(h), 1e-12))


@dataclass(frozen=True)
class PlaygroundView:
    """What the worker computes for the page after a chunk: log q on a grid over ``plot_range`` and samples."""

    plot_range: tuple
    n: int = GRID_N
    n_samples: int = N_SAMPLES
    seed: int = 0

    def __call__(self, trainer) -> dict:
        xs, ys, pts = plane_grid(self.plot_range, self.n)
        lq = model_log_prob(trainer.spec, trainer.params, trainer.norm, pts).reshape(len(ys), len(xs))
        smp = model_samples(trainer.spec, trainer.params, trainer.norm, self.n_samples, self.seed)
        return {"xs": xs, "ys": ys, "logq": lq, "samples": smp[np.all(np.isfinite(smp), axis=1)]}


REPEATS_WARN = 0.05  # fraction of uploaded points that are exact repeats of another before the data is named


def repeated_points(points) -> str | None:
    """One sentence when at least ``REPEATS_WARN`` of the points repeat another exactly: a flow can put unbounded
    density on a repeated point, so the likelihood has no maximum and training can run away however small the
    learning rate."""
    p = np.asarray(points)
    repeats = len(p) - len(np.unique(p, axis=0))
    if len(p) == 0 or repeats < REPEATS_WARN * len(p):
        return None
    return (f"{repeats:,} of your {len(p):,} points repeat another point exactly: a flow can pile unbounded density "
            "on a repeated point, so the likelihood has no maximum; add a little noise to the points or remove the "
            "repeats.")


def divergence_advice(div: Divergence, best: tuple | None, data=None) -> str:
    """What to tell the user when training diverged: the guard's message, what to change — the data first when
    uploaded points repeat (``repeated_points``), else the learning rate and clipping — and the Best weights when
    they beat the rolled-back ones (the last finite loss can already come from damaged weights)."""
    back = (f" **Best** puts back the weights of step {best[0]:,} (test NLL {best[1]:.4f}), the best so far: the "
            "last finite loss can already come from damaged weights." if best is not None else "")
    cause = repeated_points(data) if data is not None else None
    if cause:
        return f"{div.message}  \n**The data:** {cause}{back}"
    return (f"{div.message}  \n**Hint:** lower the learning rate (e.g. to {div.lr / 3:.2g}) or clip gradients "
            f"harder (smaller max norm under *More settings*), then press Resume.{back}")


def follow_choice(settings: dict, edited) -> tuple[dict, str]:
    """Settings for a new choice of density or method: the tuned preset of that combination, except the settings
    the user set by hand (``edited``), which are kept.  Returns (settings, one sentence saying what happened)."""
    density, method = settings["density"], settings["method"]
    tuned = PLAYGROUND.from_preset(presets.tuned(density, method))
    out, changed, kept = dict(settings), [], []
    for k, v in tuned.items():
        if k in ("density", "method") or out.get(k) == v:
            continue
        if k in edited:
            kept.append(PLAYGROUND[k].noun[0].lower() + PLAYGROUND[k].noun[1:])
        else:
            out[k] = v
            changed.append(f"{PLAYGROUND[k].label.split(' (')[0].lower()} {_shown(v)}")
    msg = (f"Loaded the tuned settings for {get_density(density).label} with the {METHODS[method].label}"
           + (f" ({', '.join(changed)})" if changed else " (nothing to change)")
           + (f"; kept {_and(kept)}, which you set" if kept else "") + ".")
    return out, msg


def _shown(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _and(items) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def needs_rearm(armed: float, wanted: float) -> bool:
    """Whether a live page whose redraw timer runs every ``armed`` s should re-arm it for ``wanted`` s (a timer is
    set when the whole page runs): when they differ by ``REARM_RATIO`` or more, so a class starting together, or a
    session let in from the line, redraws at the rate the server can keep, without reruns for every small change."""
    return max(armed, wanted) >= REARM_RATIO * min(armed, wanted)


def steps_line(snap: Snapshot, layers: int) -> str | None:
    """For deep flows, one line on what the depth costs here: steps per second measured in this session."""
    if layers < 100 or not math.isfinite(snap.steps_per_s):
        return None
    return (f"{layers} layers: this session trains {snap.steps_per_s:,.0f} optimiser steps per second here; each "
            "layer adds its own forward, backward and update work to every step.")


class PlaygroundSession:
    """One user's Playground: the settings, the data and the worker they define."""

    def __init__(self, scheduler: Scheduler | None = None, alive=None):
        self.settings: dict | None = None
        self.data: np.ndarray | None = None  # uploaded points (no true density)
        self.custom: Density | None = None  # a density the user made (text, picture, drawing)
        self.data_id: str | None = None  # identifies the uploaded points or the user's density
        self.worker: TrainingWorker | None = None
        self.scheduler, self._alive = scheduler, alive
        self._key = None
        self.sent = 0  # messages sent to the current worker
        self.wanted: str | None = None  # "run" or "step" until the worker says the run has ended

    # ---- settings -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _relevant(settings) -> tuple:
        """The structural keys that matter for this data source."""
        src = settings.get("source", "toy")
        own = {k for keys in _SOURCE_KEYS.values() for k in keys}
        common = tuple(k for k in STRUCTURAL if k != "source" and k not in own)
        return ("source",) + _SOURCE_KEYS[src] + common

    def _structure(self, settings, data_id):
        return tuple(settings[k] for k in self._relevant(settings)) + (data_id,)

    def update(self, settings: dict, data=None, data_id: str | None = None, custom: Density | None = None) \
            -> str | None:
        """Apply the page's current settings; ``data``: uploaded points, or ``custom``: a density the user made, each
        with its ``data_id``.  Returns a sentence when a structural change ended the run."""
        msg = None
        key = self._structure(settings, data_id)
        if self.worker is not None and key != self._key:
            old = self.settings or {}
            changed = [_NAMES[k] for k in self._relevant(settings) if old.get(k) != settings.get(k)]
            if data_id != self.data_id and old.get("source") == settings.get("source"):
                changed.append(_NAMES["data"] if data is not None else "your density")
            what = ", ".join(changed) or "a structural setting"
            snap = self.worker.snapshot()
            if snap.state in ("running", "queued"):
                msg = (f"Training stopped because you changed {what}; press Train to start a fresh run with the "
                       "new setting.")
            elif snap.step > 0:
                msg = f"You changed {what}, so the trained model was discarded; press Train to start a fresh run."
            self.close()
        hyper_before = None if self.settings is None else {k: self.settings[k] for k in HYPER}
        self.settings, self.data, self.custom, self.data_id, self._key = dict(settings), data, custom, data_id, key
        hyper = {k: self.settings[k] for k in HYPER}
        if self.worker is not None and hyper != hyper_before:
            self.worker.set_hyper(**hyper)
            self.sent += 1
        return msg

    @property
    def uploaded(self) -> bool:
        return self.data is not None

    @property
    def density(self) -> Density | None:
        """The true density being learned (a toy or the user's), None for uploaded points."""
        if self.uploaded:
            return None
        return self.custom if self.custom is not None else get_density(self.settings["density"])

    def plot_range(self):
        return data_plot_range(self.data) if self.uploaded else self.density.plot_range

    def zmax(self) -> float:
        if self.uploaded:
            return data_zmax(self.data, self.plot_range())
        return density_zmax(self.density)

    # ---- the worker ---------------------------------------------------------------------------------------------------
    def _build_args(self) -> tuple:
        s = self.settings
        # the chunk does not depend on how many sessions train now: every session of the same settings shares one
        # compiled chunk, and a turn is the same number of steps for everyone (fair in steps, not only in turns)
        kw = dict(layers=s["layers"], method=s["method"], activation=s["activation"], batch=s["batch"],
                  chunk=chunk_steps_for(s["layers"], s["batch"], s["method"], LIVE_CHUNK_SCALE, s["activation"]),
                  seed=s["seed"], init=s["init"],
                  **{k: s[k] for k in HYPER})
        if self.data is not None:
            return None, dict(data=self.data, **kw)
        return self.density, dict(ntrain=int(s["ntrain"]), ntest=LIVE_TEST_POINTS, **kw)

    def ensure_worker(self) -> TrainingWorker:
        if self.settings is None:
            raise ValueError("No settings yet: call update(settings) first.")
        if self.worker is None or not self.worker.alive:
            over = self.refusal()
            if over:
                raise OverBudget(over)
            view = PlaygroundView(self.plot_range(), seed=int(self.settings["seed"]))
            density, kw = self._build_args()  # the worker holds these, not the session (which may then be freed)
            self.worker = TrainingWorker(partial(build_trainer, density, **kw), self.scheduler, view=view,
                                         alive=self._alive,
                                         name=str(self.settings.get("density")))
            self.sent = 0
        return self.worker

    def redraw_interval(self, snap: Snapshot | None = None) -> float:
        """Seconds between redraws of the live panels: longer when many sessions train on this server, and long
        while this one waits in line (``snap.state == "queued"``)."""
        queued = snap is not None and snap.state == "queued"
        return (self.scheduler or default_scheduler()).redraw_interval(queued=queued)

    def snapshot(self) -> Snapshot:
        """The newest snapshot of this session's training (an empty one before the first Train)."""
        return Snapshot(state="idle") if self.worker is None else self.worker.snapshot()

    def busy(self, snap: Snapshot) -> bool:
        """Whether the page should keep redrawing: the worker has not yet read every message the page sent (Train,
        Pause, Reset, Best, ...: until it has, the page's buttons may show the state before the click), or it says it
        is building, queued or running."""
        if snap.state in ("building", "running", "queued"):
            return True
        if self.worker is not None and self.worker.alive and snap.handled < self.sent:
            return True
        self.wanted = None  # the worker has read every message and is not training: the run is over
        return False

    def _send(self, method: str, wanted: str | None, create: bool = True):
        if self.worker is None and not create:
            return
        getattr(self.ensure_worker(), method)()
        self.sent += 1
        self.wanted = wanted

    def refusal(self, budget: Budget | None = None) -> str | None:
        """One sentence when this session's training would not fit the server's per-session budget
        (``flowlab.budget``; default ``session_budget()``), else None: checked before any worker is built."""
        s = self.settings
        ntrain = len(self.data) if self.data is not None else int(s["ntrain"])
        return training_refusal(budget or session_budget(), method=s["method"], layers=s["layers"],
                                batch=s["batch"], ntrain=ntrain, ntest=LIVE_TEST_POINTS,
                                views=GRID_N * GRID_N)

    def start(self):
        self._send("start", "run")

    def pause(self):
        self._send("pause", None, create=False)

    def step_once(self):
        self._send("step", "step")

    def reset(self):
        self._send("reset", None, create=False)

    def restore_best(self):
        self._send("restore_best", None, create=False)

    def close(self):
        """End the worker (a structural change, or the session is over)."""
        if self.worker is not None:
            self.worker.stop()
        self.worker, self.sent, self.wanted = None, 0, None

    def entropy(self) -> float | None:
        """H(p) of the density (None for uploaded data): the floor of the test NLL."""
        return None if self.uploaded else self.density.entropy()

    def config(self, snap: Snapshot) -> dict:
        cfg = dict(snap.config or {})
        d = self.density
        cfg.update({"method": self.settings["method"], "density": None if d is None else d.name,
                    "source": "playground"})
        return cfg
