"""From the ``curves`` dicts of a convergence run (cut at one rate per method: ``rates.at_rates``) or a λ sweep to
numbers: the spread band over the inits, the iterations to reach a loss level, the summary rows (and their display
rows), divergence notes and the long CSV (every rate)."""
from __future__ import annotations

import csv
import io
import json
import warnings
from contextlib import contextmanager

import numpy as np

from ..gradients import REGISTRY

NAN = float("nan")


@contextmanager
def quiet():
    """Silence numpy's 'mean of empty slice' warnings (every init diverged at that point) and invalid-value ones."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def band(values: np.ndarray, kind: str = "std") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, low, high) over the inits (axis 1), ignoring diverged (NaN) ones.  ``std``: mean ± 1 std;
    ``minmax``: mean and min–max."""
    v = np.asarray(values, np.float64)
    with quiet():
        mean = np.nanmean(v, axis=1)
        if kind == "minmax":
            return mean, np.nanmin(v, axis=1), np.nanmax(v, axis=1)
        sd = np.nanstd(v, axis=1)
    return mean, mean - sd, mean + sd


def iterations_to_reach(iteration: np.ndarray, loss: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per init (column): the first iteration whose loss is ≤ ``level`` (per init), NaN if never reached."""
    loss = np.asarray(loss, np.float64)
    hit = loss <= np.asarray(level)[None, :]
    first = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), np.asarray(iteration)[first], np.nan).astype(np.float64)


def rate_of(d: dict) -> float:
    """The one learning rate of a method's curves (NaN when they do not record one).  Curves of several rates must be
    cut at one rate per method first (``rates.at_rates``): ValueError otherwise, never a silent mix of rates."""
    lr = np.unique(np.asarray(d.get("lr", NAN), np.float64))
    if len(lr) > 1:
        raise ValueError(f"These curves hold {len(lr)} learning rates: cut them at one rate per method first "
                         "(flowlab.compare.at_rates).")
    return float(lr[0])


def _final(d: dict) -> tuple[np.ndarray, np.ndarray]:
    final = d["loss"][-1]
    return final, np.isfinite(final)


def summary_rows(curves: dict) -> list[dict]:
    """One row per method of a convergence run: its learning rate (when cut at one, ``rates.at_rates``), final loss
    mean ± std (survivors), median (a diverged init counts as +∞, as in ``rates.RULE``), diverged count, seconds per iteration (all its runs together, compile excluded), compile
    time; for the self-normalizing flow the final and the largest angle between its likelihood gradient of W and the
    exact one (Keller Fig. 3), and the final ‖RW − I‖."""
    rows = []
    for m, d in curves["methods"].items():
        final, ok = _final(d)
        it = int(d["iteration"][-1]) if len(d["iteration"]) else 0
        row = {"method": m, "label": REGISTRY[m].short, "iterations": it,
               "final_loss_mean": float(np.mean(final[ok])) if ok.any() else NAN,
               "final_loss_std": float(np.std(final[ok])) if ok.any() else NAN,
               "final_loss_median": float(np.median(np.where(ok, final, np.inf))) if len(final) else NAN,
               "diverged": int(np.sum(d["diverged_at"] >= 0)), "n": int(len(final)),
               "seconds_per_iteration": float(d["time"][-1] / it) if it else NAN,
               "compile_s": float(d.get("compile_s") or NAN), "lr": rate_of(d),
               "runs_timed": int(d.get("members", len(final)))}
        if "angle" in d:
            with quiet():
                row["final_angle_deg"] = float(np.nanmean(d["angle"][-1])) if ok.any() else NAN
                row["max_angle_deg"] = float(np.nanmax(d["angle"])) if np.isfinite(d["angle"]).any() else NAN
                row["final_inv_err"] = float(np.nanmean(d["inv_err"][-1])) if ok.any() else NAN
        rows.append(row)
    return rows


def sweep_summary(curves: dict) -> list[dict]:
    """One row per λ of a sweep: final NLL mean/std over the inits that did not diverge, how many diverged (NaN/Inf
    or exploded; and when first), how many ended above their starting loss (unstable without a NaN), final
    ‖RW − I‖."""
    rows = []
    for lam, d in curves["per_lambda"].items():
        final, ok = _final(d)
        div = d["diverged_at"][d["diverged_at"] >= 0]
        worse = int(np.sum(ok & (final > d["loss"][0])))
        with quiet():
            inv = float(np.nanmean(d["inv_err"][-1])) if ok.any() else NAN
        rows.append({"lambda": lam, "final_nll_mean": float(np.mean(final[ok])) if ok.any() else NAN,
                     "final_nll_std": float(np.std(final[ok])) if ok.any() else NAN,
                     "diverged": int(len(div)), "ended_above_start": worse, "n": int(len(final)),
                     "first_divergence": int(div.min()) if len(div) else None, "final_inv_err": inv})
    return rows


def _short(v) -> str:
    """A number for a text column: 3 significant digits, or a dash where there is none (not the method's metric)."""
    return f"{v:.3g}" if v is not None and v == v else "—"


def convergence_table(rows: list[dict]) -> list[dict]:
    """``summary_rows`` as the page's table: one display row per method, columns named for a reader."""
    return [{"method": r["label"], "lr": _short(r.get("lr", NAN)), "final NLL (median)": r["final_loss_median"],
             "final NLL (mean)": r["final_loss_mean"], "± std": r["final_loss_std"],
             "diverged": f"{r['diverged']}/{r['n']}",
             "ms / iteration": 1000 * r["seconds_per_iteration"],
             "compile (s)": r["compile_s"], "final angle (°)": _short(r.get("final_angle_deg", NAN)),
             "final ‖RW−I‖": _short(r.get("final_inv_err", NAN))} for r in rows]


def sweep_table(rows: list[dict]) -> list[dict]:
    """``sweep_summary`` as the page's table."""
    return [{"λ": r["lambda"], "final NLL (mean)": r["final_nll_mean"], "± std": r["final_nll_std"],
             "diverged": f"{r['diverged']}/{r['n']}", "ended above start": f"{r['ended_above_start']}/{r['n']}",
             "final ‖RW−I‖": r["final_inv_err"]} for r in rows]


def angle_sentence(curves: dict) -> str:
    """What the self-normalizing angle panel shows, every number read from ``curves`` (cut at one rate): Keller et
    al. Fig. 3's angle between the self-normalizing and the exact likelihood gradients of W, mean over the inits
    that did not diverge, at iteration 0, at its largest and at the end; whether R = Wᵀ starts at W⁻¹ (orthogonal
    initial weights) or not.  Empty without the self-normalizing flow."""
    d = curves["methods"].get("self_normalizing")
    if d is None or not len(d["iteration"]):
        return ""
    with quiet():
        mean = np.nanmean(np.asarray(d["angle"], np.float64), axis=1)
    if not np.isfinite(mean).any():
        return ""
    start = ("R starts as Wᵀ, which is W⁻¹ for orthogonal initial weights" if curves["settings"]["init"] == "orthogonal"
             else "R starts as Wᵀ, which is not W⁻¹ for these initial weights")
    last = int(np.flatnonzero(np.isfinite(mean))[-1])
    return (f"Bottom left: the angle between the self-normalizing and exact likelihood gradients of W (Keller et al. "
            f"Fig. 3; the reconstruction term left out), mean over the inits: {mean[0]:.2g}° at iteration 0 ({start}), "
            f"{np.nanmax(mean):.2g}° at most, {mean[last]:.2g}° at iteration {int(d['iteration'][last]):,}. Keller et "
            "al. show it falling below 1° during training of their models. Bottom right: how far R is from W⁻¹.")


def divergence_notes(curves: dict, explode: float) -> list[str]:
    """One sentence per method of a convergence run with diverged inits (what happened, where, what to do);
    ``explode`` is the loss level that counts as diverged (``CompareSettings.explode``); curves cut at one rate
    (``rates.at_rates``) name it."""
    notes = []
    for m, d in curves["methods"].items():
        div = d["diverged_at"][d["diverged_at"] >= 0]
        lr = rate_of(d)
        if len(div):
            at = f" at lr {lr:g}" if np.isfinite(lr) else ""
            notes.append(f"**{REGISTRY[m].short}**{at}: {len(div)} of {len(d['diverged_at'])} inits diverged (first at "
                         f"iteration {int(div.min()):,}): the gradient or the loss became NaN/Inf or exceeded "
                         f"{explode:,.0f} nats. Their curves stop there (✕); the band uses the others. Lower the "
                         "learning rate to avoid it.")
    return notes


CSV_COLUMNS = ("experiment", "method", "lambda", "lr", "init", "iteration", "time_s", "loss_nats", "angle_deg",
               "inv_err", "recon", "diverged_at")


def _fmt(v) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.7g}"


def curves_to_csv(curves: dict) -> str:
    """Long-format CSV: one row per (method or λ, learning rate, init, evaluated iteration); NaN after an init
    diverged; ``time_s`` is the method's (all its runs together).  A comment header records the settings."""
    buf = io.StringIO()
    buf.write(f"# FlowLab {curves['kind']}: {json.dumps(curves['settings'], sort_keys=True)}\n")
    buf.write(f"# true density NLL on these points: {curves['true_nll']:.6f} nats; {curves['status']}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    s = curves["settings"]
    if curves["kind"] == "convergence":
        items = [(m, s["lam"] if REGISTRY[m].learned_inverse else "", d) for m, d in curves["methods"].items()]
    else:
        items = [("self_normalizing", lam, d) for lam, d in curves["per_lambda"].items()]
    for method, lam, d in items:
        lrs = np.broadcast_to(np.asarray(d.get("lr", s["lr"]), np.float64), d["loss"].shape[1:])
        n = s["inits"]
        for j in range(d["loss"].shape[1]):
            for e, it in enumerate(d["iteration"]):
                w.writerow([curves["kind"], method, lam, f"{lrs[j]:g}", j % n, int(it), f"{d['time'][e]:.6f}",
                            _fmt(d["loss"][e, j]),
                            _fmt(d["angle"][e, j]) if "angle" in d else "",
                            _fmt(d["inv_err"][e, j]) if "inv_err" in d else "",
                            _fmt(d["recon"][e, j]) if "recon" in d else "", int(d["diverged_at"][j])])
    return buf.getvalue()
