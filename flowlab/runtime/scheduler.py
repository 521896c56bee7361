"""One process-wide scheduler for the training workers of every session.

Two bounds: at most ``slots`` computations run at the same moment (by default one per usable CPU core but one — the
process's affinity capped by a container's CPU quota: a chunk runs no faster on two XLA threads, JAX releases the
GIL so chunks run truly side by side, and the last core is left to the web server, which must keep redrawing every
page), and at most ``max_active`` sessions train at all.  Active sessions take turns for a slot in arrival order,
one chunk per turn, so throughput is shared fairly; a session that asks to train while ``max_active`` others do
waits in line and is told its place.  Builds (sampling data, the first initialisation, compiling) take slots too,
from their own line: when both lines wait, builds and chunks alternate, so a class pressing Train at once neither
stalls the sessions already training behind a row of builds nor waits for every one of them to finish.  A worker
with a message for it (Pause, a new learning rate) steps out of the line for a moment and keeps its place
(``TurnDeferred``).  Settings: ``FLOWLAB_TRAIN_SLOTS`` and ``FLOWLAB_MAX_TRAINERS`` (environment), else the
defaults below."""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable

from ..system import platform_name, usable_cpus

ACTIVE_PER_SLOT = 10  # default admission: this many training sessions per slot
# On a GPU or TPU the chunks run on the accelerator and the host's cores only launch them and draw, so more chunks
# may be in flight at once: the default slots there (not measured on this project's CPU machines; set
# FLOWLAB_TRAIN_SLOTS after running benchmarks/capacity.py on the accelerator).
ACCELERATOR_SLOTS = 4
REDRAW_BASE_S = 0.2  # seconds between a live page's redraws with a few sessions
REDRAW_PER_SESSION_S = 0.08  # ... plus this per session training or building here (each redraw is a script run)
REDRAW_MOST_S = 0.8  # ... never longer: the goal is >= 1 redraw/s per training session, with a margin for jitter
REDRAW_QUEUED_S = 2.0  # a session waiting in line redraws this seldom: only its place changes


def _env_int(name: str, default: int) -> int:
    try:
        v = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return v if v >= 1 else default


def default_slots(platform: str | None = None) -> int:
    """Computations at once when not configured: one per usable CPU core but one, or ``ACCELERATOR_SLOTS`` when JAX
    runs on a GPU or TPU (then ``max_active`` admits ``ACTIVE_PER_SLOT`` times as many trainers)."""
    platform = platform or platform_name()
    return ACCELERATOR_SLOTS if platform in ("gpu", "tpu") else max(1, usable_cpus() - 1)


class TurnCancelled(Exception):
    """The worker waiting for a turn was stopped; it left the line."""


class TurnDeferred(Exception):
    """The worker waiting for a turn has a message to read first; it keeps its place in the line."""


class Scheduler:
    """Admission (``join`` / ``leave``) and fair turns (``turn``) for training workers; thread-safe."""

    def __init__(self, slots: int | None = None, max_active: int | None = None, clock=time.monotonic):
        self.slots = int(slots or _env_int("FLOWLAB_TRAIN_SLOTS", default_slots()))
        self.max_active = int(max_active or _env_int("FLOWLAB_MAX_TRAINERS", ACTIVE_PER_SLOT * self.slots))
        self.clock = clock
        self._cv = threading.Condition()
        self._active: list = []  # admitted workers, in order of admission
        self._line: deque = deque()  # workers waiting for admission
        self._turns: deque = deque()  # admitted workers waiting for a slot for a chunk, first come first served
        self._builds: deque = deque()  # workers waiting for a slot to build
        self._waiting: set = set()  # workers inside turn() now (one that deferred keeps its place, skipped meanwhile)
        self._busy = 0
        self._building = 0  # builds holding a slot
        self._last_build = False  # the last slot granted went to a build

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
            for line in (self._turns, self._builds):
                if worker in line:
                    line.remove(worker)
            self._admit()
            self._cv.notify_all()

    def _admit(self):
        while self._line and len(self._active) < self.max_active:
            self._active.append(self._line.popleft())

    # ---- turns -------------------------------------------------------------------------------------------------------
    def _next(self):
        """The worker to get the next free slot: the first one waiting in the build line or in the chunk line;
        when both wait, the lines alternate."""
        build = next((w for w in self._builds if w in self._waiting), None)
        chunk = next((w for w in self._turns if w in self._waiting), None)
        if build is not None and (chunk is None or not self._last_build):
            return build
        return chunk

    @contextmanager
    def turn(self, worker, cancelled: Callable[[], bool] | None = None, deferred: Callable[[], bool] | None = None,
             build: bool = False):
        """Hold one slot for one chunk (``build``: for building a trainer); yields the seconds waited for it.  Turns
        go in arrival order, builds and chunks alternating.  The wait ends with ``TurnCancelled`` (the place is
        given up) as soon as ``cancelled()`` is true (a worker stopped while in line must not stay queued behind a
        long compile), and with ``TurnDeferred`` (the place is kept for the next call) when ``deferred()`` is true
        and the slot is not free for this worker yet: its messages are read within one turn, not after it."""
        t0 = self.clock()
        line = self._builds if build else self._turns
        with self._cv:
            if worker not in line:
                line.append(worker)
            self._waiting.add(worker)
            try:
                while not (self._busy < self.slots and self._next() is worker):
                    if cancelled is not None and cancelled():
                        line.remove(worker)
                        raise TurnCancelled
                    if deferred is not None and deferred():
                        raise TurnDeferred
                    self._cv.wait(0.5)
            finally:
                self._waiting.discard(worker)
                self._cv.notify_all()
            line.remove(worker)
            self._busy += 1
            self._building += build
            self._last_build = build
        try:
            yield self.clock() - t0
        finally:
            with self._cv:
                self._busy -= 1
                self._building -= build
                self._cv.notify_all()

    def wake(self):
        """A worker got a message: waiters check ``cancelled`` and ``deferred`` now rather than at the next poll."""
        with self._cv:
            self._cv.notify_all()

    def redraw_interval(self, queued: bool = False) -> float:
        """Seconds between a live page's redraws: ``REDRAW_BASE_S`` with a few sessions, ``REDRAW_PER_SESSION_S``
        more per session training, waiting or building here (each redraw costs the server a script run and the
        browser a frame), never longer than ``REDRAW_MOST_S``; ``REDRAW_QUEUED_S`` for a session waiting in line."""
        if queued:
            return REDRAW_QUEUED_S
        with self._cv:
            n = len(self._active) + len(self._line) + len(self._builds) + self._building
        return min(REDRAW_MOST_S, max(REDRAW_BASE_S, REDRAW_PER_SESSION_S * n))

    def stats(self) -> dict:
        with self._cv:
            return {"slots": self.slots, "max_active": self.max_active, "active": len(self._active),
                    "waiting": len(self._line), "busy": self._busy,
                    "building": len(self._builds) + self._building}
_DEFAULT: Scheduler | None = None
_DEFAULT_LOCK = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process-wide scheduler (made on first use from the environment)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Scheduler()
        return _DEFAULT
