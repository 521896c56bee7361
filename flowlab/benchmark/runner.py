"""Running a grid of points: one point per ``step()`` (``BenchmarkRun``), as a generator (``iter_benchmark``), to the
end with a progress callback that may cancel (``run_benchmark``), or in a background thread whose snapshot a page
polls (``BenchmarkWorker``, which ends when its browser session does).  Every point passes ``measure.guard`` before
its inputs are made; a run with a ``time_limit`` skips the points left once its measuring time is used up.  Never
imports streamlit, never changes global JAX configuration."""
from __future__ import annotations

import copy
import threading
import time

from ..budget import duration_text, error_line
from ..system import load_average, system_info
from .config import BenchConfig
from .measure import default_mem_limit, guard, make_inputs, measure_point
from .result import BenchResult, Point, method_label

TIMING_NOTE = ("median over repeats of one gradient evaluation (forward + backward), block_until_ready, compiled "
               "ahead of time, one warm-up call excluded")


class BenchmarkRun:
    """A grid run that advances one point per ``step()``: D in the outer loop, methods inner (the methods being
    compared at one D are measured close together in time, so machine noise hits them alike)."""

    def __init__(self, config: BenchConfig, mem_limit: int | None = None, note: str = "",
                 time_limit: float | None = None):
        self.config = config
        self.time_limit = time_limit  # seconds of measuring (compile, warm-up, samples) the whole run may take
        self.busy_s = 0.0
        self.plan = [(d, m) for d in config.dims for m in config.methods]
        self.index = 0
        self.cancelled = False
        self._inputs = (None, None)
        self._stopped = {}
        self._t0 = time.time()
        self.mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
        info = system_info()
        self.result = BenchResult(meta={
            **info, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "label": f"{info['device']} · "
            f"{time.strftime('%Y-%m-%d')}", "note": note, "load_average_start": load_average(),
            "dims": list(config.dims), "methods": list(config.methods), "batch": config.batch,
            "layers": config.layers, "dtype": "float32", "repeats": config.repeats, "cap_s": config.cap,
            "mem_limit_bytes": self.mem_limit, "time_limit_s": time_limit, "fit_range": list(config.fit_range),
            "seed": config.seed, "lam": config.lam, "activation": "smooth_leaky_relu", "init": "identity_noise",
            "timing": TIMING_NOTE},
            points=[])

    @property
    def total(self) -> int:
        return len(self.plan)

    @property
    def finished(self) -> bool:
        return self.cancelled or self.index >= len(self.plan)

    @property
    def next_task(self):
        return None if self.finished else self.plan[self.index]

    def cancel(self):
        self.cancelled = True
        self._finish()

    def step(self, should_stop=None) -> Point | None:
        """Measure (or skip) the next planned point; None when the run is over."""
        if self.finished:
            return None
        dim, method = self.plan[self.index]
        t0 = time.perf_counter()
        previous = [p for p in self.result.points if p.method == method]
        if method in self._stopped:
            point = Point(method, dim, "skipped", note=f"{method} was stopped at D={self._stopped[method]}")
        elif self.time_limit is not None and self.busy_s > self.time_limit:
            point = Point(method, dim, "skipped", note=f"the run used its {duration_text(self.time_limit)} of "
                                                       "measuring time")
        else:
            point = guard(method, dim, self.config, previous, self.mem_limit)  # before any input exists
            if point is None:
                if self._inputs[0] != dim:
                    self._inputs = (None, None)  # free the previous D's arrays first
                    self._inputs = (dim, make_inputs(dim, self.config))
                point = measure_point(method, dim, self.config, previous, self.mem_limit, self._inputs[1],
                                      should_stop)
            if point.status != "ok" or "stopped after" in point.note:
                self._stopped[method] = dim
        self.busy_s += time.perf_counter() - t0
        self.result.points.append(point)
        self.index += 1
        if self.finished:
            self._finish()
        return point

    def _finish(self):
        self._inputs = (None, None)
        self.result.meta.update({"load_average_end": load_average(), "duration_s": round(time.time() - self._t0, 2),
                                 "cancelled": bool(self.cancelled),
                                 "completed_points": len(self.result.points), "planned_points": len(self.plan)})


def iter_benchmark(config: BenchConfig, **kw):
    """Generator over the points of a run (``run.result`` holds everything so far); stop iterating to cancel."""
    run = BenchmarkRun(config, **kw)
    try:
        while not run.finished:
            yield run.step(), run
    finally:
        if not run.finished:
            run.cancel()


def run_benchmark(config: BenchConfig, on_point=None, **kw) -> BenchResult:
    """Run the whole grid; ``on_point(point, run)`` is called after every point and may return False to cancel."""
    run = BenchmarkRun(config, **kw)
    while not run.finished:
        point = run.step()
        if on_point is not None and on_point(point, run) is False:
            run.cancel()
    return run.result


_MACHINE_LOCK = threading.Lock()  # one point at a time per process: concurrent sessions would spoil each other's timing


class BenchmarkWorker:
    """Runs a grid in a background thread; a UI polls ``snapshot()`` and may ``cancel()`` (effective after the
    current point's sample).  ``alive()`` (the page's ``session_alive()``; None: always) is asked between points and
    between samples: once the browser session is gone the run is cancelled.  Points of workers in the same process
    take turns (``waiting`` while another holds the machine)."""

    def __init__(self, config: BenchConfig, alive=None, **kw):
        self.run = BenchmarkRun(config, **kw)
        self._alive = alive
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.error = None
        self.waiting = False
        self.current = None
        self.thread = threading.Thread(target=self._loop, name="flowlab-benchmark", daemon=True)

    def start(self) -> "BenchmarkWorker":
        self.thread.start()
        return self

    def cancel(self):
        self._cancel.set()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def should_stop(self) -> bool:
        """Cancelled, or the session that started the run has ended (which cancels it)."""
        if not self._cancel.is_set() and self._alive is not None and not self._alive():
            self._cancel.set()
        return self._cancel.is_set()

    def _loop(self):
        try:
            while not self.run.finished and not self.should_stop():
                with self._lock:
                    self.current = self.run.next_task
                self.waiting = True
                with _MACHINE_LOCK:
                    self.waiting = False
                    if self.should_stop():
                        break
                    point = self.run.step(should_stop=self.should_stop)
                with self._lock:
                    self.current = None if point is None else self.run.next_task
        except Exception as e:  # noqa: BLE001 - reported to the UI instead of dying silently
            self.error = error_line(e)
        finally:
            with self._lock:
                if not self.run.finished:
                    self.run.cancel()
                self.current = None

    def snapshot(self) -> dict:
        with self._lock:
            res = BenchResult(copy.deepcopy(self.run.result.meta), list(self.run.result.points))
            return {"result": res, "done": len(res.points), "total": self.run.total, "current": self.current,
                    "finished": self.run.finished and not self.alive, "cancelled": self.run.cancelled,
                    "waiting": self.waiting, "error": self.error}


def progress(snapshot: dict) -> tuple[float, str]:
    """(fraction done, one line) for a progress bar from a worker's ``snapshot()``."""
    done, total = snapshot["done"], snapshot["total"]
    fraction = done / max(total, 1)
    if snapshot["finished"]:
        state = "cancelled" if snapshot["cancelled"] else "finished"
        return fraction, (f"live run {state}: {done} of {total} points in "
                          f"{snapshot['result'].meta.get('duration_s', 0):.0f} s")
    cur = snapshot["current"]
    what = ("waiting for another session's benchmark" if snapshot["waiting"] else
            f"measuring {method_label(cur[1])} at D = {cur[0]}" if cur else "starting" if done == 0 else "finishing")
    return fraction, f"point {min(done + 1, total)} of {total}: {what}…"
