"""flowlab.plots.timing: the Timing page's figures and table from a tiny real run and from synthetic runs; colours
and names come from the method registry and the palette."""
import inspect
import re

import numpy as np
import pytest

from flowlab import benchmark as B
from flowlab.gradients import REGISTRY
from flowlab.plots import style
from flowlab.plots import timing as P


@pytest.fixture(scope="module")
def tiny_run():
    return B.run_benchmark(B.BenchConfig(dims=(4, 8), methods=("relative", "exact"), repeats=3, batch=10))


def test_figures_and_table(tiny_run):
    res = tiny_run
    fig = P.time_figure([res, res])
    names = [t.name for t in fig.data]
    assert any("∝ D²" in n for n in names) and any("∝ D³" in n for n in names)
    assert sum(1 for t in fig.data if t.name and t.name.startswith("relative")) == 2  # focus run + overlay
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert len(P.speedup_figure([res]).data) == 1  # relative vs exact (exact itself is not drawn)
    assert len(P.memory_figure([res]).data) == 2
    assert len(P.results_table(res)) == 4
    empty = P.time_figure([])
    assert not empty.data and "Run" in empty.layout.annotations[0].text


def _run(methods, dims=(64, 128, 256)):
    pts = [B.Point(m, d, "ok", time_s=1e-6 * d ** REGISTRY[m].order, mem_bytes=d * d)
           for d in dims for m in methods]
    return B.BenchResult({"methods": list(methods)}, pts)


def test_colours_and_names_from_the_registry():
    res = _run(B.ALL_METHODS)
    fig = P.time_figure([res])
    for m in B.ALL_METHODS:
        tr = next(t for t in fig.data if t.legendgroup == m)
        assert tr.line.color == REGISTRY[m].color and tr.name.startswith(REGISTRY[m].short + " — slope")
    rows = P.results_table(res)
    assert {r["method"] for r in rows} == {REGISTRY[m].short for m in B.ALL_METHODS}
    assert P.speedup_figure([res]).layout.title.text == f"speed-up over the {REGISTRY['exact'].short} gradient"
    unknown = B.BenchResult({"methods": ["future_method"]}, [B.Point("future_method", 8, "ok", time_s=1.0),
                                                             B.Point("future_method", 16, "ok", time_s=2.0)])
    tr = P.time_figure([unknown]).data[0]
    assert tr.line.color == style.GREY and tr.name.startswith("future_method")


def test_reference_lines_follow_the_cost_order():
    """∝ D² through the cheapest order-2 method's last point, ∝ D³ through the first order-3 method's."""
    res = _run(("self_normalizing", "inverse", "autodiff_jacobian"))
    fig = P.time_figure([res])
    d2 = next(t for t in fig.data if t.name == "∝ D² (reference)")
    d3 = next(t for t in fig.data if t.name == "∝ D³ (reference)")
    sd, st_ = res.series("self_normalizing")
    idd, it = res.series("inverse")
    assert np.allclose(np.asarray(d2.y), st_[-1] * 1e3 * (np.asarray(d2.x) / sd[-1]) ** 2)
    assert np.allclose(np.asarray(d3.y), it[-1] * 1e3 * (np.asarray(d3.x) / idd[-1]) ** 3)


def test_several_runs_get_a_style_legend():
    a, b = _run(("relative", "exact")), _run(("relative", "exact"))
    b.meta["live"] = True
    fig = P.time_figure([b, a])
    styles = [t.name for t in fig.data if t.legendgroup == "runs"]
    assert styles == ["solid: live run", f"dotted: recorded: {a.label}"]
    assert sum(1 for t in fig.data if t.legendgroup == "relative" and t.showlegend is not False) == 1


def test_no_colour_literals():
    src = inspect.getsource(P)
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b", src)
    assert "METHOD_COLORS" not in src and "SHORT =" not in src


# ---- the two-line chart ----------------------------------------------------------------------------------------------
def _repeated(dims=(256, 512, 1024, 2048), spread=(0.9, 0.95, 1.0, 1.1, 1.3)):
    pts = [B.Point(m, d, "ok", time_s=t, times_s=[t * s for s in spread])
           for d in dims for m, t in (("relative", 1e-9 * d ** 2 + 1e-4), ("exact", 3e-11 * d ** 3 + 1e-4))]
    return B.BenchResult({"methods": ["relative", "exact"], "fit_range": [512, 4096], "label": "test run"}, pts)


def test_pair_figure_has_the_two_methods_and_both_guides():
    res = _repeated()
    fig = P.pair_figure([res])
    lines = [t for t in fig.data if t.legendgroup in ("relative", "exact")]
    assert [t.name for t in lines] == [REGISTRY["relative"].short, REGISTRY["exact"].short]
    assert [t.line.color for t in lines] == [REGISTRY["relative"].color, REGISTRY["exact"].color]
    for t, m in zip(lines, ("relative", "exact")):  # the median, and the middle half of the repeats as error bars
        d, sec = res.series(m)
        assert list(t.x) == list(d) and np.allclose(t.y, sec * 1e3)
        q = np.array([B.quartiles(p.times_s) for p in res.ok(m)]) * 1e3
        assert np.allclose(np.asarray(t.y) + np.asarray(t.error_y.array), q[:, 1])
        assert np.allclose(np.asarray(t.y) - np.asarray(t.error_y.arrayminus), q[:, 0])
    guides = [t for t in fig.data if t.legendgroup == "guides"]
    assert [t.name for t in guides] == [f"∝ D² through {REGISTRY['relative'].short} at D = 512",
                                        f"∝ D³ through {REGISTRY['exact'].short} at D = 512"]
    assert P.guide_anchor(res) == 512  # the smallest D of the fit window, not 256
    for t, power, m in zip(guides, (2, 3), ("relative", "exact")):
        x, y = np.asarray(t.x, float), np.asarray(t.y, float)
        assert np.diff(np.log(y)) / np.diff(np.log(x)) == pytest.approx(power)  # the guide's log-log slope
        assert t.line.dash == "dash"
        d, sec = res.series(m)
        at = float(np.exp(np.interp(np.log(512), np.log(x), np.log(y))))
        assert at == pytest.approx(sec[list(d).index(512)] * 1e3)  # it passes through the stated point
        assert (x.min(), x.max()) == (256, 2048)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "test run" in fig.layout.title.text
    # each guide is labelled on the chart, in its colour, at a point of the guide inside the axis range
    labels = {a.text: a for a in fig.layout.annotations}
    assert set(labels) == {"∝ D²", "∝ D³"}
    lo, hi = fig.layout.yaxis.range
    for t, text in zip(guides, ("∝ D²", "∝ D³")):
        a = labels[text]
        x, y = np.log10(np.asarray(t.x, float)), np.log10(np.asarray(t.y, float))
        assert a.font.color == t.line.color and lo <= a.y <= hi and x[0] <= a.x <= x[1]
        assert a.y == pytest.approx(np.interp(a.x, x, y))


def test_pair_figure_with_a_second_run_and_without_data():
    live, rec = _repeated(dims=(512, 1024)), _repeated()
    live.meta["live"] = True
    fig = P.pair_figure([rec, live])
    lines = [t for t in fig.data if t.legendgroup in ("relative", "exact")]
    assert len(lines) == 4 and [t.line.dash for t in lines] == ["solid", "solid", "dot", "dot"]
    assert sum(t.showlegend is not False for t in lines) == 2
    assert len([t for t in fig.data if t.legendgroup == "guides"]) == 2  # guides of the first run only
    assert P.guide_anchor(_repeated(dims=(64, 128))) == 64  # nothing in the window: the smallest common D
    empty = P.pair_figure([B.BenchResult({}, [])])
    assert not empty.data and "no relative or exact points yet" in empty.layout.annotations[0].text
