"""flowlab.plots.learn: every builder returns a figure; colours come from the palette (flowlab.plots.style)."""
import inspect
import re

import numpy as np
import plotly.graph_objects as go

from flowlab import lessons as L
from flowlab.plots import learn as P


def _figures():
    r1 = L.change_of_variables_1d(L.Map1D("tanh_linear", 1.5, 0.2), L.Base1D("bimodal"), n=500, bins=10)
    figs = [P.change_of_variables_figure(r1, "f"), P.linear_map_figure(L.linear_map_2d([[1, 0.5], [0, -1]])),
            P.timing_figure({"dims": np.array([8, 16]), "times": {"slogdet": np.array([1e-6, 3e-6])},
                             "slopes": {"slogdet": 1.6}}, L.OP_LABELS),
            P.dependence_figure(np.ones((3, 3)), np.tril(np.ones((3, 3)))),
            P.flops_figure([16, 64], 8, L.relative_update_flops),
            P.snf_path_figure(L.snf_angle_path(3, 16, 0.1, s=[0.0, 0.5])),
            P.snf_lambda_figure(L.snf_lambda_runs(3, 16, 0.1, lams=(0.0, 1.0), steps=5)),
            P.linear_training_figure([0, 25], [3.0, 2.6], 2.55, 2.5, [25], [2.6]),
            P.scale_profile_figure({"scales": np.array([0.5, 1.0]), "contraction": np.array([1.0, 2.0]),
                                    "expansion": np.array([1.0, 0.3]), "nll": np.array([2.0, 2.3]),
                                    "best_scale": 0.7}),
            P.learned_activation_figure(L.initial_view()), P.learned_activation_figure(_trained_view())]
    return figs


def _trained_view():
    """Lesson 7's result shape without training: θ⁰ moved by hand in two units of layer 2 of 3."""
    act = L.lesson_activation()
    view = L.initial_view()
    theta = np.asarray(act.init_params(2)).copy()
    theta[:, 0] += [0.5, -0.5]
    return {**view, "trained": L.activation_curves(act, theta, view["x"]), "layer": 2,
            "movement": np.array([0.1, 0.5, 0.2])}


def test_figure_builders_return_figures():
    figs = _figures()
    for f in figs:
        assert isinstance(f, go.Figure) and len(f.data) >= 1
    # the histogram and the formula share the output panel; |dx/dz| sits on the secondary axis
    assert any(t.name == "|dx/dz| (right axis)" and t.yaxis != "y3" for t in figs[0].data)


def test_learned_activation_figure_shows_start_units_and_movement():
    before = P.learned_activation_figure(L.initial_view())
    assert {t.name for t in before.data} == {"start θ⁰ (near s_T)"} and len(before.layout.annotations) == 2
    after = P.learned_activation_figure(_trained_view())
    names = [t.name for t in after.data if t.showlegend is not False]
    assert names == ["start θ⁰ (near s_T)", "trained, layer 2, unit 1", "trained, layer 2, unit 2"]
    bars = [t for t in after.data if isinstance(t, go.Bar)]
    assert len(bars) == 1 and list(bars[0].x) == [1, 2, 3]
    colors = list(bars[0].marker.color)
    assert colors[1] != colors[0] == colors[2]  # the layer shown is highlighted


def test_no_colour_literals():
    src = inspect.getsource(P)
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", src)
    assert not re.search(r"rgba\(\s*\d", src)  # translucent colours only through style.rgba()


def test_no_legend_sits_below_the_plot():
    """Issue 17: lesson 5's legend covered its x-axis title (legends were hung below the plot area).  Every Learn
    figure now puts its legend above the plot area or inside its top-left corner."""
    for f in _figures():
        leg = f.layout.legend
        assert leg.y >= 1 and leg.yanchor == "bottom" or (leg.y <= 1 and leg.yanchor == "top" and leg.x < 0.1), leg
