"""What a Compare experiment costs before it starts (memory and compute time from the shapes alone,
``flowlab.budget.compare_cost``) and the one sentence that refuses one over the budget, naming what fits: the largest
value of one setting at a time (points, inits, learning rates, layers, D, iterations, λ values) with the others
unchanged.  The learning-rate sweep multiplies the members of every method: ``CompareSettings.grid`` rates × inits."""
from __future__ import annotations

import math

from ..budget import Budget, Cost, OverBudget, compare_cost, largest_fitting, nice_floor, plural, refusal
from ..settings import COMPARE, COMPARE_ND
from .settings import CompareSettings, evaluation_interval

MEMORY_KEYS = ("points", "rates", "inits", "layers", "dim", "lambdas")  # what a suggestion may lower, in this order
TIME_KEYS = ("iters", "rates", "points", "inits", "layers", "dim", "lambdas")
TOGETHER = ("rates", "layers", "inits", "lambdas", "points")  # halved in turn when no single change fits (+ iters)
COUNTS = ("lambdas", "rates")  # numbers of values in a list (at least 1), not settings with a schema minimum
NOUNS = {"points": "point", "inits": "init", "layers": "layer", "iters": "iteration", "lambdas": "λ value",
         "rates": "learning rate"}
SUGGESTIONS = 2


def _cost(v: dict) -> Cost:
    return compare_cost(dim=v["dim"], layers=v["layers"], inits=v["inits"], points=v["points"], methods=v["methods"],
                        iters=v["iters"], every=evaluation_interval(v["dim"], v["iters"], v["eval_every"]),
                        optimizer=v["optimizer"], lambdas=v["lambdas"], rates=v["rates"])


def _values(settings: CompareSettings, lams) -> dict:
    """The settings with the lists as counts: λ values (0 for a convergence run) and learning rates (the λ sweep
    trains at the shared rate alone)."""
    sweep = lams is not None
    return {**settings.as_dict(), "lambdas": len(lams) if sweep else 0, "rates": 1 if sweep else len(settings.grid),
            "grid": settings.grid}


def _nearest(grid, lr: float, k: int) -> tuple:
    near = sorted(grid, key=lambda r: (abs(math.log(r / lr)), r))[:max(1, int(k))]
    return tuple(sorted(near))


def fewer_rates(settings: CompareSettings, k: int) -> tuple:
    """What "use at most k learning rates" means: the ``k`` rates of ``settings.grid`` nearest the shared rate on a
    log scale (the shared rate always among them; a tie goes to the smaller rate), ascending: a run of neighbours in
    the grid, named in the sentence as "3 learning rates (0.01 to 0.04)"."""
    return _nearest(settings.grid, settings.lr, k)


def job_cost(settings: CompareSettings, lams=None) -> Cost:
    """The estimate of a convergence run (every method at every rate of ``settings.grid``), or of a λ sweep over
    ``lams``."""
    return _cost(_values(settings, lams))


def _lower(v: dict, budget: Budget, key: str) -> int | None:
    """The largest value of ``key`` below its current one with which ``v`` fits (None: none does, or fixed)."""
    if (key == "dim" and v["density"] != COMPARE_ND) or (key == "lambdas" and not v["lambdas"]):
        return None
    lo = 1 if key in COUNTS else int(COMPARE[key].lo)
    if v[key] <= lo:
        return None
    best = largest_fitting(lambda x: not _cost({**v, key: x}).over(budget), lo, v[key] - 1)
    return None if best is None else max(lo, nice_floor(best))


def _words(v: dict, key: str, value: int) -> str:
    if key == "rates":
        near = _nearest(v["grid"], v["lr"], value)
        return f"{plural(value, NOUNS[key])} ({near[0]:g}" + (f" to {near[-1]:g})" if len(near) > 1 else ")")
    return f"D = {value}" if key == "dim" else plural(value, NOUNS[key])


def _suggest(v: dict, budget: Budget, keys) -> list[str]:
    """Up to ``SUGGESTIONS`` single changes that fit: "1,200 points", "2 inits", "D = 96"."""
    out = []
    for key in keys:
        best = _lower(v, budget, key) if len(out) < SUGGESTIONS else None
        if best is not None:
            out.append(_words(v, key, best))
    return out


def _together(v: dict, budget: Budget, keys) -> str:
    """When no single change fits: ``keys`` halved in turn until the run fits, e.g. 'use at most 6 layers, 2 inits
    and 2,500 points together'."""
    v, changed = dict(v), {}
    keys = [k for k in keys if not (k == "lambdas" and not v["lambdas"])]
    while _cost(v).over(budget):
        moved = False
        for key in keys:
            lo = 1 if key in COUNTS else int(COMPARE[key].lo)
            if v[key] > lo and _cost(v).over(budget):
                v[key] = changed[key] = max(lo, nice_floor(v[key] // 2))
                moved = True
        if not moved:
            return "use smaller settings" + (", or a smaller D" if v["density"] == COMPARE_ND else "")
    parts = [_words(v, k, x) for k, x in changed.items()]
    return "use at most " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]) + \
        " together"


def refusal_text(settings: CompareSettings, budget: Budget, lams=None) -> str | None:
    """None when the run (or the sweep over ``lams``) fits ``budget``, else one sentence: what it needs, what the
    budget allows, and the largest values that fit."""
    v = _values(settings, lams)
    cost = _cost(v)
    over = cost.over(budget)
    if not over:
        return None
    keys = MEMORY_KEYS if "memory" in over else TIME_KEYS
    suggestions = _suggest(v, budget, keys)
    together = TOGETHER + (("iters",) if "time" in over else ())
    return refusal(cost, budget, suggestions, otherwise="" if suggestions else _together(v, budget, together))


def check(settings: CompareSettings, budget: Budget | None, lams=None) -> None:
    """Raise ``OverBudget`` (a ValueError) with ``refusal_text``'s sentence when the job does not fit ``budget``
    (None: no check)."""
    if budget is None:
        return
    text = refusal_text(settings, budget, lams)
    if text:
        raise OverBudget(text)
