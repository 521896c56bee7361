"""A training worker: one session's training in a background thread, beside the page's drawing.

The worker owns its ``Trainer``.  It trains in jitted chunks, one chunk per turn of the process-wide ``Scheduler``,
and after a chunk publishes an immutable ``Snapshot`` (while training: at most every ``publish_s`` seconds, and only
once the page has read the previous one, so no view is computed that no redraw shows): the
metrics, thinned curves, the weights and whatever ``view(trainer)`` computes for the page to draw.  The page only
reads ``snapshot()``.  Every control is a message (``send``): start, pause, step, reset, restore_best, hyper, stop;
messages are applied between chunks, so each takes effect within one chunk, and a worker waiting for its turn
reads them at once (keeping its place).  The view is computed under a turn, once per new weights: a queued or paused
worker republishes the one it has.

Lifetime: a worker that nobody has asked for a snapshot for ``idle_pause_s`` pauses itself (a tab left open in the
background costs nothing), and after ``idle_stop_s`` (or once ``alive()`` says its session is gone) it ends."""
from __future__ import annotations

import atexit
import queue
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..budget import plural
from ..history import Frames
from ..train import Divergence, Trainer
from .scheduler import Scheduler, TurnCancelled, TurnDeferred, default_scheduler

IDLE_PAUSE_S = 30.0
IDLE_STOP_S = 600.0
PUBLISH_S = 0.1
QUEUED_POLL_S = 0.25  # a worker waiting in line (or idle) checks its inbox, its place and its session this often
CURVES_S = 0.5  # while running, the thinned curve columns in a snapshot are refreshed at most this often
FRAMES = 96  # views kept for an animation of the run (evenly thinned)
RATE_WINDOW_S = 5.0  # steps/s over the chunks of the last few seconds of wall time
_LIVE: "weakref.WeakSet[TrainingWorker]" = weakref.WeakSet()  # every worker of this process that may still run


@dataclass(frozen=True)
class Snapshot:
    """What the page draws, published by the worker; never mutated after publication."""

    seq: int = 0
    handled: int = 0  # messages applied so far (a page compares it with the messages it sent)
    state: str = "building"  # building | idle | running | paused | queued | stopped | error
    step: int = 0
    wall_s: float = 0.0  # wall-clock seconds spent training (queue and turns included)
    compute_s: float = 0.0  # seconds inside jitted chunks (compilation included)
    wait_s: float = 0.0  # seconds waiting for a turn (other sessions training)
    steps_per_s: float = float("nan")  # optimiser steps per wall-clock second, last few seconds
    latest: dict = field(default_factory=dict)  # the newest evaluation row (test_nll, kl, ...)
    evals: dict = field(default_factory=dict)  # thinned evaluation columns (numpy)
    history: dict = field(default_factory=dict)  # thinned per-step columns (numpy)
    view: dict | None = None  # what view(trainer) computed at this step
    model: tuple | None = None  # (spec, params, norm) at this step
    best: tuple | None = None  # (step, test NLL) of the best weights so far, when they are not the current ones
    divergence: Divergence | None = None
    drift: str | None = None
    note: str | None = None  # one sentence for the user (queue place, idle pause, ...)
    place: int = 0  # place in line while queued
    error: str | None = None
    config: dict | None = None  # the trainer's settings (model files)
    frames: tuple = ()  # (step, view) pairs over the run, evenly thinned (an animation of the training)


class TrainingWorker:
    """See the module docstring.  ``build()`` makes the Trainer (in the worker's thread: data sampling and the first
    initialisation do not block the page); ``view(trainer) -> dict`` is computed when a snapshot is published."""

    def __init__(self, build: Callable[[], Trainer], scheduler: Scheduler | None = None, *,
                 view: Callable[[Trainer], dict] | None = None, publish_s: float = PUBLISH_S,
                 idle_pause_s: float = IDLE_PAUSE_S, idle_stop_s: float = IDLE_STOP_S,
                 alive: Callable[[], bool] | None = None, clock=time.monotonic, name: str = ""):
        self._build, self._view = build, view
        self.scheduler = scheduler or default_scheduler()
        self.publish_s, self.idle_pause_s, self.idle_stop_s = publish_s, idle_pause_s, idle_stop_s
        self._alive, self.clock = alive, clock
        self._inbox: queue.Queue = queue.Queue()
        self._stopped = threading.Event()  # set by stop(): a wait for a turn ends at once
        self._snap = Snapshot()
        self._seen = clock()
        self._seq = self._read = 0  # the last snapshot published, and the last one the page has read
        self.trainer: Trainer | None = None  # owned by the worker thread; read it only through snapshots
        self._thread = threading.Thread(target=self._run, name=f"flowlab-train-{name}", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    # ---- the page's side ----------------------------------------------------------------------------------------------
    def send(self, kind: str, **kw):
        self._inbox.put((kind, kw))
        self.scheduler.wake()  # a worker waiting for its turn reads the message now

    def start(self):
        self.send("start")

    def pause(self):
        self.send("pause")

    def step(self):
        self.send("step")

    def reset(self):
        self.send("reset")

    def restore_best(self):
        self.send("best")

    def set_hyper(self, **kw):
        self.send("hyper", **kw)

    def stop(self):
        self._stopped.set()
        self.send("stop")

    def snapshot(self) -> Snapshot:
        """The newest snapshot; asking for it keeps the worker from pausing itself for idleness."""
        self._seen = self.clock()
        snap = self._snap
        self._read = snap.seq
        return snap

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None):
        self._thread.join(timeout)

    # ---- the worker's side --------------------------------------------------------------------------------------------
    def _run(self):
        self._running = self._stepping = False
        self._handled = 0
        self._note: str | None = None
        self._wall = self._wait = 0.0
        self._rate: list[tuple[float, int]] = []
        self._last_publish = self._curves_at = -1e9
        self._frames = Frames(FRAMES)
        self._curves = ({}, {})
        self._view_of = self._view_data = None  # the weights the last view was computed for, and that view
        self._place = 0  # place in line last published
        try:
            # building samples data and compiles, and the first view compiles too: a slot
            with self.scheduler.turn(self, self._stopped.is_set, build=True):
                self.trainer = self._build()
                self._publish("idle")
        except TurnCancelled:
            self.scheduler.leave(self)
            self._publish("stopped")
            return
        except Exception as e:  # noqa: BLE001 - a bad setting is a sentence on the page, not a dead thread
            self._publish("error", error=str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}")
            return
        try:
            while self._loop_once():
                pass
        except Exception as e:  # noqa: BLE001 - reported on the page instead of dying silently
            traceback.print_exc()
            self._running = False
            self._publish("error", error=f"Training stopped on an unexpected error: {type(e).__name__}: {e}")
        finally:
            self.scheduler.leave(self)

    def _loop_once(self) -> bool:
        """Apply the messages, maybe train one chunk, maybe publish.  False when the worker should end."""
        busy = (self._running or self._stepping) and not self._place
        try:
            msgs = [self._inbox.get(timeout=0 if busy else QUEUED_POLL_S)]
        except queue.Empty:
            msgs = []
        while True:
            try:
                msgs.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        dirty = False
        for kind, kw in msgs:
            self._handled += 1
            if kind == "stop":
                self._publish("stopped")
                return False
            dirty |= self._apply(kind, kw)
        idle = self.clock() - self._seen
        if (self._alive is not None and not self._alive()) or idle > self.idle_stop_s:
            self._publish("stopped", note="Training ended: this page was closed or left alone for too long.")
            return False
        if self._running and idle > self.idle_pause_s:
            self._set_running(False)
            self._note = (f"Paused: nobody watched this page for {self.idle_pause_s:.0f} s. Press Resume to carry "
                          "on.")
            dirty = True
        if self._running or self._stepping:
            place = self.scheduler.join(self)
            if place:  # the next loop waits QUEUED_POLL_S for a message
                if place != self._place or dirty:
                    self._publish("queued", place=place, note=queue_note(place, self.scheduler.max_active))
                self._place = place
                return True
            if self._place or dirty:  # admitted (to run, or for one Step): the page learns it before the turn comes
                self._place = 0
                self._publish("running")
            try:
                self._chunk()
            except (TurnCancelled, TurnDeferred):  # stopped, or a message to read first: the next loop reads it
                return True
            return True
        self._place = 0
        if dirty:
            self._publish(self._idle_state())
        return True

    def _idle_state(self) -> str:
        return "paused" if self.trainer.step > 0 else "idle"

    def _set_running(self, on: bool):
        self._running = on
        if not on:
            self.scheduler.leave(self)
            self._rate.clear()

    def _apply(self, kind: str, kw: dict) -> bool:
        t = self.trainer
        if kind == "start":
            t.resume()
            self._note = None
            self._set_running(True)
        elif kind == "pause":
            self._set_running(False)
        elif kind == "step":
            t.resume()
            self._note = None
            self._set_running(False)
            self._stepping = True
        elif kind == "reset":
            self._set_running(False)
            t.reset()
            self._frames.clear()
            self._wall = self._wait = 0.0
            self._note = None
        elif kind == "best":
            self._set_running(False)
            b = t.restore_best()
            self._note = (f"Restored the weights of step {b.step:,} (test NLL {b.test_nll:.4f}; the last weights had "
                          f"{t.last_chunk_test_nll:.4f}). Training continues from them when you press Resume."
                          if b is not None else "Nothing to restore: train first, or the current weights already "
                                                "have the lowest test NLL so far.")
        elif kind == "hyper":
            try:
                t.set_hyper(**kw)
            except ValueError as e:
                self._note = str(e)
        else:
            raise ValueError(f"Unknown message {kind!r} for a training worker.")
        return True

    def _chunk(self):
        """One chunk and, when due, a snapshot, both in one turn: the view's jitted work counts against the slots
        too, so the CPU is never shared by more computations than the scheduler allows."""
        t = self.trainer
        t0 = self.clock()
        with self.scheduler.turn(self, self._stopped.is_set, self._has_mail) as waited:
            div = t.run_chunk()
            self._wait += waited
            self._wall += self.clock() - t0
            if self._stepping:
                self._stepping = False
                self._set_running(False)
            if div is not None or t.stopped:
                self._set_running(False)
            if self._running:
                self._rate.append((self._wall, t.step))
                while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > RATE_WINDOW_S:
                    self._rate.pop(0)
            if not self._running or (self._read >= self._seq
                                     and self.clock() - self._last_publish >= self.publish_s):
                self._publish("running" if self._running else self._idle_state())

    def _has_mail(self) -> bool:
        return not self._inbox.empty()

    def _current_view(self, t):
        """``view(t)`` for the weights in place now, computed once per new weights (a chunk, a reset, Best)."""
        if self._view is None:
            return None
        if self._view_data is None or self._view_of[0] is not t.params or self._view_of[1] != t.step:
            self._view_data, self._view_of = self._view(t), (t.params, t.step)
        return self._view_data

    def _steps_per_s(self) -> float:
        if len(self._rate) < 2 or self._rate[-1][0] <= self._rate[0][0]:
            return float("nan")
        (w0, s0), (w1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (w1 - w0)

    def _publish(self, state: str, **kw):
        self._seq += 1
        t = self.trainer
        if t is None:
            self._snap = Snapshot(seq=self._seq, handled=self._handled, state=state, **kw)
            return
        b = t.best
        div = t.divergences[-1] if (t.divergences and t.stopped) else None
        now = self.clock()
        if state != "running" or now - self._curves_at >= CURVES_S:  # the curves need fresh columns less often
            self._curves = (t.evals.arrays(), t.history.arrays())
            self._curves_at = now
        view = self._current_view(t)
        if view is not None and t.step > 0 and (not self._frames.items or self._frames.items[-1][0] != t.step):
            self._frames.add(t.step, view)
        self._snap = Snapshot(
            seq=self._seq, handled=self._handled, state=state, step=t.step, wall_s=self._wall, compute_s=t.elapsed, wait_s=self._wait,
            steps_per_s=self._steps_per_s(), latest=dict(t.evals.latest or {}),
            evals=self._curves[0], history=self._curves[1],
            view=view, model=(t.spec, t.params, t.norm), frames=tuple(self._frames.items),
            best=(b.step, b.test_nll) if b is not None and b.params is not t.params else None,
            divergence=div, drift=t.inverse_drift_warning(), note=kw.pop("note", self._note),
            config=t.config_dict(), **kw)
        self._last_publish = self.clock()


def queue_note(place: int, at_once: int) -> str:
    """The honest sentence for a session waiting in line."""
    return (f"Waiting for a free trainer: you are #{place} in line ({plural(at_once, 'session')} "
            f"{'trains' if at_once == 1 else 'train'} at once on this server).")


def live_workers() -> list:
    """The workers of this process whose threads still run."""
    return [w for w in list(_LIVE) if w.alive]


def stop_all(timeout: float = 10.0) -> int:
    """Stop every worker of this process (server shutdown, tests); returns how many were running."""
    ws = live_workers()
    for w in ws:
        w.stop()
    for w in ws:
        w.join(timeout)
    return len(ws)


atexit.register(stop_all)  # no thread is left inside a jitted chunk while the interpreter shuts down


def bytes_of(snap: Snapshot) -> int:
    """Approximate size of a snapshot's arrays (the memory a session holds for drawing)."""
    return sum(np.asarray(v).nbytes for d in (snap.evals, snap.history, snap.view or {}) for v in d.values())
