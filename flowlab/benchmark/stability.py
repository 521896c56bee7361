"""Whether a timing run is stable enough to be the Timing page's headline, judged from the run's own repeats.

Each point holds its repeats (``Point.times_s``); their middle half (25th to 75th percentile, ``quartiles``) is the
point's spread.  From it follow

* the speed-up t(exact) / t(relative) at the largest D where both were measured: the medians' ratio, and the range
  q25(exact) / q75(relative) .. q75(exact) / q25(relative) (``ratio_spread``);
* each method's log-log slope over the D of the fit window: the least-squares slope of the medians, and the smallest
  and largest slope any choice of times inside the points' middle halves gives (``slope_spread``; the slope is
  linear in the log-times, so the extremes take q25 or q75 at each D by the sign of its weight).

``stability`` applies the rule of ``presets.TIMING_STABLE`` (enough repeats, enough D in the window, a narrow speed-up
range and narrow slope ranges, a machine not busy at the start); ``choose_headline`` keeps a recorded run's headline unless the live run passes.  A run
on a busy 2-core CPU typically fails, and then says why (Gresele et al. 2020 Fig. 1 left is the lesson it would
otherwise contradict by accident).  Pure numpy: never imports streamlit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import presets
from ..gradients import REGISTRY
from .config import FIT_RANGE
from .result import HEADLINE, BenchResult

RULE = presets.TIMING_STABLE


class Spread(NamedTuple):
    """A figure from the medians (``value``) and its range over the repeats' middle halves (``lo`` .. ``hi``)."""

    value: float
    lo: float
    hi: float


def quartiles(times) -> tuple[float, float]:
    """(25th, 75th percentile) of a point's repeats, linearly interpolated (the middle half of the repeats)."""
    t = np.asarray(times, dtype=float)
    return float(np.percentile(t, 25)), float(np.percentile(t, 75))


def _point_times(p) -> list:
    return list(p.times_s) or [p.time_s]


def ratio_spread(run: BenchResult, fast: str = HEADLINE[0], ref: str = HEADLINE[1]):
    """(D, Spread of t(ref) / t(fast)) at the largest D where both were measured, or (None, None)."""
    a = {p.dim: p for p in run.ok(fast)}
    b = {p.dim: p for p in run.ok(ref)}
    common = sorted(set(a) & set(b))
    if not common:
        return None, None
    d = common[-1]
    (f25, f75), (r25, r75) = quartiles(_point_times(a[d])), quartiles(_point_times(b[d]))
    return d, Spread(b[d].time_s / a[d].time_s, r25 / f75, r75 / f25)


def window_points(run: BenchResult, method: str, fit_range=None) -> list:
    """The measured points of ``method`` inside the fit window (the run's, else the preset's), ascending D."""
    lo, hi = fit_range or run.meta.get("fit_range") or FIT_RANGE
    return [p for p in run.ok(method) if lo <= p.dim <= hi]


def slope_spread(run: BenchResult, method: str, fit_range=None) -> Spread | None:
    """Least-squares slope of log(median time) against log D over the fit window, with the range of slopes the
    middle halves of the repeats allow; None with fewer than two distinct D in the window."""
    pts = window_points(run, method, fit_range)
    x = np.log([p.dim for p in pts])
    if len(np.unique(x)) < 2:
        return None
    w = (x - x.mean()) / ((x - x.mean()) ** 2).sum()  # slope = Σ w_i · log t_i
    q = np.log([quartiles(_point_times(p)) for p in pts])
    med = np.log([p.time_s for p in pts])
    up, down = np.where(w > 0, q[:, 1], q[:, 0]), np.where(w > 0, q[:, 0], q[:, 1])
    return Spread(float(w @ med), float(w @ down), float(w @ up))


def start_load(run: BenchResult) -> tuple[float | None, int]:
    """(1-minute load average when the run started, or None where the system gives none; the CPUs it could use)."""
    load = run.meta.get("load_average_start")
    threads = run.meta.get("threads") or {}
    cores = int(threads.get("affinity_cpus") or threads.get("cpu_count") or 1)
    return (float(load[0]) if load else None), max(1, cores)


@dataclass(frozen=True)
class Stability:
    """The verdict on a run: ``stable``, the speed-up at ``dim`` with its spread, each headline method's slope with
    its spread, and ``reasons`` (short phrases, empty when stable) why it is not."""

    stable: bool
    dim: int | None
    ratio: Spread | None
    slopes: dict
    reasons: tuple

    def spread_text(self) -> str:
        """'18.1× (16.6–21.8×) at D = 4096; slope of relative 2.04 (1.99–2.14), of exact 2.58 (2.51–2.66)': each
        figure from the medians, its range over the middle half of the repeats in brackets ('' when there is
        nothing to say)."""
        parts = []
        if self.ratio is not None:
            r = self.ratio
            parts.append(f"{r.value:.1f}× ({r.lo:.1f}–{r.hi:.1f}×) at D = {self.dim}")
        slopes = [f"{REGISTRY[m].short if m in REGISTRY else m} {s.value:.2f} ({s.lo:.2f}–{s.hi:.2f})"
                  for m, s in self.slopes.items() if s is not None]
        if slopes:
            parts.append("slope of " + ", of ".join(slopes))
        return "; ".join(parts)


def stability(run: BenchResult, rule: dict | None = None, fit_range=None) -> Stability:
    """Apply ``rule`` (default ``presets.TIMING_STABLE``) to ``run``: every point used has at least ``repeats``
    repeats; both headline methods have at least ``dims`` D in the fit window; the speed-up's range at the largest
    common D is within a factor ``ratio`` (hi / lo); each slope's range is at most ``slope`` wide; the load average at
    the start was at most ``load_per_core`` per usable CPU (where the system reports one).  The repeats' spread misses
    a point measured entirely while other work ran; the load catches the busy machine that causes it."""
    rule = {**RULE, **(rule or {})}
    lo, hi = fit_range or run.meta.get("fit_range") or FIT_RANGE
    reasons = []
    dim, ratio = ratio_spread(run)
    slopes = {m: slope_spread(run, m, (lo, hi)) for m in HEADLINE}
    used = [p for m in HEADLINE for p in window_points(run, m, (lo, hi))]
    if ratio is None:
        reasons.append(f"{' and '.join(HEADLINE)} were not both measured at one D")
    else:
        used += [p for m in HEADLINE for p in run.ok(m) if p.dim == dim]
        if ratio.hi / ratio.lo > rule["ratio"]:
            reasons.append(f"the speed-up at D = {dim} ranges {ratio.lo:.1f}–{ratio.hi:.1f}×, a factor "
                           f"{ratio.hi / ratio.lo:.2f} > {rule['ratio']:g}")
    few = sorted({(p.method, p.dim, len(p.times_s)) for p in used if len(p.times_s) < rule["repeats"]},
                 key=lambda t: (t[1], t[0]))
    if few:
        m, d, n = few[0]
        reasons.append(f"{len(few)} point{'s' if len(few) > 1 else ''} with fewer than {rule['repeats']} repeats, "
                       f"e.g. {m} at D = {d} with {n}")
    load, cores = start_load(run)
    if load is not None and load > rule["load_per_core"] * cores:
        reasons.append(f"the machine was busy, load average {load:.1f} at the start on {cores} "
                       f"core{'s' if cores > 1 else ''}")
    for m in HEADLINE:
        n = len(window_points(run, m, (lo, hi)))
        s = slopes[m]
        if n < rule["dims"]:
            reasons.append(f"{m} has {n} D in [{lo:g}, {hi:g}], the slope needs {rule['dims']}")
        elif s is not None and s.hi - s.lo > rule["slope"]:
            reasons.append(f"the slope of {m} ranges {s.lo:.2f}–{s.hi:.2f}, wider than {rule['slope']:g}")
    return Stability(not reasons, dim, ratio, slopes, tuple(reasons))


def rule_text(rule: dict | None = None, fit_range=FIT_RANGE) -> str:
    """The rule in one sentence, from its numbers (what the page states)."""
    r = {**RULE, **(rule or {})}
    lo, hi = fit_range
    return (f"A live run replaces the recorded headline only when it is stable: {' and '.join(HEADLINE)} measured at "
            f"{r['dims']} or more D in [{lo:g}, {hi:g}], every point with {r['repeats']} or more repeats, and over the "
            f"middle half of each point's repeats (25th–75th percentile) the speed-up at the largest D known within "
            f"a factor {r['ratio']:g} and each slope within a range {r['slope']:g} wide (the slopes to tell apart, "
            f"2 and 3, are 1 apart), on a machine whose load average at the start was at most {r['load_per_core']:g} "
            "per core (a busy machine times the other work too).")


class Headline(NamedTuple):
    """Which run the page's headline comes from (``source``: "live" or "recorded"), the live run's verdict (None
    without a finished live run) and one sentence saying why."""

    run: BenchResult | None
    source: str
    check: Stability | None
    why: str


def choose_headline(live: BenchResult | None, recorded, platform: str | None = None) -> Headline:
    """The headline's run: a finished ``live`` run when it is stable, else the first of ``recorded`` (the runs
    shown) measured on ``platform`` (else the first shown); an unstable live run only when nothing is recorded, and
    then said to be unstable."""
    recorded = [r for r in recorded if r is not None]
    ref = next((r for r in recorded if platform and r.meta.get("platform") == platform), None)
    ref = ref or (recorded[0] if recorded else None)
    named = f"the recorded run {ref.label}" if ref is not None else ""
    if live is None or not live.points:
        return Headline(ref, "recorded", None, f"Headline from {named}." if ref is not None else "")
    check = stability(live)
    if check.stable:
        return Headline(live, "live", check, "Headline from the live run: it is stable by the rule below.")
    why = "; ".join(check.reasons)
    if ref is not None:
        return Headline(ref, "recorded", check, f"Headline kept from {named}: the live run is not stable ({why}).")
    return Headline(live, "live", check, f"The live run is not stable ({why}): its figures are not a conclusion.")
