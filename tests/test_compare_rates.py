"""flowlab.compare.rates and the sweep's figure: each method's final loss per learning rate over the same inits, the
best rate by the stated rule (lowest median, a diverged init = +∞, ties → the smaller rate), the curves cut at one
rate per method, and the conclusion computed from the numbers (both outcomes, from synthetic results), never
written in advance."""
import math

import numpy as np
import pytest

from flowlab import compare as C
from flowlab.gradients import REGISTRY
from flowlab.plots.compare import convergence_figure, rate_figure
from flowlab.plots.style import ALARM

INF = math.inf


def _curves(finals: dict, rates, lr=None, E=3):
    """Hand-made convergence curves: ``finals[method]`` is (rates, inits) final losses, NaN = diverged; every member
    starts at 6 nats."""
    rates = [float(r) for r in rates]
    methods = {}
    n = np.asarray(next(iter(finals.values()))).shape[1]
    for m, f in finals.items():
        last = np.asarray(f, np.float64).reshape(-1)
        loss = np.vstack([np.full_like(last, 6.0 - 0.1 * e) for e in range(E - 1)] + [last])
        d = {"iteration": np.arange(E) * 10, "time": np.linspace(0, 0.2, E), "loss": loss,
             "diverged_at": np.where(np.isfinite(last), -1, 10 * (E - 1)), "lr": np.repeat(rates, n),
             "compile_s": 1.0}
        if REGISTRY[m].learned_inverse:
            d.update(angle=np.full_like(loss, 2.0), inv_err=np.full_like(loss, 1e-3), recon=np.full_like(loss, 1e-4))
        methods[m] = d
    s = C.CompareSettings(inits=n, lr=lr or rates[0], rates=tuple(rates)).as_dict()
    return {"kind": "convergence", "settings": s, "true_nll": 1.0, "status": "Finished.", "rates": rates,
            "iteration": 10 * (E - 1), "methods": methods}


# ---- the rule ---------------------------------------------------------------------------------------------------------
def _rows(medians):
    return [{"rate": r, "median": m} for r, m in medians]


def test_best_rate_is_the_lowest_median_and_a_tie_goes_to_the_smaller_rate():
    assert C.best_rate(_rows([(0.01, 5.0), (0.02, 4.0), (0.04, 4.5)])) == 0.02
    assert C.best_rate(_rows([(0.01, 5.0), (0.02, 4.0), (0.04, 4.0)])) == 0.02  # tie
    assert C.best_rate(_rows([(0.01, 5.0), (0.02, INF), (0.04, 4.9)])) == 0.04
    assert C.best_rate(_rows([(0.01, INF), (0.02, INF)])) is None


def test_sweep_rows_count_a_diverged_init_as_infinite():
    nan = np.nan
    c = _curves({"relative": [[5.0, 4.0, 6.0, 5.5], [3.0, nan, 3.2, 3.1], [1.0, nan, nan, 2.0]]}, (0.01, 0.02, 0.04))
    rows = C.sweep_rows(c)["relative"]
    assert [r["rate"] for r in rows] == [0.01, 0.02, 0.04]
    assert rows[0]["median"] == 5.25 and rows[0]["diverged"] == 0 and rows[0]["n"] == 4
    # one of four diverged: the median of (3.0, 3.1, 3.2, +inf) is (3.1 + 3.2) / 2; the quartiles use the others
    assert rows[1]["median"] == pytest.approx(3.15) and rows[1]["diverged"] == 1
    assert rows[1]["q25"] == pytest.approx(3.05) and rows[1]["q75"] == pytest.approx(3.15)
    # half of them diverged: the median is +inf, so 0.04 cannot be best even though its survivors are lowest
    assert rows[2]["median"] == INF and rows[2]["diverged"] == 2
    assert C.best_rates(c) == {"relative": 0.02}
    assert list(rows[2]["final"]) == [1.0, INF, INF, 2.0]


def test_shown_rates_and_curves_cut_at_them():
    c = _curves({"inverse": [[5.0, 5.2], [4.0, 4.2]], "relative": [[4.5, 4.4], [np.nan, np.nan]]}, (0.01, 0.02),
                lr=0.02)
    assert C.shown_rates(c, "best") == {"inverse": 0.02, "relative": 0.01}
    assert C.shown_rates(c, "shared") == {"inverse": 0.02, "relative": 0.02}
    cut = C.at_rates(c, "best")
    assert cut["view"] == "best" and cut["methods"]["relative"]["lr"] == 0.01
    np.testing.assert_array_equal(cut["methods"]["relative"]["loss"][-1], [4.5, 4.4])
    np.testing.assert_array_equal(cut["methods"]["inverse"]["loss"][-1], [4.0, 4.2])
    assert cut["methods"]["inverse"]["members"] == 4 and cut["methods"]["inverse"]["loss"].shape == (3, 2)
    # a method with no eligible rate is drawn at the shared rate
    bad = _curves({"relative": [[np.nan, np.nan], [np.nan, 3.0]]}, (0.01, 0.02), lr=0.02)
    assert C.best_rates(bad) == {"relative": None} and C.shown_rates(bad) == {"relative": 0.02}
    with pytest.raises(ValueError, match="view"):
        C.shown_rates(c, "worst")
    rows = C.summary_rows(cut)
    assert [r["lr"] for r in rows] == [0.02, 0.01] and C.convergence_table(rows)[1]["lr"] == "0.01"
    # curves of several rates are never summarised or drawn as one: they must be cut first
    with pytest.raises(ValueError, match="cut them at one rate per method first"):
        C.summary_rows(c)
    with pytest.raises(ValueError, match="cut them at one rate per method first"):
        convergence_figure(c)


# ---- the conclusion, both ways ----------------------------------------------------------------------------------------
def _result(method, median, final, iqr=0.05, rate=0.02, edge=None, diverged=0, failed=False, spi=1e-3, members=20):
    return {"method": method, "label": REGISTRY[method].short, "rate": rate, "edge": edge,
            "final": np.asarray(final, np.float64), "median": median, "iqr": iqr, "diverged": diverged,
            "n": len(final), "failed": failed, "seconds_per_iteration": spi, "members": members}


def test_conclusion_relative_ends_lower_by_more_than_the_spread():
    res = [_result("inverse", 4.5, [4.5, 4.6, 4.4, 4.5], rate=0.08, iqr=0.05),
           _result("relative", 4.2, [4.1, 4.2, 4.3, 4.6], rate=0.02, iqr=0.08)]
    text = C.loss_conclusion(res, "best", 500, 0.02)
    assert text == ("After 500 iterations, each method at its best learning rate of those tried, relative reaches the "
                    "lowest median final NLL, 4.2000 nats at lr 0.02: 0.3 nats below ordinary (W⁻ᵀ) (4.5000 at lr "
                    "0.08), more than the spread over the 4 inits (interquartile range up to 0.08 nats); it ends lower "
                    "on 3 of the 4 same starting weights.")


def test_conclusion_ordinary_ends_lower_by_less_than_the_spread_with_notes():
    res = [_result("inverse", 4.38, [4.3, 4.4, 4.38, np.inf], rate=0.16, edge="largest", diverged=1, iqr=0.14),
           _result("relative", 4.45, [4.4, 4.5, 4.45, 4.46], rate=0.02, iqr=0.06),
           _result("self_normalizing", 9.0, [np.inf] * 4, failed=True)]
    text = C.loss_conclusion(res, "best", 1000, 0.02)
    assert text.startswith("After 1,000 iterations, each method at its best learning rate of those tried, ordinary "
                           "(W⁻ᵀ) reaches the lowest median final NLL, 4.3800 nats at lr 0.16 (the largest rate "
                           "tried; 1 of 4 inits diverged): 0.07 nats below relative (4.4500 at lr 0.02), less than "
                           "the spread over the 4 inits (interquartile range up to 0.14 nats); it ends lower on 3 of "
                           "the 4 same starting weights.")  # 4.3 < 4.4, 4.4 < 4.5, 4.38 < 4.45; +∞ > 4.46
    assert text.endswith(" self-normalizing diverged on at least half of the inits at every rate tried.")


def test_conclusion_at_the_shared_rate_names_no_per_method_rate():
    res = [_result("relative", 4.4, [4.4, 4.5]), _result("self_normalizing", 4.3, [4.2, 4.6])]
    text = C.loss_conclusion(res, "shared", 20, 0.02)
    assert text.startswith("After 20 iterations at the shared learning rate 0.02, self-normalizing reaches the lowest "
                           "median final NLL, 4.3000 nats: 0.1 nats below relative (4.4000), more than")
    assert "at lr" not in text and "ends lower on 1 of the 2" in text


def test_conclusion_with_one_method_or_none():
    assert C.loss_conclusion([_result("relative", 4.4, [4.4, 4.5])], "best", 5, 0.02) == \
        "After 5 iterations, each method at its best learning rate of those tried, relative reaches a median final " \
        "NLL of 4.4000 nats at lr 0.02."
    none = C.loss_conclusion([_result("relative", INF, [INF, INF], failed=True)], "best", 5, 0.02)
    assert none.endswith("every method diverged on at least half of the inits: nothing to compare; lower the rates.")


def test_time_conclusion_lists_the_measured_times_fastest_first():
    res = [_result("inverse", 4.5, [4.5], spi=0.0126, members=70), _result("relative", 4.4, [4.4], spi=0.0138),
           _result("self_normalizing", 4.6, [4.6], spi=0.0184)]
    assert C.time_conclusion(res) == ("Time per iteration measured here (optimiser steps only, the 70 runs of each "
                                      "method together): ordinary (W⁻ᵀ) 12.6 ms, relative 13.8 ms, self-normalizing "
                                      "18.4 ms.")
    res[0]["seconds_per_iteration"] = 0.02
    assert C.time_conclusion(res).endswith("relative 13.8 ms, self-normalizing 18.4 ms, ordinary (W⁻ᵀ) 20 ms.")


def test_conclusion_of_curves_reads_the_numbers_on_the_page():
    c = _curves({"inverse": [[5.0, 5.1, 5.2], [4.0, 4.1, 4.6]], "relative": [[4.5, 4.4, 4.3], [4.9, 5.0, 5.1]]},
                (0.01, 0.02))
    said = C.conclusion(c, "best")
    assert said["loss"].startswith("After 20 iterations, each method at its best learning rate of those tried, "
                                   "ordinary (W⁻ᵀ) reaches the lowest median final NLL, 4.1000 nats at lr 0.02 (the "
                                   "largest rate tried): 0.3 nats below relative (4.4000 at lr 0.01; the smallest "
                                   "rate tried)")
    shared = C.conclusion(c, "shared")["loss"]  # at the shared rate 0.01 the order flips
    assert shared.startswith("After 20 iterations at the shared learning rate 0.01, relative reaches the lowest")
    assert said["time"].startswith("Time per iteration measured here (optimiser steps only, the 6 runs of each")


# ---- on real runs -----------------------------------------------------------------------------------------------------
TINY = dict(inits=3, points=40, iters=6, layers=2)


def test_a_real_sweep_marks_divergence_and_never_picks_that_rate():
    s = C.CompareSettings(methods=("relative",), rates=(0.02, 8.0), lr=0.02, **TINY)
    c = C.ConvergenceRun(s).run().curves()
    assert c["rates"] == [0.02, 8.0] and c["methods"]["relative"]["loss"].shape == (7, 6)
    rows = C.sweep_rows(c)["relative"]
    assert rows[1]["diverged"] == 3 and rows[1]["median"] == INF and rows[0]["diverged"] == 0
    assert C.best_rates(c) == {"relative": 0.02}
    fig = rate_figure(c)
    crosses = [t for t in fig.data if t.mode == "markers+text"]
    assert len(crosses) == 1 and list(crosses[0].text) == ["3/3"] and crosses[0].marker.color == ALARM
    assert any(t.name == "relative: best lr 0.02" for t in fig.data)
    assert "shared lr 0.02" in [a.text for a in fig.layout.annotations]


def test_each_rate_runs_from_the_same_inits_with_its_own_rate():
    """Member i·inits + j is init j at rate i: one step of gradient descent is W_j − rate_i · grad(W_j)."""
    import jax

    from flowlab import gradients as G

    s = C.CompareSettings(methods=("relative",), rates=(0.01, 0.05), lr=0.05, **{**TINY, "iters": 1})
    run = C.ConvergenceRun(s)
    run.advance()
    p0 = run.initial_params("relative")
    fn = jax.jit(G.make_grad_fn("relative", s.spec))
    W = np.asarray(run.groups["relative"].params["W"])
    for j in range(3):
        g, _ = fn({k: v[j] for k, v in p0.items()}, run.data, {})
        for i, rate in enumerate(s.grid):
            np.testing.assert_allclose(W[i * 3 + j], p0["W"][j] - rate * np.asarray(g["W"]), rtol=1e-5, atol=1e-6)


def test_figures_of_a_real_run_name_each_rate():
    s = C.CompareSettings(rates=(0.01, 0.02), **TINY)
    c = C.ConvergenceRun(s).run().curves()
    best = C.best_rates(c)
    fig = convergence_figure(C.at_rates(c, "best"))
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    for m in s.methods:
        assert f"{REGISTRY[m].short} · lr {best[m]:g}" in names
    assert "each at its best rate" in fig.layout.title.text
    assert "lr 0.02" in convergence_figure(C.at_rates(c, "shared")).layout.title.text
    rings = [t for t in rate_figure(c).data if t.marker.size == 18]
    assert len(rings) == 3  # one ◯ per method, at its best rate


def test_angle_sentence_reads_the_run():
    c = C.ConvergenceRun(C.CompareSettings(methods=("self_normalizing",), rates=(0.02,), **TINY)).run().curves()
    cut = C.at_rates(c, "best")
    a = np.nanmean(cut["methods"]["self_normalizing"]["angle"], axis=1)
    text = C.angle_sentence(cut)
    assert "angle between the self-normalizing and exact likelihood gradients of W (Keller et al. Fig. 3" in text
    assert f"{a[0]:.2g}° at iteration 0 (R starts as Wᵀ, which is W⁻¹ for orthogonal initial weights)" in text
    assert f"{a.max():.2g}° at most, {a[-1]:.2g}° at iteration 6" in text
    assert C.angle_sentence(C.at_rates(_curves({"relative": [[4.0]]}, (0.02,)), "best")) == ""
