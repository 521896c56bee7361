"""The learning-rate sweep of a convergence run (``ConvergenceRun.curves()``): every method's final loss at every rate
of ``CompareSettings.grid`` over the same inits, each method's best rate by one stated rule (``RULE``), its curves cut
out at one rate, and the conclusion computed from those numbers (never written in advance).

Equal learning rates are not equal steps: the relative gradient is the ordinary one times W̄ᵀW̄ (Gresele et al. eq. 15,
App. F), so a fair race gives each method its own best rate; the shared-rate view is kept for comparison."""
from __future__ import annotations

import numpy as np

from ..gradients import REGISTRY
from .summary import quiet

RULE = "the lowest median final loss over the inits (an init that diverged counts as +∞); on a tie, the smaller rate"
VIEWS = ("best", "shared")


def finals(d: dict, rates) -> np.ndarray:
    """(rates, inits) final losses of one method's members (member i·inits + j is rate i, init j); +∞ where the init
    diverged (its loss is NaN from then on)."""
    last = np.asarray(d["loss"], np.float64)[-1]
    last = np.where(np.isfinite(last), last, np.inf)
    return last.reshape(len(rates), -1)


def sweep_rows(curves: dict) -> dict[str, list[dict]]:
    """Per method, one row per rate (ascending): rate, final (inits,) with +∞ for diverged inits, median (over all
    inits, diverged = +∞), q25 / q75 and iqr (over the inits that did not diverge), diverged, n."""
    out = {}
    for m, d in curves["methods"].items():
        rows = []
        for rate, f in zip(curves["rates"], finals(d, curves["rates"])):
            ok = f[np.isfinite(f)]
            q25, q75 = (np.percentile(ok, [25, 75]) if len(ok) else (np.nan, np.nan))
            rows.append({"rate": float(rate), "final": f, "median": float(np.median(f)), "q25": float(q25),
                         "q75": float(q75), "iqr": float(q75 - q25), "diverged": int(np.sum(~np.isfinite(f))),
                         "n": int(len(f))})
        out[m] = rows
    return out


def best_rate(rows: list[dict]) -> float | None:
    """``RULE`` over one method's ``sweep_rows`` (ascending rates): None when the median is +∞ at every rate (at least
    half of the inits diverged at each)."""
    ok = [r for r in rows if np.isfinite(r["median"])]
    if not ok:
        return None
    low = min(r["median"] for r in ok)
    return min(r["rate"] for r in ok if r["median"] == low)


def best_rates(curves: dict) -> dict[str, float | None]:
    """Each method's ``best_rate``."""
    return {m: best_rate(rows) for m, rows in sweep_rows(curves).items()}


def shown_rates(curves: dict, view: str = "best") -> dict[str, float]:
    """The rate each method's curves are drawn at: its best rate ("best"; the shared rate where it has none), or the
    shared learning rate ("shared")."""
    if view not in VIEWS:
        raise ValueError(f"The view must be one of: {', '.join(VIEWS)}, got {view!r}.")
    shared = float(curves["settings"]["lr"])
    best = best_rates(curves) if view == "best" else {}
    return {m: (best.get(m) if best.get(m) is not None else shared) for m in curves["methods"]}


def at_rates(curves: dict, view: str = "best", rates: dict[str, float] | None = None) -> dict:
    """The convergence curves with each method cut to its inits at one rate (``rates``, default ``shown_rates(curves,
    view)``): loss (E, inits) and the other per-member arrays likewise; ``lr`` is that rate, ``members`` the number
    of runs its ``time`` covers (all rates × inits ran together).  The figures and ``summary_rows`` read this."""
    rates = shown_rates(curves, view) if rates is None else rates
    grid = [float(r) for r in curves["rates"]]
    out = {k: v for k, v in curves.items() if k != "methods"}
    out["view"], out["methods"] = view, {}
    for m, d in curves["methods"].items():
        n = len(d["diverged_at"]) // len(grid)
        i = grid.index(float(rates[m]))
        cut = slice(i * n, (i + 1) * n)
        e = {k: (v[:, cut] if np.ndim(v) == 2 else v[cut]) for k, v in d.items()
             if k not in ("iteration", "time", "compile_s", "lr")}
        out["methods"][m] = {**e, "iteration": d["iteration"], "time": d["time"], "compile_s": d.get("compile_s"),
                             "lr": float(rates[m]), "members": int(len(d["diverged_at"]))}
    return out


def results(curves: dict, view: str = "best") -> list[dict]:
    """What the conclusion compares, one dict per method: method, label, rate (shown), edge ("smallest" / "largest"
    when that best rate is at an end of a sweep of several rates, else None), final (inits,), median, iqr, diverged,
    n, failed (best view: no rate kept half of the inits; shared view: the median is +∞), seconds_per_iteration
    (all members together) and members."""
    rows, shown = sweep_rows(curves), shown_rates(curves, view)
    grid = [float(r) for r in curves["rates"]]
    out = []
    for m, d in curves["methods"].items():
        r = next(x for x in rows[m] if x["rate"] == shown[m])
        edge = None
        if view == "best" and len(grid) > 1:
            edge = "smallest" if shown[m] == grid[0] else "largest" if shown[m] == grid[-1] else None
        it = int(d["iteration"][-1]) if len(d["iteration"]) else 0
        out.append({"method": m, "label": REGISTRY[m].short, "rate": shown[m], "edge": edge, "final": r["final"],
                    "median": r["median"], "iqr": r["iqr"], "diverged": r["diverged"], "n": r["n"],
                    "failed": best_rate(rows[m]) is None if view == "best" else not np.isfinite(r["median"]),
                    "seconds_per_iteration": float(d["time"][-1] / it) if it else float("nan"),
                    "members": int(len(d["diverged_at"]))})
    return out


def _rate(r: dict, view: str) -> str:
    return f" at lr {r['rate']:g}" if view == "best" else ""


def _notes(r: dict, view: str) -> list[str]:
    """What qualifies a method's number: its best rate at an end of the sweep, inits that diverged there."""
    notes = [f"the {r['edge']} rate tried"] if view == "best" and r["edge"] else []
    return notes + ([f"{r['diverged']} of {r['n']} inits diverged"] if r["diverged"] else [])


def loss_conclusion(res: list[dict], view: str, iterations: int, shared_rate: float) -> str:
    """One sentence from ``results``: which method reaches the lowest median final loss (at its own best rate, or at
    the shared one), how far below the next method, whether that gap is larger than the spread over the inits (the
    larger interquartile range of the two) and on how many of the same inits it ends lower (paired: the same
    starting weights)."""
    head = (f"After {iterations:,} iterations, each method at its best learning rate of those tried" if view == "best" else
            f"After {iterations:,} iterations at the shared learning rate {shared_rate:g}")
    ok = sorted((r for r in res if not r["failed"]), key=lambda r: r["median"])
    failed = [r for r in res if r["failed"]]
    if not ok:
        return f"{head}, every method diverged on at least half of the inits: nothing to compare; lower the rates."
    a = ok[0]
    na = _notes(a, view)
    value = f"{a['median']:.4f} nats{_rate(a, view)}" + (f" ({'; '.join(na)})" if na else "")
    if len(ok) == 1:
        text = f"{head}, {a['label']} reaches a median final NLL of {value}."
    else:
        b = ok[1]
        gap = b["median"] - a["median"]
        spread = max(a["iqr"], b["iqr"])
        lower = int(np.sum(a["final"] < b["final"]))
        other = "; ".join([f"{b['median']:.4f}{_rate(b, view)}"] + _notes(b, view))
        text = (f"{head}, {a['label']} reaches the lowest median final NLL, {value}: {gap:.3g} nats below "
                f"{b['label']} ({other}), ")
        if np.isfinite(spread):
            text += (f"{'more' if gap > spread else 'less'} than the spread over the {a['n']} inits (interquartile "
                     f"range up to {spread:.3g} nats); ")
        text += f"it ends lower on {lower} of the {a['n']} same starting weights."
    for r in failed:
        text += (f" {r['label']} diverged on at least half of the inits at every rate tried." if view == "best" else
                 f" {r['label']} diverged on {r['diverged']} of {r['n']} inits.")
    return text


def time_conclusion(res: list[dict]) -> str:
    """One sentence: each method's measured time per iteration (optimiser steps only, all its runs together),
    fastest first."""
    timed = sorted((r for r in res if np.isfinite(r["seconds_per_iteration"])),
                   key=lambda r: r["seconds_per_iteration"])
    if not timed:
        return "No iteration has been timed yet."
    parts = ", ".join(f"{r['label']} {1000 * r['seconds_per_iteration']:.3g} ms" for r in timed)
    runs = timed[0]["members"]
    return (f"Time per iteration measured here (optimiser steps only, the {runs} runs of each method together): "
            f"{parts}.")


def conclusion(curves: dict, view: str = "best") -> dict[str, str]:
    """{"loss": ``loss_conclusion``, "time": ``time_conclusion``} of a convergence run's curves."""
    with quiet():
        res = results(curves, view)
    it = int(curves.get("iteration", max(int(d["iteration"][-1]) for d in curves["methods"].values())))
    return {"loss": loss_conclusion(res, view, it, float(curves["settings"]["lr"])), "time": time_conclusion(res)}
