"""The shared figure builders (flowlab.plots.core) and the Playground's (flowlab.plots.playground)."""
import numpy as np
import plotly.graph_objects as go
import pytest

from flowlab.layerviz.grids import plane_grid as grid
from flowlab.plots.core import density_figure, log_ticks
from flowlab.plots.playground import compare_figure, learned_figure, live_curves_figure, points_figure


def test_log_ticks_are_1_2_5_within_the_data():
    assert log_ticks([1.47, 50.0]) == ([2.0, 5.0, 10.0, 20.0, 50.0], ["2", "5", "10", "20", "50"])
    vals, text = log_ticks([0.012, 0.3, np.nan, -1.0])
    assert vals == [0.02, 0.05, 0.1, 0.2] and text[0] == "0.02"
    # a narrow range (KL wandering between 1.23 and 1.9) gets a finer series, every tick inside the data's range
    vals, text = log_ticks([1.23, 1.9])
    assert len(vals) >= 3 and all(1.23 <= t <= 1.9 for t in vals) and text[0] == "1.4"
    assert log_ticks([0.05]) == ([], []) and log_ticks([np.nan]) == ([], [])


def test_density_figure_names_learned_densities_q():
    xs, ys, pts = grid(((-1, 1), (-2, 2)), 20)
    lp = -0.5 * np.sum(pts ** 2, axis=1)
    lp[0] = -np.inf  # outside the support -> zero density, not NaN
    fig = density_figure(xs, ys, lp)
    assert fig.data[0].colorbar.title.text == "p(x)" and fig.data[0].z[0][0] == 0.0
    f = learned_figure(xs, ys, lp, contour=True)
    assert f.data[0].colorbar.title.text == "q(x)" and "q=" in f.data[0].hovertemplate
    assert isinstance(f.data[1], go.Contour)
    assert np.isclose(np.max(f.data[0].z), np.exp(np.max(lp)))


def test_live_curves_mark_entropy_and_label_the_kl_axis():
    hist = {"step": list(range(1, 301)), "loss": list(np.linspace(5, 1, 300))}
    ev = {"step": [100, 200, 300], "test_nll": [3.0, 2.0, 1.5], "kl": [2.7, 1.7, 1.2]}
    fig = live_curves_figure(hist, ev, entropy=0.3)
    names = [t.name for t in fig.data]
    assert names == ["train loss (smoothed)", "test NLL", "KL(p‖q)"]
    assert fig.layout.yaxis2.type == "log" and list(fig.layout.yaxis2.ticktext) == ["1.2", "1.4", "1.6", "1.8", "2", "2.5"]
    assert any("0.300" in a.text for a in fig.layout.annotations)
    assert [t.mode for t in fig.data[1:]] == ["lines", "lines"] and fig.layout.xaxis2.matches == "x"
    # the first evaluation: one point, marked, and a labelled KL axis a factor of 2 either side of it (plotly's own
    # labels on such a short log range read "5, 2, 100, 5")
    first = live_curves_figure(hist, {"step": [100], "test_nll": [64.3], "kl": [64.0]}, entropy=0.3)
    assert [t.mode for t in first.data[1:]] == ["lines+markers", "lines+markers"]
    lo, hi = first.layout.yaxis2.range
    assert np.isclose(10 ** lo, 32.0) and np.isclose(10 ** hi, 128.0)
    ticks = [float(v) for v in first.layout.yaxis2.tickvals]
    assert len(ticks) >= 3 and all(32.0 <= v <= 128.0 for v in ticks) and "50" in first.layout.yaxis2.ticktext
    single = live_curves_figure(hist, {**ev, "kl": [np.nan] * 3}, show_kl=False)
    assert [t.name for t in single.data] == ["train loss (smoothed)", "test NLL"] and "yaxis2" not in single.layout


def test_points_and_truth_comparison():
    pts = np.random.default_rng(0).normal(size=(50, 2))
    fig = points_figure(pts, ((-3, 3), (-3, 3)), labels=np.arange(50) % 3)
    assert len(fig.data) == 3 and len({t.marker.color for t in fig.data}) == 3
    assert all(isinstance(t, go.Scatter) for t in fig.data)  # SVG: live redraws must not use up WebGL contexts
    assert sum(len(t.x) for t in fig.data) == 50
    xs, ys, g = grid(((-1, 1), (-1, 1)), 10)
    lp = -np.sum(g ** 2, axis=1)
    c = compare_figure(xs, ys, lp, lp - 1.0, kl=0.123)
    assert c.data[0].zmax == c.data[1].zmax == np.exp(np.max(lp)) and "0.123" in c.layout.annotations[1].text


def test_truth_comparison_shows_where_the_kl_comes_from():
    """The third panel is p·(log p − log q): its sum over the grid times the cell area is KL(p‖q) on the grid."""
    xs, ys, g = grid(((-4, 4), (-4, 4)), 81)
    lp = -0.5 * np.sum(g ** 2, axis=1) - np.log(2 * np.pi)
    lq = -0.5 * np.sum((g - [0.5, 0.0]) ** 2, axis=1) - np.log(2 * np.pi)  # shifted by 0.5: KL = 0.125
    c = compare_figure(xs, ys, lp, lq, integrand=True)
    assert len(c.data) == 3 and c.data[2].zmin == -c.data[2].zmax
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert np.sum(c.data[2].z) * cell == pytest.approx(0.125, abs=2e-3)
    lp_zero = np.where(g[:, 0] > 0, lp, -np.inf)  # p = 0 on half the plane: no contribution there, no NaN
    assert np.all(np.isfinite(compare_figure(xs, ys, lp_zero, lq, integrand=True).data[2].z))
