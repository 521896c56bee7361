"""One process-wide scheduler for the training workers of every session.

Two bounds: at most ``slots`` chunks run at the same moment (by default one per usable CPU core but one — the
process's affinity capped by a container's CPU quota: a chunk runs no faster on two XLA threads, JAX releases the
GIL so chunks run truly side by side, and the last core is left to the web server, which must keep redrawing every
page), and at most ``max_active`` sessions train at all.  Active sessions take turns for a slot in arrival order,
one chunk per turn, so throughput is shared fairly; a session that asks to train while ``max_active`` others do
waits in line and is told its place.  Settings: ``FLOWLAB_TRAIN_SLOTS`` and ``FLOWLAB_MAX_TRAINERS`` (environment), else the defaults below."""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable

from ..system import usable_cpus

ACTIVE_PER_SLOT = 10  # default admission: this many training sessions per slot


def _env_int(name: str, default: int) -> int:
    try:
        v = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return v if v >= 1 else default


class TurnCancelled(Exception):
    """The worker waiting for a turn was stopped."""


class Scheduler:
    """Admission (``join`` / ``leave``) and fair turns (``turn``) for training workers; thread-safe."""

    def __init__(self, slots: int | None = None, max_active: int | None = None, clock=time.monotonic):
        self.slots = int(slots or _env_int("FLOWLAB_TRAIN_SLOTS", max(1, usable_cpus() - 1)))
        self.max_active = int(max_active or _env_int("FLOWLAB_MAX_TRAINERS", ACTIVE_PER_SLOT * self.slots))
        self.clock = clock
        self._cv = threading.Condition()
        self._active: list = []  # admitted workers, in order of admission
        self._line: deque = deque()  # workers waiting for admission
        self._turns: deque = deque()  # admitted workers waiting for a slot, first come first served
        self._busy = 0

    # ---- admission --------------------------------------------------------------------------------------------------
    def join(self, worker) -> int:
        """Ask to train: 0 when admitted (or already), else the place in line (1 = next)."""
        with self._cv:
            if worker in self._active:
                return 0
            if worker not in self._line:
                self._line.append(worker)
            self._admit()
            return 0 if worker in self._active else list(self._line).index(worker) + 1

    def place(self, worker) -> int:
        """0 when admitted, k when k-th in line, -1 when neither."""
        with self._cv:
            if worker in self._active:
                return 0
            return list(self._line).index(worker) + 1 if worker in self._line else -1

    def leave(self, worker):
        """Stop training (pause, stop, session end): frees the admission for the next in line."""
        with self._cv:
            if worker in self._active:
                self._active.remove(worker)
            if worker in self._line:
                self._line.remove(worker)
            if worker in self._turns:
                self._turns.remove(worker)
            self._admit()
            self._cv.notify_all()

    def _admit(self):
        while self._line and len(self._active) < self.max_active:
            self._active.append(self._line.popleft())

    # ---- turns -------------------------------------------------------------------------------------------------------
    @contextmanager
    def turn(self, worker, cancelled: Callable[[], bool] | None = None):
        """Hold one slot for one chunk; yields the seconds waited for it.  Turns go in arrival order.  A wait ends
        with ``TurnCancelled`` as soon as ``cancelled()`` is true (a worker stopped while in line must not stay
        queued behind a long compile)."""
        t0 = self.clock()
        with self._cv:
            self._turns.append(worker)
            while not (self._turns[0] is worker and self._busy < self.slots):
                if cancelled is not None and cancelled():
                    self._turns.remove(worker)
                    self._cv.notify_all()
                    raise TurnCancelled
                self._cv.wait(0.5)
            self._turns.popleft()
            self._busy += 1
            self._cv.notify_all()
        try:
            yield self.clock() - t0
        finally:
            with self._cv:
                self._busy -= 1
                self._cv.notify_all()

    def redraw_interval(self, base: float = 0.2, per_session: float = 0.08, most: float = 1.0) -> float:
        """Seconds between a live page's redraws: ``base`` with a few sessions, longer as more train (each redraw
        costs the server a script run and the browser a frame), never longer than ``most``."""
        with self._cv:
            active = len(self._active)
        return min(most, max(base, per_session * active))

    def stats(self) -> dict:
        with self._cv:
            return {"slots": self.slots, "max_active": self.max_active, "active": len(self._active),
                    "waiting": len(self._line), "busy": self._busy}


_DEFAULT: Scheduler | None = None
_DEFAULT_LOCK = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process-wide scheduler (made on first use from the environment)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Scheduler()
        return _DEFAULT
