"""Cost estimates (memory, compute time) checked before any work starts, and the budget they are checked against.

The budget, read from the environment each time it is asked for (a server's operator sets it without code):

    FLOWLAB_SESSION_MEMORY_MB   memory one job may hold at its peak, in MB (2^20 bytes).  Server default 512: ten
                                sessions and the server fit a 2-core, 8 GB laptop.  A command-line run without it may
                                use the machine's share below.
    FLOWLAB_JOB_SECONDS         predicted compute time of one job, in seconds.  Server default 300; no limit on the
                                command line unless it is set.

Neither is ever more than ``MEMORY_FRACTION`` of ``flowlab.system.memory_available()`` (half the free RAM on CPU,
85 % of the free device memory on an accelerator).  A value that is not a positive number is ignored.

Estimates come from the shapes alone, before any array exists.  A compiled call of a gradient method on R rows (the
batch, or a Compare run's full batch) through L layers of width D holds, in float32 words,

    act·L·R·(D+1) + rows·R·(D+1) + matrices·L·D² + jacobian·L·R·D² + data·R·D

(activations kept for the backward pass, per-row work arrays, the D×D weights with their gradients, the full-Jacobian
method's per-row D×D tangents, the batch).  The coefficients are upper bounds of XLA's own memory plans
(``memory_analysis()``, CPU) over L ≤ 64, R ≤ 100 000, D ≤ 65 536 and up to 20 vmapped inits, rounded up; the tests
check them against freshly compiled plans.  Its time is ``element``·L·R·D element-wise operations plus
(``flops``·L·R·D² + ``cubic``·L·D³ + ``jacobian_flops``·L·R·D³) floating-point operations at the speeds of
``RATES``, set at or below what a shared 2-core CPU reached (the estimate errs long, by up to about 5× at large D).
Where a compiled executable exists, ``planned_bytes`` reads XLA's plan to refine the check; the analytic check always
comes first."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Mapping

from .gradients import REGISTRY
from .system import memory_available, platform_name

MB, GiB = 2 ** 20, 2 ** 30
FLOAT_BYTES = 4  # float32: every page and the command line compute in float32
MEMORY_ENV, SECONDS_ENV = "FLOWLAB_SESSION_MEMORY_MB", "FLOWLAB_JOB_SECONDS"
DEFAULT_MEMORY_MB = 512
DEFAULT_JOB_SECONDS = 300.0
MEMORY_FRACTION = {"cpu": 0.5, "accelerator": 0.85}  # of the free memory one job may take at most
SERVER = "this server allows"
FALLBACK_MEMORY = 2 * GiB  # a command-line run when the free memory cannot be read
FIXED_BYTES = 64 * 1024  # the small buffers of any compiled call (what the shape terms miss at tiny sizes)


# ---- the budget --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """What one job may use: ``memory`` bytes at its peak and ``seconds`` of predicted compute (None: no limit).
    The notes, (who, what) pairs such as ("this server allows", "512 MB per session"), end the refusal sentences."""

    memory: int
    seconds: float | None
    memory_note: tuple
    time_note: tuple = ("", "")

    def allows(self, kinds=("memory",)) -> str:
        """'this server allows 512 MB per session and 5 min of compute per job' for ``kinds`` ⊆ (memory, time)."""
        notes = [self.memory_note if k == "memory" else self.time_note for k in kinds]
        if len(notes) == 2 and notes[0][0] == notes[1][0]:
            return f"{notes[0][0]} {notes[0][1]} and {notes[1][1]}"
        return " and ".join(f"{who} {what}" for who, what in notes)


def _env_number(environ: Mapping, name: str) -> float | None:
    try:
        v = float(str(environ.get(name, "")).strip())
    except ValueError:
        return None
    return v if math.isfinite(v) and v > 0 else None


def _machine_cap(available: int | None, platform: str | None) -> tuple[int | None, float]:
    plat = platform or platform_name()
    fraction = MEMORY_FRACTION["cpu" if plat == "cpu" else "accelerator"]
    return (None if available is None else int(fraction * available)), fraction


def session_budget(environ: Mapping | None = None, available: int | None | str = "read",
                   platform: str | None = None) -> Budget:
    """The budget of one server session's job: ``FLOWLAB_SESSION_MEMORY_MB`` (default 512) and
    ``FLOWLAB_JOB_SECONDS`` (default 300), the memory capped at the machine's share of its free memory.
    ``available``: the free bytes ("read": ``memory_available()``; None: unknown)."""
    env = os.environ if environ is None else environ
    mem = int((_env_number(env, MEMORY_ENV) or DEFAULT_MEMORY_MB) * MB)
    note = (SERVER, f"{size_text(mem)} per session")
    cap, fraction = _machine_cap(memory_available() if available == "read" else available, platform)
    if cap is not None and cap < mem:
        mem, note = cap, ("this server has", f"about {size_text(cap)} free for one session ({fraction:.0%} of its "
                                             "free memory)")
    seconds = _env_number(env, SECONDS_ENV) or DEFAULT_JOB_SECONDS
    return Budget(mem, seconds, note, (SERVER, f"{duration_text(seconds)} of compute per job"))


def local_budget(environ: Mapping | None = None, available: int | None | str = "read",
                 platform: str | None = None) -> Budget:
    """The budget of a command-line run on the user's own machine: the machine's share of its free memory (2 GiB
    when unknown), lowered by ``FLOWLAB_SESSION_MEMORY_MB`` when set; a time limit only when
    ``FLOWLAB_JOB_SECONDS`` is set.  ``available`` as for ``session_budget``."""
    env = os.environ if environ is None else environ
    cap, fraction = _machine_cap(memory_available() if available == "read" else available, platform)
    if cap is None:
        mem, note = FALLBACK_MEMORY, ("a run may use", f"{size_text(FALLBACK_MEMORY)} (this machine's free memory is "
                                                        "unknown)")
    else:
        mem, note = cap, ("this machine can give one run", f"about {size_text(cap)} ({fraction:.0%} of its free "
                                                            "memory)")
    mb = _env_number(env, MEMORY_ENV)
    if mb is not None and mb * MB < mem:
        mem, note = int(mb * MB), (f"{MEMORY_ENV} allows", size_text(int(mb * MB)))
    seconds = _env_number(env, SECONDS_ENV)
    return Budget(mem, seconds, note, (f"{SECONDS_ENV} allows", f"{duration_text(seconds or 0)} of compute"))


# ---- words -----------------------------------------------------------------------------------------------------------
def size_text(nbytes: float) -> str:
    """Bytes for a sentence: '512 MB', '1.2 GiB', '19 GiB', '192 GiB' (MB = 2^20 bytes)."""
    if nbytes >= GiB:
        v = nbytes / GiB
        return f"{v:,.0f} GiB" if v >= 10 else f"{v:.2g} GiB"
    if nbytes >= MB:
        return f"{nbytes / MB:,.0f} MB"
    return f"{max(nbytes, 0) / 1024:,.0f} KB"


def duration_text(seconds: float) -> str:
    """Seconds for a sentence: '45 s', '12 min', '1.5 h', '3 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h"
    return f"{seconds / 86400:,.0f} days"


def nice_floor(v: int) -> int:
    """``v`` rounded down to two significant digits (1234 -> 1200), so a suggested value reads well and still fits
    wherever ``v`` fits (every estimate grows with each setting)."""
    v = int(v)
    if v < 100:
        return v
    step = 10 ** (len(str(v)) - 2)
    return v // step * step


# ---- costs -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Coefficients:
    """One compiled call's cost model (see the module docstring): memory words per act·L·R·(D+1), rows·R·(D+1),
    matrices·L·D², jacobian·L·R·D², data·R·D; element-wise operations per L·R·D; flops per L·R·D², L·D³, L·R·D³."""

    act: float
    rows: float
    matrices: float
    element: float
    flops: float
    jacobian: float = 0.0
    data: float = 0.0
    cubic: float = 0.0
    jacobian_flops: float = 0.0

    def words(self, layers: int, rows: int, dim: int, members: int = 1) -> float:
        L, R, D = layers, rows, dim
        each = (self.act * L * R * (D + 1) + self.rows * R * (D + 1) + self.matrices * L * D * D
                + self.jacobian * L * R * D * D)
        return members * each + self.data * R * D + FIXED_BYTES / FLOAT_BYTES

    def seconds(self, layers: int, rows: int, dim: int, members: int = 1, rates: "Rates | None" = None) -> float:
        r = rates or rates_here()
        L, R, D = layers, rows, dim
        flops = self.flops * L * R * D * D + self.cubic * L * D ** 3 + self.jacobian_flops * L * R * D ** 3
        return members * (self.element * L * R * D * r.element_s + flops / r.flop_rate)


# One gradient evaluation (the Timing page's point): fn(params, batch) -> grads, on XLA's CPU plans.
GRADIENT = {
    "exact": Coefficients(act=4.1, rows=0.0, matrices=6.3, data=6.3, element=24, flops=6, cubic=4),
    "inverse": Coefficients(act=4.1, rows=6.3, matrices=5.7, element=24, flops=6, cubic=3),
    "relative": Coefficients(act=5.2, rows=1.0, matrices=2.6, element=16, flops=8),
    "self_normalizing": Coefficients(act=7.1, rows=3.3, matrices=6.2, element=40, flops=16),
    "autodiff_jacobian": Coefficients(act=0.0, rows=0.0, matrices=4.6, jacobian=5.5, data=6.7, element=24, flops=6,
                                      jacobian_flops=8),
}
# One Compare optimiser step, vmapped over the members, with plain gradient descent (new weights out as well);
# Adam keeps two moments and its update: ADAM_MATRICES more per learned D×D matrix.
STEP = {
    "exact": Coefficients(act=4.1, rows=4.0, matrices=7.2, data=1.9, element=24, flops=6, cubic=4),
    "inverse": Coefficients(act=4.1, rows=4.0, matrices=5.7, data=1.9, element=24, flops=6, cubic=3),
    "relative": Coefficients(act=5.1, rows=0.0, matrices=3.1, data=0.95, element=16, flops=8),
    "self_normalizing": Coefficients(act=9.0, rows=2.9, matrices=6.0, data=3.0, element=40, flops=16),
}
ADAM_MATRICES = 4.0
# Compare's loss evaluation: the exact NLL (forward pass + slogdet); with learned inverses also the angle to the
# exact gradient (two self-normalizing gradients and one exact one) and ‖RW − I‖.
EVALUATION = Coefficients(act=0.33, rows=4.5, matrices=3.1, element=8, flops=2, cubic=1)
EVALUATION_LEARNED = Coefficients(act=11.0, rows=3.1, matrices=8.1, data=3.3, element=112, flops=40, cubic=5)


@dataclass(frozen=True)
class Rates:
    """Conservative speeds: ``flop_rate`` floating-point operations per second, ``element_s`` seconds per
    element-wise operation, ``step_s`` fixed seconds per optimiser step, ``call_s`` per dispatched call."""

    flop_rate: float
    element_s: float
    step_s: float
    call_s: float


RATES = {"cpu": Rates(flop_rate=5e10, element_s=1e-9, step_s=5e-5, call_s=2e-3),
         "accelerator": Rates(flop_rate=5e12, element_s=1e-11, step_s=2e-5, call_s=1e-3)}


def rates_here(platform: str | None = None) -> Rates:
    return RATES["cpu" if (platform or platform_name()) == "cpu" else "accelerator"]


def learned_matrices(method: str) -> int:
    """D×D matrices per layer a method learns: W, and R ≈ W⁻¹ for self-normalizing flows."""
    return 2 if REGISTRY[method].learned_inverse else 1


@dataclass(frozen=True)
class Cost:
    """An estimate: ``bytes`` at the peak, ``seconds`` of compute; ``what`` names the sizes that drive the memory
    ("20 inits × 20 layers × D = 128 on 20,000 points"), ``work`` those that add the time ("3 methods × 500
    iterations")."""

    bytes: float
    seconds: float
    what: str
    work: str = ""

    def over(self, budget: Budget) -> tuple:
        """What of ``budget`` this exceeds: () when it fits, else ("memory",), ("time",) or both."""
        return tuple(k for k, bad in (("memory", self.bytes > budget.memory),
                                      ("time", budget.seconds is not None and self.seconds > budget.seconds)) if bad)


def gradient_cost(method: str, layers: int, batch: int, dim: int) -> tuple[float, float]:
    """(bytes, seconds) of one compiled gradient evaluation of ``method`` (arguments, outputs and temporaries)."""
    c = GRADIENT[method]
    return FLOAT_BYTES * c.words(layers, batch, dim), c.seconds(layers, batch, dim)


def compare_cost(*, dim: int, layers: int, inits: int, points: int, methods, iters: int, every: int,
                 optimizer: str, lambdas: int = 0, rates: int = 1) -> Cost:
    """A Compare run over ``rates`` learning rates (every method with rates × inits members), or a λ sweep
    (``lambdas`` values: the self-normalizing flow alone with lambdas × inits members, at one rate).  Memory: the
    data (float64 points, their standardised float32 copy, sampling temporaries), the shared initial weights, every
    method's weights and optimiser state, the history, plus the largest compiled step or evaluation.  Time:
    iterations × every method's step, plus the evaluations."""
    rates = 1 if lambdas else max(1, int(rates))
    n = inits * max(1, lambdas) * rates
    methods = ("self_normalizing",) if lambdas else tuple(methods)
    adam = optimizer == "adam"
    L, N, D = int(layers), int(points), int(dim)
    evals = -(-int(iters) // max(1, int(every))) + 1
    state = sum(n * L * (learned_matrices(m) * D * D + D) * (3 if adam else 1) for m in methods)
    history = evals * len(methods) * n * 8 * 8  # float64 metrics per evaluation and member
    persistent = 32 * N * D + FLOAT_BYTES * (inits * L * (D * D + D) + state) + history
    peak, seconds = 0.0, 0.0
    r = rates_here()
    for m in methods:
        step = STEP[m].words(L, N, D, n) + (ADAM_MATRICES * learned_matrices(m) * n * L * D * D if adam else 0)
        ev = EVALUATION_LEARNED if REGISTRY[m].learned_inverse else EVALUATION
        peak = max(peak, FLOAT_BYTES * step, FLOAT_BYTES * ev.words(L, N, D, n))
        seconds += iters * (STEP[m].seconds(L, N, D, n, r) + r.step_s) + evals * (ev.seconds(L, N, D, n, r) + r.call_s)
    what = f"{plural(inits, 'init')} × {plural(L, 'layer')} × D = {D} on {plural(N, 'point')}"
    if lambdas:
        what += f", {plural(lambdas, 'λ value')}"
    elif rates > 1:
        what += f", {plural(rates, 'learning rate')}"
    work = f"{plural(len(methods), 'method')} × {plural(int(iters), 'iteration')}"
    return Cost(persistent + peak, seconds, what, work)


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# ---- refusing ------------------------------------------------------------------------------------------------------
class OverBudget(ValueError):
    """A job that does not fit the budget; the message is the one sentence to show."""


def largest_fitting(fits: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The largest whole v in [lo, hi] with ``fits(v)``, for a ``fits`` that holds up to some value and fails
    beyond it (every estimate grows with each setting); None when even ``lo`` does not fit.  Bisection."""
    lo, hi = int(lo), int(hi)
    if hi < lo or not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def refusal(cost: Cost, budget: Budget, suggestions=(), otherwise: str = "") -> str | None:
    """None when ``cost`` fits ``budget``, else one sentence: what is too large, what this budget allows, and what
    fits (``suggestions`` such as "1,200 points", "2 inits", each one change on its own; ``otherwise`` when none)."""
    over = cost.over(budget)
    if not over:
        return None
    advice = ("use at most " + ", or ".join(suggestions)) if suggestions else (otherwise or "use smaller settings")
    needs = " and ".join(f"about {size_text(cost.bytes)}" if k == "memory" else
                         f"about {duration_text(cost.seconds)} of compute" for k in over)
    what = f"{cost.what}, {cost.work}" if "time" in over and cost.work else cost.what
    return f"This run needs {needs} ({what}); {budget.allows(over)}: {advice}."


# ---- compiled plans and failures -----------------------------------------------------------------------------------
def planned_bytes(compiled) -> tuple[int | None, dict | None]:
    """(bytes, detail) of XLA's plan for a compiled executable: arguments + outputs + temporaries − aliased;
    (None, None) when the backend gives no analysis."""
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


def is_oom(e: BaseException) -> bool:
    """True for an out-of-memory error of the host (MemoryError) or of XLA (RESOURCE_EXHAUSTED)."""
    msg = str(e).lower()
    return isinstance(e, MemoryError) or "resource_exhausted" in msg or "out of memory" in msg or "oom" in msg.split()


def error_line(e: BaseException) -> str:
    """'Type: first line of the message' (at most 200 characters of it): an error in one line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def out_of_memory_text(e: BaseException) -> str:
    """What an allocation failure asked for, as words: 'could not allocate 19 GiB' when the message says how much."""
    m = re.search(r"allocat\w*\s+(\d{4,})\s*bytes", str(e))
    return f"could not allocate {size_text(int(m.group(1)))}" if m else "ran out of memory"


# ---- live and command-line training (Playground, python -m flowlab train) -------------------------------------------
def training_cost(*, method: str, layers: int, batch: int, ntrain: int, ntest: int, dim: int = 2,
                  candidates: int = 1, views: int = 4096) -> Cost:
    """One training run (``candidates`` side by side on shared data): the data (float64 samples and their float32
    standardised copy, training and held-out), each candidate's weights with Adam's two moments, its compiled
    optimiser step on ``batch`` rows, its held-out evaluation on ``ntest`` rows and a view of ``views`` grid points.
    Open-ended: no time estimate (the scheduler shares the cores)."""
    L, B, D = int(layers), int(batch), int(dim)
    m = learned_matrices(method)
    data = 12 * (int(ntrain) + int(ntest)) * D
    state = FLOAT_BYTES * 3 * L * (m * D * D + D)
    step = FLOAT_BYTES * (STEP[method].words(L, B, D) + ADAM_MATRICES * m * L * D * D)
    ev = FLOAT_BYTES * EVALUATION.words(L, max(int(ntest), int(views)), D)
    what = f"{plural(L, 'layer')} × batch {B:,} on {plural(int(ntrain), 'training point')}"
    if candidates > 1:
        what += f", {int(candidates)} candidates"
    return Cost(data + int(candidates) * (state + max(step, ev)), 0.0, what)


def training_refusal(budget: Budget, **kw) -> str | None:
    """None when a training run fits ``budget`` (``training_cost`` keywords), else one sentence with the largest
    batch and the most layers that fit with the other settings kept."""
    cost = training_cost(**kw)
    if not cost.over(budget):
        return None

    def fits(**change) -> bool:
        return not training_cost(**{**kw, **change}).over(budget)

    tips = []
    b = largest_fitting(lambda v: fits(batch=v), 1, int(kw["batch"]) - 1)
    if b:
        tips.append(f"batch {nice_floor(b):,}")
    n = largest_fitting(lambda v: fits(layers=v), 1, int(kw["layers"]) - 1)
    if n:
        tips.append(plural(n, "layer"))
    return refusal(cost, budget, tips)
