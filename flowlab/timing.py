"""The one timing helper: seconds per call of a function, from repeated samples.

Used by the Timing engine (``flowlab.benchmark``), the Learn page's cost lesson and every ``benchmarks/`` script.
Standard library only (no numpy, no JAX), so a child interpreter can import it in milliseconds.  The caller makes
the function block until its result exists (``jax.block_until_ready``) and does any warm-up (compilation) first."""
from __future__ import annotations

import statistics
import time

clock = time.perf_counter


def _sample(fn, number: int) -> float:
    t0 = clock()
    for _ in range(number):
        fn()
    return clock() - t0


def sample_times(fn, repeats: int = 5, min_sample_s: float = 2e-3, max_number: int = 1 << 16,
                 deadline: float | None = None, should_stop=None) -> tuple[list[float], int]:
    """(seconds per call of each sample, calls per sample).

    One sample times ``number`` back-to-back calls, ``number`` doubling from 1 until a sample lasts at least
    ``min_sample_s`` (so very fast calls are not lost in the clock's resolution); the sample that reaches it is the
    first of the ``repeats``.  Sampling ends early, after at least one sample, when the next sample would end past
    ``deadline`` (a ``clock()`` value) or ``should_stop()`` returns True."""
    if int(repeats) < 1:
        raise ValueError(f"Take at least one sample, got repeats={repeats}.")
    number = 1
    while True:
        t = _sample(fn, number)
        if t >= min_sample_s or number >= max_number:
            break
        number *= 2
    times = [t / number]
    while len(times) < int(repeats):
        if deadline is not None and clock() + times[-1] * number > deadline:
            break
        if should_stop is not None and should_stop():
            break
        times.append(_sample(fn, number) / number)
    return times, number


def median_time(fn, **kw) -> float:
    """Median seconds per call over ``sample_times`` (robust to one slow sample on a shared machine)."""
    return statistics.median(sample_times(fn, **kw)[0])


def best_time(fn, **kw) -> float:
    """Fastest seconds per call over ``sample_times`` (the cost with the least interference)."""
    return min(sample_times(fn, **kw)[0])
