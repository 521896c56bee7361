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
                                    "best_scale": 0.7})]
    return figs


def test_figure_builders_return_figures():
    figs = _figures()
    for f in figs:
        assert isinstance(f, go.Figure) and len(f.data) >= 1
    # the histogram and the formula share the output panel; |dx/dz| sits on the secondary axis
    assert any(t.name == "|dx/dz| (right axis)" and t.yaxis != "y3" for t in figs[0].data)


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
