"""flowlab.compare.summary: the band over the inits, iterations to a level, summary rows and tables, the long CSV
(on hand-made curves, and once on a tiny run)."""
import csv
import io
import math

import numpy as np

from flowlab import compare as C
from flowlab import presets
from flowlab.compare import summary as S
from flowlab.gradients import REGISTRY

TINY = dict(inits=3, points=40, iters=4, layers=2)


def _curves(loss, diverged_at, method="relative"):
    """A hand-made convergence curves dict: loss (E, n)."""
    loss = np.asarray(loss, np.float64)
    E = loss.shape[0]
    d = {"iteration": np.arange(E), "time": np.linspace(0, 0.1 * (E - 1), E), "loss": loss,
         "diverged_at": np.asarray(diverged_at), "compile_s": 1.5}
    s = C.CompareSettings(inits=loss.shape[1]).as_dict()
    return {"kind": "convergence", "settings": s, "true_nll": 1.0, "status": "Finished.", "methods": {method: d}}


def test_csv_long_format():
    s = C.CompareSettings(rates=(0.01, 0.04), lr=0.02, **TINY)
    run = C.ConvergenceRun(s).run()
    text = run.to_csv()
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert tuple(rows[0]) == C.CSV_COLUMNS
    assert len(rows) == 3 * 3 * 3 * 5  # methods × rates (0.01, 0.02 shared, 0.04) × inits × evaluations
    rel = [r for r in rows if r["method"] == "relative"]
    assert sorted({float(r["lr"]) for r in rel}) == [0.01, 0.02, 0.04]
    assert sorted({(r["lr"], r["init"]) for r in rel}) == sorted({(lr, str(j)) for lr in ("0.01", "0.02", "0.04")
                                                                    for j in range(3)})  # every rate from every init
    snf = [r for r in rows if r["method"] == "self_normalizing"]
    assert snf[0]["angle_deg"] != "" and float(snf[0]["lambda"]) == presets.COMPARE["lam"]
    assert all(r["angle_deg"] == "" for r in rows if r["method"] == "relative")
    assert float(rows[0]["loss_nats"]) > 0
    assert '"inits": 3' in text.splitlines()[0]  # the settings header uses the schema's names


def test_iterations_to_reach():
    it = np.array([0, 1, 2, 3])
    loss = np.array([[5.0, 5.0], [4.0, 4.9], [3.0, 4.8], [2.0, 4.7]])
    np.testing.assert_array_equal(C.iterations_to_reach(it, loss, np.array([3.5, 1.0])), [2.0, np.nan])


def test_band_ignores_diverged_inits_and_all_nan_rows_quietly(recwarn):
    v = np.array([[1.0, 3.0], [2.0, np.nan], [np.nan, np.nan]])
    mean, lo, hi = C.band(v)
    np.testing.assert_allclose(mean[:2], [2.0, 2.0])
    np.testing.assert_allclose(lo[:2], [1.0, 2.0])
    assert np.isnan(mean[2]) and np.isnan(hi[2])
    mean, lo, hi = C.band(v, "minmax")
    np.testing.assert_allclose([lo[0], hi[0]], [1.0, 3.0])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_summary_rows_tables_and_divergence_notes():
    c = _curves([[5.0, 5.0], [4.0, np.nan]], [-1, 1])
    rows = C.summary_rows(c)
    r = rows[0]
    assert r["label"] == REGISTRY["relative"].short and r["diverged"] == 1 and r["n"] == 2
    assert r["final_loss_mean"] == 4.0 and r["seconds_per_iteration"] == 0.1 and r["compile_s"] == 1.5
    t = C.convergence_table(rows)[0]
    assert t["diverged"] == "1/2" and t["final angle (°)"] == "—" and t["ms / iteration"] == 100.0
    notes = C.divergence_notes(c, 1200.0)
    assert notes == [f"**{REGISTRY['relative'].short}**: 1 of 2 inits diverged (first at iteration 1): the gradient "
                     "or the loss became NaN/Inf or exceeded 1,200 nats. Their curves stop there (✕); the band uses "
                     "the others. Lower the learning rate to avoid it."]
    assert C.divergence_notes(_curves([[5.0], [4.0]], [-1]), 1200.0) == []


def test_sweep_summary_and_table():
    d = {"iteration": np.arange(3), "time": np.zeros(3), "loss": np.array([[3.0, 3.0], [2.0, 3.5], [1.0, 4.0]]),
         "inv_err": np.full((3, 2), 1e-3), "diverged_at": np.array([-1, -1])}
    c = {"kind": "lambda_sweep", "per_lambda": {0.1: d}}
    r = S.sweep_summary(c)[0]
    assert r["lambda"] == 0.1 and r["ended_above_start"] == 1 and r["diverged"] == 0
    assert r["first_divergence"] is None and math.isclose(r["final_nll_mean"], 2.5)
    t = C.sweep_table([r])[0]
    assert t["λ"] == 0.1 and t["ended above start"] == "1/2" and t["diverged"] == "0/2"
