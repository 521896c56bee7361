"""Measuring one point (method, D): the cost of one gradient evaluation, with the guards that stop a slow or huge
method instead of hanging or crashing the run (Gresele et al. 2020, Fig. 1 left / App. H.1; Keller et al. 2021,
Fig. 4).

A point is a fully connected flow with ``layers`` layers, a batch of ``batch`` standard-normal rows and one call of the
method's gradient function ``(params, batch, hyper) -> (grads, metrics)`` from ``flowlab.gradients`` (forward +
backward).  The function is compiled ahead of time (compile time recorded, never counted), called once to warm up,
then sampled ``repeats`` times by ``flowlab.timing.sample_times`` (calls looped until one sample lasts
``MIN_SAMPLE_S``); the point's time is the median.

Guards:
* time: before a point, its cost is predicted from the method's previous point (exponent = the larger of the
  registry's cost ``order`` and the locally measured slope); if warm-up plus one timed call would exceed the per-point
  cap ``cap``, the point is ``too_slow``.  Sampling ends early once the cap is used up; a point that still ran past
  the cap stops its method after it.
* memory: the compiled executable's memory analysis (arguments + outputs + temporaries - aliased) is compared with a
  limit (half the available RAM on CPU, 85 % of the free device memory on an accelerator) before anything runs:
  ``too_big``.  A run-time out-of-memory error is ``too_big`` as well; any other error is ``error``."""
from __future__ import annotations

import math
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from .. import gradients, timing
from ..flow import FlowSpec
from ..gradients import REGISTRY, check_method
from ..metrics import fit_slope
from ..system import device_peak_bytes, memory_available, platform_name
from .config import BenchConfig
from .result import Point

MIN_SAMPLE_S = 2e-3  # very fast calls are looped until one timed sample lasts at least this long
MAX_NUMBER = 1024  # at most this many calls per sample
MAX_EXPONENT = 4.0  # a measured local slope above this is noise (a hiccup between two points), not the cost law
CPU_FRACTION, ACCELERATOR_FRACTION = 0.5, 0.85  # of the free memory one point may use (the host keeps the rest)
FALLBACK_MEM = 2 << 30  # when neither the device nor the host reports free memory


def default_mem_limit() -> int:
    """Bytes a single point may use: 85 % of the free device memory on an accelerator, half the available RAM on
    CPU (the host keeps the rest), 2 GiB when neither can be read."""
    free = memory_available()
    if free is None:
        return FALLBACK_MEM
    return int((CPU_FRACTION if platform_name() == "cpu" else ACCELERATOR_FRACTION) * free)


def make_inputs(dim: int, config: BenchConfig):
    """Parameters and a batch for one D: W = I + Xavier-normal noise of gain 0.01, b = 0, R = Wᵀ (the SNF
    initialisation of ``flow.init_params(init="identity_noise", with_R=True)``: well conditioned at any D) and
    standard-normal rows.  Drawn with numpy, so no per-shape JAX compilation is spent on making inputs."""
    spec = FlowSpec(int(dim), config.layers)
    rng = np.random.default_rng(config.seed)
    L, D = config.layers, int(dim)
    W = rng.standard_normal((L, D, D), dtype=np.float32)
    W *= np.float32(0.01 * math.sqrt(2.0 / (D + D)))
    W += np.eye(D, dtype=np.float32)[None]
    params = {"W": jnp.asarray(W), "b": jnp.zeros((L, D), jnp.float32),
              "R": jnp.asarray(np.ascontiguousarray(np.swapaxes(W, -1, -2)))}
    x = jnp.asarray(rng.standard_normal((config.batch, D), dtype=np.float32))
    return spec, params, x


def is_oom(e: BaseException) -> bool:
    """True for an out-of-memory error of the host (MemoryError) or of XLA (RESOURCE_EXHAUSTED)."""
    msg = str(e).lower()
    return isinstance(e, MemoryError) or "resource_exhausted" in msg or "out of memory" in msg or "oom" in msg.split()


def error_line(e: BaseException) -> str:
    """'Type: first line of the message' (at most 200 characters of it): an error in one line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


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


def memory_analysis(compiled):
    """(bytes, detail) of a compiled executable: arguments + outputs + temporaries - aliased; (None, None) when the
    backend gives no analysis."""
    try:
        ma = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - memory analysis is optional
        return None, None
    if ma is None:
        return None, None
    detail = {k: int(getattr(ma, k)) for k in ("argument_size_in_bytes", "output_size_in_bytes",
                                              "temp_size_in_bytes", "alias_size_in_bytes",
                                              "generated_code_size_in_bytes")}
    return (detail["argument_size_in_bytes"] + detail["output_size_in_bytes"] + detail["temp_size_in_bytes"]
            - detail["alias_size_in_bytes"]), detail


def measure_point(method: str, dim: int, config: BenchConfig, previous=(), mem_limit: int | None = None,
                  inputs=None, should_stop=None) -> Point:
    """Time one gradient evaluation of ``method`` at dimension ``dim`` (see the module docstring for the guards).
    ``previous`` are this method's earlier points (for the prediction), ``inputs`` an optional (spec, params, x) from
    ``make_inputs`` shared between methods, ``should_stop()`` ends the sampling early (cancel).  Every duration is
    read from ``flowlab.timing.clock``."""
    method = check_method(method)
    t_start = timing.clock()
    previous = list(previous)
    pred = predict_time(method, dim, previous)
    last_compile = next((p.compile_s for p in sorted(previous, key=lambda p: -p.dim) if p.compile_s), 0.0)
    if pred is not None and last_compile + 2 * pred > config.cap:
        return Point(method, dim, "too_slow", note=f"predicted {pred:.3g} s per evaluation: warm-up plus one timed "
                     f"call would exceed the {config.cap:g} s per-point cap")
    mem_limit = int(mem_limit or config.mem_limit or default_mem_limit())
    try:
        spec, params, x = inputs if inputs is not None else make_inputs(dim, config)
        if not REGISTRY[method].learned_inverse:
            params = {k: v for k, v in params.items() if k != "R"}
        args = (params, x, {"lam": jnp.asarray(config.lam, jnp.float32)})
        t0 = timing.clock()
        compiled = jax.jit(gradients.make_grad_fn(method, spec)).lower(*args).compile()
        compile_s = timing.clock() - t0
        mem, detail = memory_analysis(compiled)
        if mem is not None and mem > mem_limit:
            return Point(method, dim, "too_big", compile_s=compile_s, mem_bytes=mem, mem_detail=detail,
                         wall_s=timing.clock() - t_start,
                         note=f"needs about {mem / 2 ** 30:.3g} GiB, over the {mem_limit / 2 ** 30:.3g} GiB limit")

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
