"""benchmarks/quality.py without training: the goal table, the evaluation (paired KL and KL via the exact entropy),
the plan of runs and the summary table (median and worst over seeds against the goal)."""
import importlib.util
import json
import math
import os

import numpy as np
import pytest

from flowlab import presets
from flowlab.densities import get_density, names

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "quality.py")
_spec = importlib.util.spec_from_file_location("quality_benchmark", _PATH)
Q = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(Q)


def test_goal_table_covers_every_density():
    assert set(Q.GOAL_KL) == set(names())
    assert all(0 < g <= 0.25 for g in Q.GOAL_KL.values())
    assert all(Q.GOAL_KL[d] <= 0.05 for d in ("trimodal", "moons", "sine"))  # the paper's three: at most 0.05


class _Truth:
    """A 'trainer' whose model is the true density: every KL must be zero up to sampling noise."""

    def __init__(self, name):
        self.d = get_density(name)

    def log_prob(self, x):
        return self.d.log_prob(x)


@pytest.mark.parametrize("name", ["moons", "checkerboard"])
def test_evaluate_a_perfect_model(name):
    ev = Q.evaluate(_Truth(name), name, 20_000)
    assert ev["kl_paired"] == 0.0 and ev["kl_paired_se"] == 0.0  # paired: exactly zero
    lp = np.asarray(get_density(name).log_prob(get_density(name).sample(20_000, seed=Q.EVAL_SEED).astype(np.float32)))
    se = np.std(lp) / math.sqrt(len(lp))
    assert abs(ev["kl_entropy"]) <= 4 * se + 1e-6  # test NLL − exact H(p): zero within its (larger) noise
    assert ev["entropy"] == get_density(name).entropy() and ev["finite"]


def test_plan_runs_every_density_method_and_seed():
    cfgs = Q.plan(["moons", "rings"], ["relative", "self_normalizing"], [0, 1], 60.0, 1, 1000, paper=True)
    tuned = [c for c in cfgs if c["preset"] == "tuned"]
    assert len(tuned) == 8 and {c["seed"] for c in tuned} == {0, 1}
    assert all(c["settings"] == presets.tuned(c["density"], c["method"]).settings() for c in tuned)
    paper = [c for c in cfgs if c["preset"] == "paper"]
    assert {c["density"] for c in paper} == {"moons"}  # the paper has no settings for rings


def _row(density, kl, seed, divergences=()):
    return {"preset": "tuned", "density": density, "method": "relative", "seed": seed, "kl_paired": kl,
            "kl_paired_se": 0.001, "kl_entropy": kl + 0.002, "steps": 100,
            "candidate_runs": [{"divergences": list(divergences)}]}


def test_summary_reports_median_and_worst_against_the_goal():
    rows = [_row("moons", k, s) for s, k in enumerate((0.02, 0.04, 0.09))] + [_row("rings", 0.5, 0, ["boom"])]
    s = {r["density"]: r for r in Q.summarise(rows)}
    assert s["moons"]["kl_median"] == pytest.approx(0.04) and s["moons"]["kl_worst"] == pytest.approx(0.09)
    assert s["moons"]["median_ok"] and not s["moons"]["worst_ok"]  # goal 0.05
    assert s["rings"]["divergences"] == 1 and not s["rings"]["median_ok"]
    text = Q.table(list(s.values()))
    assert "0.050" in text and "0.210" in text and "misses" in text and "meets" in text


def test_a_sweep_changes_the_settings_and_names_itself():
    cfgs = Q.plan(["rings"], ["relative"], [0], 60.0, 1, 1000, False, presets.changes(["batch=512", "layers=12"]))
    assert cfgs[0]["preset"] == "tuned batch=512 layers=12"
    assert cfgs[0]["settings"] == {**presets.tuned("rings", "relative").settings(), "batch": 512, "layers": 12}


def test_report_keeps_only_the_runs_of_todays_presets(tmp_path):
    def rec(settings, **kw):
        return json.dumps({"benchmark": "quality", "density": "moons", "method": "relative", "preset": "x", "seed": 0,
                           "budget": 60.0, "candidates": 1, "settings": Q.jsonable(settings), **kw})

    now = presets.tuned("moons", "relative").settings()
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([rec(now), rec({**now, "batch": now["batch"] * 2}), rec(now, budget=30.0),
                               rec(now, error="boom"), rec(now, preset="paper")]) + "\n")
    rows = Q.recorded_for_presets(path, 60.0)
    assert len(rows) == 1 and rows[0]["preset"] == "tuned"
