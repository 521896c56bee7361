"""Measuring one point (method, D): the cost of one gradient evaluation, with the guards that stop a slow or huge
method instead of hanging or crashing the run (Gresele et al. 2020, Fig. 1 left / App. H.1; Keller et al. 2021,
Fig. 4).

A point is a fully connected flow with ``layers`` layers, a batch of ``batch`` standard-normal rows and one call of the
method's gradient function ``(params, batch, hyper) -> (grads, metrics)`` from ``flowlab.gradients`` (forward +
backward).  The function is compiled ahead of time (compile time recorded, never counted), called once to warm up,
then sampled ``repeats`` times by ``flowlab.timing.sample_times`` (calls looped until one sample lasts
``MIN_SAMPLE_S``); the point's time is the median.

Guards, all before the point's inputs exist (``guard``):
* memory: the analytic estimate of ``flowlab.budget`` (the inputs W, b, R and the batch, plus the method's compiled
  call) against the memory limit (``default_mem_limit`` on the command line, the session's budget on the page):
  ``too_big``.  After compiling, XLA's own plan refines it; a run-time out-of-memory error is ``too_big`` as well,
  any other error is ``error``.
* time: its cost predicted from the method's previous point (exponent = the larger of the registry's cost ``order``
  and the locally measured slope), or from its size for a method's first point; if warm-up plus one timed call would
  exceed the per-point cap ``cap``, the point is ``too_slow``.  Sampling ends early once the cap is used up; a point
  that still ran past the cap stops its method after it.

``grid_estimate`` adds the points of a whole grid up before a run; ``grid_refusal`` is the sentence for a grid that
cannot run."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import gradients, timing
from ..budget import (FLOAT_BYTES, Budget, duration_text, error_line, gradient_cost, is_oom, largest_fitting,
                      learned_matrices, local_budget, nice_floor, plural, rates_here, size_text)
from ..budget import planned_bytes as memory_analysis
from ..flow import FlowSpec
from ..gradients import REGISTRY, check_method
from ..metrics import fit_slope
from ..system import device_peak_bytes, memory_available, platform_name
from .config import MAX_DIM, MIN_DIM, BenchConfig
from .result import Point

MIN_SAMPLE_S = 2e-3  # very fast calls are looped until one timed sample lasts at least this long
MAX_NUMBER = 1024  # at most this many calls per sample
MAX_EXPONENT = 4.0  # a measured local slope above this is noise (a hiccup between two points), not the cost law
COMPILE_S = 1.5  # seconds a point's compilation takes at most on a CPU (measured 0.3 - 1.3 s), for grid estimates


def default_mem_limit() -> int:
    """Bytes a single point may use on this machine (``flowlab.budget.local_budget``): 85 % of the free device memory
    on an accelerator, half the available RAM on CPU (the host keeps the rest), 2 GiB when neither can be read,
    lowered by FLOWLAB_SESSION_MEMORY_MB when it is set."""
    return local_budget(available=memory_available(), platform=platform_name()).memory


def learns_inverse(config: BenchConfig) -> bool:
    """The inputs carry R (the self-normalizing flow's learned inverses) when a chosen method needs it."""
    return any(REGISTRY[m].learned_inverse for m in config.methods)


def inputs_bytes(dim: int, config: BenchConfig) -> int:
    """Bytes of one D's inputs at their peak: W (numpy, then JAX), b, R = Wᵀ or a transient second W, the batch."""
    L, D = config.layers, int(dim)
    return FLOAT_BYTES * (2 * L * D * D + L * D + config.batch * D)


def point_cost(method: str, dim: int, config: BenchConfig) -> tuple[float, float]:
    """(bytes, seconds) of a point, from its shapes alone: the inputs, plus the method's compiled call less the
    arguments the inputs already hold; the seconds of one evaluation plus a call's fixed cost."""
    L, D, B = config.layers, int(dim), config.batch
    call, seconds = gradient_cost(method, L, B, D)
    args = FLOAT_BYTES * (learned_matrices(method) * L * D * D + L * D + B * D)
    held = FLOAT_BYTES * ((2 if learns_inverse(config) else 1) * L * D * D + L * D + B * D)
    return max(inputs_bytes(D, config), held + call - args), seconds + rates_here().call_s


def make_inputs(dim: int, config: BenchConfig):
    """Parameters and a batch for one D: W = I + Xavier-normal noise of gain 0.01, b = 0, R = Wᵀ when a chosen method
    learns inverses (the SNF initialisation of ``flow.init_params(init="identity_noise", with_R=True)``: well
    conditioned at any D) and standard-normal rows.  Drawn with numpy, so no per-shape JAX compilation is spent on
    making inputs; at most two L·D² arrays exist at any moment (``inputs_bytes``).  Call it after ``guard``."""
    spec = FlowSpec(int(dim), config.layers)
    rng = np.random.default_rng(config.seed)
    L, D = config.layers, int(dim)
    W = rng.standard_normal((L, D, D), dtype=np.float32)
    W *= np.float32(0.01 * math.sqrt(2.0 / (D + D)))
    diag = np.arange(D)
    W[:, diag, diag] += np.float32(1.0)  # + I, without a D×D identity
    params = {"W": jnp.asarray(W), "b": jnp.zeros((L, D), jnp.float32)}
    del W
    if learns_inverse(config):
        params["R"] = jnp.swapaxes(params["W"], -1, -2).copy()
    x = jnp.asarray(rng.standard_normal((config.batch, D), dtype=np.float32))
    return spec, params, x


def predict_time(method: str, dim: int, previous: list) -> float | None:
    """Seconds per evaluation predicted for ``dim`` from the method's earlier measured points: extrapolated from the
    last point with exponent max(registry cost order, slope of the last two points).  None without a previous
    point."""
    prev = sorted((p for p in previous if p.status == "ok" and p.dim < dim), key=lambda p: p.dim)
    if not prev:
        return None
    exponent = REGISTRY[check_method(method)].order
    if len(prev) >= 2:
        exponent = max(exponent, min(MAX_EXPONENT, fit_slope([prev[-2].dim, prev[-1].dim],
                                                             [prev[-2].time_s, prev[-1].time_s])))
    return prev[-1].time_s * (dim / prev[-1].dim) ** exponent


def guard(method: str, dim: int, config: BenchConfig, previous=(), mem_limit: int | None = None) -> Point | None:
    """The checks a point passes before anything is built for it: a ``too_big`` or ``too_slow`` Point (nothing
    allocated, nothing compiled), or None when it may run."""
    method = check_method(method)
    mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
    need, seconds = point_cost(method, dim, config)
    if need > mem_limit:
        return Point(method, dim, "too_big", note=f"needs about {size_text(need)} (estimated before building it), "
                                                  f"over the {size_text(mem_limit)} limit")
    previous = list(previous)
    pred = predict_time(method, dim, previous)
    last_compile = next((p.compile_s for p in sorted(previous, key=lambda p: -p.dim) if p.compile_s), 0.0)
    how = "" if pred is not None else " (from its size)"
    pred = seconds if pred is None else pred
    if last_compile + 2 * pred > config.cap:
        return Point(method, dim, "too_slow", note=f"predicted {pred:.3g} s per evaluation{how}: warm-up plus one "
                                                   f"timed call would exceed the {config.cap:g} s per-point cap")
    return None


def measure_point(method: str, dim: int, config: BenchConfig, previous=(), mem_limit: int | None = None,
                  inputs=None, should_stop=None) -> Point:
    """Time one gradient evaluation of ``method`` at dimension ``dim`` (see the module docstring for the guards).
    ``previous`` are this method's earlier points (for the prediction), ``inputs`` an optional (spec, params, x) from
    ``make_inputs`` shared between methods, ``should_stop()`` ends the sampling early (cancel).  ``guard`` runs first,
    so a point over its limits builds nothing.  Every duration is read from ``flowlab.timing.clock``."""
    method = check_method(method)
    t_start = timing.clock()
    mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
    refused = guard(method, dim, config, previous, mem_limit)
    if refused is not None:
        return refused
    try:
        spec, params, x = inputs if inputs is not None else make_inputs(dim, config)
        held = sum(int(v.nbytes) for v in jax.tree_util.tree_leaves((params, x)))  # every input, R included
        if not REGISTRY[method].learned_inverse:
            params = {k: v for k, v in params.items() if k != "R"}
        args = (params, x, {"lam": jnp.asarray(config.lam, jnp.float32)})
        t0 = timing.clock()
        compiled = jax.jit(gradients.make_grad_fn(method, spec)).lower(*args).compile()
        compile_s = timing.clock() - t0
        mem, detail = memory_analysis(compiled)
        if mem is not None and mem - detail["argument_size_in_bytes"] + held > mem_limit:
            return Point(method, dim, "too_big", compile_s=compile_s, mem_bytes=mem, mem_detail=detail,
                         wall_s=timing.clock() - t_start,
                         note=f"needs about {size_text(mem - detail['argument_size_in_bytes'] + held)} (XLA's plan "
                              f"and the inputs), over the {size_text(mem_limit)} limit")

        def call():
            jax.block_until_ready(compiled(*args))

        t0 = timing.clock()
        call()  # warm-up: first run of the compiled executable, not counted
        first = timing.clock() - t0
        times, number = timing.sample_times(call, repeats=config.repeats, min_sample_s=MIN_SAMPLE_S,
                                            max_number=MAX_NUMBER, deadline=t_start + config.cap,
                                            should_stop=should_stop)
    except Exception as e:  # noqa: BLE001 - one method failing must not end the run
        status = "too_big" if is_oom(e) else "error"
        return Point(method, dim, status, wall_s=timing.clock() - t_start,
                     note=("out of memory: " if status == "too_big" else "") + error_line(e))
    wall = timing.clock() - t_start
    note = ""
    if len(times) < config.repeats:
        note = f"{len(times)} of {config.repeats} repeats fitted in the {config.cap:g} s cap"
    if wall > config.cap:
        note = (note + "; " if note else "") + f"this point took {wall:.3g} s > cap: stopped after this D"
    return Point(method, dim, "ok", time_s=float(statistics.median(times)), times_s=times, calls_per_sample=number,
                 compile_s=compile_s, first_call_s=first, mem_bytes=mem, mem_detail=detail,
                 device_peak_bytes=device_peak_bytes(), wall_s=wall, note=note)


# ---- a whole grid ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridEstimate:
    """A grid's points by what the analytic guard would do (``runs``, ``too_big``, ``too_slow``), the seconds the
    running ones take at most (compile, warm-up and the repeats, each point within its cap) and the largest one's
    bytes."""

    runs: int
    too_big: int
    too_slow: int
    seconds: float
    peak_bytes: float


def _point_seconds(method: str, dim: int, config: BenchConfig) -> float:
    _, t = point_cost(method, dim, config)
    return min(config.cap, COMPILE_S + (2 + config.repeats) * max(t, MIN_SAMPLE_S))


def grid_estimate(config: BenchConfig, mem_limit: int | None = None) -> GridEstimate:
    """What a run of ``config`` will do, from the shapes alone (nothing is built): a method stops at its first point
    over a limit, as the run does."""
    mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
    runs = big = slow = 0
    seconds = peak = 0.0
    for m in config.methods:
        for i, d in enumerate(config.dims):
            p = guard(m, d, config, (), mem_limit)
            if p is not None:
                big, slow = big + (p.status == "too_big"), slow + (p.status == "too_slow")
                break
            runs += 1
            seconds += _point_seconds(m, d, config)
            peak = max(peak, point_cost(m, d, config)[0])
    return GridEstimate(runs, big, slow, seconds, peak)


def grid_refusal(config: BenchConfig, budget: Budget) -> str | None:
    """None when some point of the grid can run within ``budget`` (memory per point, predicted seconds of the whole
    run), else one sentence: what is too large and what fits."""
    est = grid_estimate(config, budget.memory)
    if est.runs == 0:
        m, d = min(((m, config.dims[0]) for m in config.methods), key=lambda md: point_cost(*md, config)[0])
        need, seconds = point_cost(m, d, config)
        fits = largest_fitting(lambda v: guard(m, v, config, (), budget.memory) is None, MIN_DIM, min(d, MAX_DIM))
        advice = f"use D up to {nice_floor(fits):,}" if fits else "use a smaller batch or fewer layers"
        if need > budget.memory:
            return (f"Nothing in this grid can run: its smallest point ({REGISTRY[m].label} at D = {d:,}) needs about "
                    f"{size_text(need)}; {budget.allows(('memory',))}: {advice}.")
        return (f"Nothing in this grid can run: its smallest point ({REGISTRY[m].label} at D = {d:,}) would take "
                f"about {duration_text(seconds)} per evaluation, over the {config.cap:g} s per-point cap: {advice}, "
                "or raise the cap.")
    if budget.seconds is not None and est.seconds > budget.seconds:
        return (f"This run needs up to about {duration_text(est.seconds)} of compute ({plural(est.runs, 'point')}, "
                f"each within the {config.cap:g} s cap); {budget.allows(('time',))}: use fewer dimensions or "
                "methods, or a lower cap.")
    return None
